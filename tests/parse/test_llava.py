"""The LLaVA planner: its compact answer, constrained decoding, the one re-ask, plans it does not trust, the
pre-shrunk image its processor gets, 4-bit loading."""

import pytest
import torch

from lasso_edit.core.errors import InvalidInputError, ModelUnavailableError
from lasso_edit.core.plan import Action
from lasso_edit.parse.answer import compact_to_dict, edits_from_answer, extract_json

from ..helpers import noise_image, scene


@pytest.fixture(scope="module")
def vlm(tiny_dir):
    from lasso_edit.parse.llava import LlavaParser

    return LlavaParser.from_pretrained(str(tiny_dir / "vlm"))


def test_compact_answer_with_percent_box_maps_to_pixels(vlm):
    img = noise_image(60, 120)
    frame = vlm.frame(img)
    edits = edits_from_answer('[["remove","dog",null,[25,0,75,100]]]', frame)
    assert [(e.action, e.target, e.value) for e in edits] == [(Action.REMOVE, "dog", None)]
    assert edits[0].box == pytest.approx(frame.to_pixels((0.25, 0.0, 0.75, 1.0)))
    assert compact_to_dict(["recolor", "car", "red", None]) == {"action": "recolor", "target": "car",
                                                                 "value": "red", "box": None}
    # one edit, not nested in a list
    assert [e.target for e in edits_from_answer('["recolor","car","red",null]')] == ["car"]


def test_constrained_decoding_follows_the_schema(vlm):
    from lasso_edit.parse.loop import ANSWER_SCHEMA

    assert vlm.constrained, "xgrammar is a dependency: the tiny VLM must decode constrained"
    vlm.max_new_tokens = 400
    try:
        text = vlm.ask(scene(), "make the car red")
    finally:
        vlm.max_new_tokens = 96
    data = extract_json(text)  # a random model, and still valid JSON of the schema
    assert isinstance(data, list) and 1 <= len(data) <= 4
    actions = ANSWER_SCHEMA["items"]["prefixItems"][0]["enum"]
    for action, target, value, box in data:
        assert action in actions and (target is None or 1 <= len(target) <= 48)  # None: the whole photo
        assert value is None or isinstance(value, str)
        assert box is None or (len(box) == 4 and all(isinstance(v, int) and 0 <= v <= 99 for v in box))
    unconstrained = vlm.ask(scene(), "make the car red", constrained=False)
    assert unconstrained != text


def test_constrained_parser_asks_once_then_falls_back(vlm, monkeypatch):
    calls = []
    monkeypatch.setattr(vlm, "ask", lambda image, text: calls.append(text) or "garbage")
    monkeypatch.setattr(vlm, "constrained", True)
    plan = vlm.parse(scene(), "make the car red")
    assert len(calls) == 1 and plan.source == "rules (fallback)"
    assert "unusable (" in plan.warnings[0] and "twice" not in plan.warnings[0]


def test_a_plan_naming_nothing_from_the_instruction_is_not_trusted(vlm, monkeypatch):
    monkeypatch.setattr(vlm, "constrained", True)
    monkeypatch.setattr(vlm, "ask", lambda image, text: '[["style","qzx wvk",null,null]]')
    plan = vlm.parse(scene(), "make the ball red")
    assert plan.source == "rules (fallback)" and "names nothing" in plan.warnings[0]
    monkeypatch.setattr(vlm, "ask", lambda image, text: '[["remove","balls",null,null]]')
    assert vlm.parse(scene(), "remove the ball").source == "vlm"  # plural and singular match
    # an instruction in another language, whose words an English plan cannot share: the VLM's plan, warned
    monkeypatch.setattr(vlm, "ask", lambda image, text: '[["remove","dog",null,null]]')
    plan = vlm.parse(scene(), "entferne den Hund")
    assert plan.source == "vlm" and plan.edits[0].target == "dog" and "names nothing" in plan.warnings[-1]


@pytest.mark.parametrize("instruction,words", [
    # ("sharpen the photo" is refused before the VLM is asked: tests/parse/test_unknown.py)
    ("do something cool with the photo", "could not understand"),
])
def test_an_unusable_vlm_plan_that_the_rules_parser_refuses_too_is_refused_not_painted(vlm, monkeypatch, instruction,
                                                                                        words):
    """Issue 16 #10: an English instruction whose VLM plan names nothing said, and which the rules
    parser refuses, exits 2 with the rules parser's words; it used to paint a whole-image restyle."""
    from lasso_edit.core.errors import InvalidInstructionError

    monkeypatch.setattr(vlm, "constrained", True)
    monkeypatch.setattr(vlm, "ask", lambda image, text: '[["style","qzx wvk",null,null]]')
    with pytest.raises(InvalidInstructionError, match=words) as e:
        vlm.parse(scene(), instruction)
    assert "the VLM's plan was unusable" in str(e.value)


def test_processors_get_a_preshrunk_copy(vlm, monkeypatch, tiny_dir):
    from lasso_edit.ground.detector import Detector

    seen = []
    real = vlm.processor.__class__.__call__
    monkeypatch.setattr(vlm.processor.__class__, "__call__",
                        lambda self, *a, **k: seen.append(k["images"].size) or real(self, *a, **k))
    vlm.ask(noise_image(900, 1500), "hi")
    assert max(seen[-1]) < 1500 and seen[-1][0] / seen[-1][1] == pytest.approx(1500 / 900, rel=0.02)
    det = Detector.from_pretrained(str(tiny_dir / "detector"))
    big = noise_image(700, 1000)
    assert max(det._shrink(big).shape[:2]) <= 32  # the tiny OWLv2 resizes to 32 px
    for x0, y0, x1, y1 in det.detect(big, "car")[0]:  # boxes still in the original's pixels
        assert 0 <= x0 < x1 <= 1000 and 0 <= y0 < y1 <= 700


def test_low_vram_needs_cuda_and_names_bitsandbytes(tiny_dir, monkeypatch):
    import importlib.util

    from lasso_edit import Editor
    from lasso_edit.parse.local import bnb_4bit_config

    with pytest.raises(InvalidInputError, match="CUDA"):
        Editor.from_preset("tiny", device="cpu", low_vram=True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a))
    with pytest.raises(ModelUnavailableError, match="bitsandbytes"):
        bnb_4bit_config(torch.float16)


def test_the_vlm_is_asked_through_its_chat_template(tiny_dir, monkeypatch):
    from lasso_edit.parse.llava import LlavaParser

    vlm = LlavaParser.from_pretrained(str(tiny_dir / "vlm"))
    texts = []
    real = type(vlm.processor).__call__
    monkeypatch.setattr(type(vlm.processor), "__call__", lambda self, *a, **k: texts.append(k["text"]) or real(self, *a, **k))
    vlm.ask(scene(), "make the car red")
    assert texts[-1].startswith("USER: <image>") and texts[-1].rstrip().endswith("ASSISTANT:")
