"""Issue 28 #15: a part of an instruction Lasso cannot do stops the whole instruction, naming it, unless
the user asks for the rest (`skip_unknown`); every parser, the VLM's included, follows the same rule."""

import pytest

from lasso_edit.core.errors import InvalidInstructionError, UnsupportedEditError
from lasso_edit.core.plan import Action
from lasso_edit.parse.rules import RulesParser, parse_instruction

from ..helpers import scene

INSTRUCTION = "rotate the photo 90 degrees and make it 4K"
RESTORE = "is not an edit Lasso makes (a restoration or upscaling tool does that)"


def test_a_partly_possible_instruction_is_refused_naming_each_part_and_what_lasso_does():
    with pytest.raises(UnsupportedEditError) as e:
        RulesParser().parse(None, INSTRUCTION)
    said = str(e.value)
    assert "'rotate' is not an edit Lasso makes (geometry" in said
    assert f"'make it 4K' {RESTORE}" in said  # in the user's words, "4K" not "4k"
    assert "blur, pixelate" in said and "\n" not in said  # what Lasso does instead, on one line
    assert e.value.parts == ["rotate the photo 90 degrees", "make it 4K"]
    assert isinstance(e.value, InvalidInstructionError)  # exit 2, HTTP 422, as any bad instruction


def test_asked_for_the_rest_the_parts_are_left_out_with_a_warning_and_4k_is_no_restyle():
    plan = RulesParser().parse(None, INSTRUCTION, skip_unknown=True)
    assert plan.edits == []  # "4K" was a restyle of the whole photo; the rotation was dropped quietly
    assert len(plan.warnings) == 2
    assert "'rotate the photo 90 degrees' was left out" in plan.warnings[0] and "'make it 4K'" in plan.warnings[1]
    plan = RulesParser().parse(None, "make the car red and make it 4K", skip_unknown=True)
    assert [(e.action, e.target, e.value) for e in plan.edits] == [(Action.RECOLOR, "car", "red")]


@pytest.mark.parametrize(
    "words",
    [
        "make it 4K",
        "upscale the photo",
        "make the picture higher resolution",
        "increase the resolution",
        "super-resolve the image",
        "enhance resolution",
        "upscale it to 4k",
        "render it in 8K",
        "increase the image resolution",
        "make it sharper",
        "sharpen the photo",
    ],
)
def test_resolution_and_restoration_are_refused_as_sharpen_is(words):
    with pytest.raises(UnsupportedEditError, match=RESTORE.replace("(", r"\(").replace(")", r"\)")):
        parse_instruction(words)
    with pytest.raises(UnsupportedEditError, match=r"nothing was done: .*--skip-unknown"):
        RulesParser().parse(None, f"remove the dog and {words}")  # with a rest: how to ask for it


@pytest.mark.parametrize(
    "words,plan",
    [
        ("remove the dog and rotate the photo", [(Action.REMOVE, "dog")]),  # no object called "rotate the photo"
        ("remove the dog, then rotate it", [(Action.REMOVE, "dog")]),
        ("mirror the photo and make the sky blue", [(Action.RECOLOR, "sky")]),
        ("make the car red and sing a song", [(Action.RECOLOR, "car")]),  # not understood: refused too
    ],
)
def test_the_part_is_never_read_as_an_edit_and_skipping_keeps_the_rest(words, plan):
    with pytest.raises(UnsupportedEditError):
        RulesParser().parse(None, words)
    kept = RulesParser().parse(None, words, skip_unknown=True)
    assert [(e.action, e.target) for e in kept.edits] == plan and len(kept.warnings) == 1


@pytest.mark.parametrize(
    "words,plan",
    [
        ("replace the TV with a 4K TV", [(Action.REPLACE, "tv")]),  # 4K inside a value is the user's words
        ("I love this photo, make the sky blue", [(Action.RECOLOR, "sky")]),  # a remark asks for nothing
        ("the lamp is ugly, get rid of it", [(Action.REMOVE, "lamp")]),
        ("remove the cat and the mirror", [(Action.REMOVE, "cat"), (Action.REMOVE, "mirror")]),
        ("make it look like winter", [(Action.STYLE, None)]),
    ],
)
def test_what_lasso_does_is_not_refused(words, plan):
    got = RulesParser().parse(None, words)
    assert [(e.action, e.target) for e in got.edits] == plan


# --- The VLM's path: the real LLaVA planner (prompt, answer parsing, rules fallback), its text replaced.
@pytest.fixture(scope="module")
def vlm(tiny_dir):
    from lasso_edit.parse.llava import LlavaParser

    return LlavaParser.from_pretrained(str(tiny_dir / "vlm"))


def _parsers(vlm):
    from lasso_edit.parse.auto import AutoParser
    from lasso_edit.parse.rules_first import RulesFirstParser

    return {"vlm": vlm, "auto": AutoParser(vlm), "rules-first": RulesFirstParser(lambda: vlm)}


@pytest.mark.parametrize("name", ["vlm", "auto", "rules-first"])
def test_a_vlm_planner_refuses_before_the_vlm_is_asked_and_asks_only_the_rest(vlm, monkeypatch, name):
    asked: list[str] = []
    monkeypatch.setattr(vlm, "constrained", True)
    # what a VLM answers for these words: a restyle "4K" and a removal, were it asked the whole of them
    monkeypatch.setattr(vlm, "ask", lambda image, text: asked.append(text) or '[["style",null,"4K",null]]')
    parser = _parsers(vlm)[name]
    for words in (INSTRUCTION, "sharpen the photo", "make the dog blurry and make it 4K"):
        with pytest.raises(UnsupportedEditError):
            parser.parse(scene(), words)
    assert asked == []  # refused before the VLM was asked: no restyle could slip through
    plan = parser.parse(scene(), INSTRUCTION, skip_unknown=True)
    assert plan.edits == [] and asked == [] and plan.instruction == INSTRUCTION and len(plan.warnings) == 2
    monkeypatch.setattr(vlm, "ask", lambda image, text: asked.append(text) or '[["remove","the dog",null,null]]')
    plan = parser.parse(scene(), "rotate it and remove the dog, then make it 4K", skip_unknown=True)
    assert [(e.action, e.target) for e in plan.edits] == [(Action.REMOVE, "dog")]
    assert not any("4k" in t.lower().split("instruction:")[-1] for t in asked)  # the VLM never read "4K"
    assert plan.instruction == "rotate it and remove the dog, then make it 4K"
    assert [w.split("'")[1] for w in plan.warnings[:2]] == ["rotate it", "make it 4K"]


def test_a_rules_fallback_refusal_keeps_its_parts(vlm, monkeypatch):
    monkeypatch.setattr(vlm, "constrained", True)
    monkeypatch.setattr(vlm, "ask", lambda image, text: '[["style","qzx wvk",null,null]]')  # unusable: names nothing
    with pytest.raises(UnsupportedEditError, match="the VLM's plan was unusable") as e:
        vlm.parse(scene(), "make the ball red and sing a song")
    assert e.value.parts == ["sing a song"]
    plan = vlm.parse(scene(), "make the ball red and sing a song", skip_unknown=True)
    assert plan.source == "rules (fallback)" and [e.target for e in plan.edits] == ["ball"]
