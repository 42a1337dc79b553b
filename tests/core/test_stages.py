"""Each model-backed stage with the tiny random models, loaded through from_pretrained."""

import numpy as np
import pytest

from lasso_edit.core.errors import ModelUnavailableError
from lasso_edit.core.plan import Action, Correction, Edit, Grounding

from ..helpers import noise_image, scene


@pytest.fixture(scope="module")
def stages(tiny_dir):
    from lasso_edit.edit.inpaint import Inpainter
    from lasso_edit.ground.detector import Detector
    from lasso_edit.parse.llava import LlavaParser
    from lasso_edit.segment.sam import SamSegmenter

    return {
        "vlm": LlavaParser.from_pretrained(str(tiny_dir / "vlm")),
        "segmenter": SamSegmenter.from_pretrained(str(tiny_dir / "segmenter")),
        "inpainter": Inpainter.from_pretrained(str(tiny_dir / "inpainter"), default_steps=2),
        "detector": Detector.from_pretrained(str(tiny_dir / "detector")),
    }


def test_vlm_noise_falls_back_to_rules_with_a_warning(stages):
    plan = stages["vlm"].parse(scene(), "make the car red")
    assert plan.source == "rules (fallback)"
    assert [(e.action, e.target, e.value) for e in plan.edits] == [(Action.RECOLOR, "car", "red")]
    assert plan.warnings and "unusable" in plan.warnings[0]
    assert plan.raw_answer is not None


def test_vlm_answer_is_used_when_it_is_valid(stages, monkeypatch):
    vlm = stages["vlm"]
    calls = []

    def fake_ask(image, text):  # the model's text is replaced; parsing and frame mapping are real
        calls.append(text)
        return "oops" if len(calls) == 1 else '{"edits":[{"action":"remove","target":"dog","box":[0,0,1,1]}]}'

    monkeypatch.setattr(vlm, "ask", fake_ask)
    monkeypatch.setattr(vlm, "constrained", False)  # without xgrammar: a bad answer is re-asked once
    plan = vlm.parse(noise_image(60, 120), "remove the dog")
    assert plan.source == "vlm" and len(calls) == 2 and "could not be used" in calls[1]
    # llava-1.5's centre crop of a 120x60 image shows x in [30, 90]
    assert plan.edits[0].box == pytest.approx((30.0, 0.0, 90.0, 60.0), abs=1.0)


def test_vlm_asks_through_the_chat_template(stages):
    text = stages["vlm"].ask(scene(), "hello")
    assert isinstance(text, str)


def test_sam_caches_the_embedding_per_image(stages):
    seg = stages["segmenter"]
    img = scene()
    before = seg.encodes
    a = seg.segment(img, Grounding([(10, 10, 80, 100)], [1.0], "test"))
    b = seg.segment(img, Grounding([(90, 30, 150, 90)], [1.0], "test"))
    assert seg.encodes == before + 1  # one encode, two prompts
    seg.segment(scene(100, 160), Grounding([(0, 0, 50, 50)], [1.0], "test"))
    assert seg.encodes == before + 2
    for s in (a, b):
        assert s.mask.shape == img.shape[:2] and s.mask.dtype == bool and s.mask.any()
        assert len(s.candidates) == 3 and len(s.candidate_scores) == 3
        assert s.score == pytest.approx(max(s.candidate_scores), abs=1e-6)  # one box: the best candidate's score


def test_sam_several_boxes_union(stages):
    seg = stages["segmenter"]
    g = Grounding([(0, 0, 40, 40), (100, 60, 160, 120)], [1.0, 1.0], "test")
    s = seg.segment(scene(), g)
    assert s.mask.shape == (120, 160)


def test_detector_boxes_are_in_image_pixels(stages):
    boxes, scores = stages["detector"].detect(noise_image(90, 140), "car")
    assert boxes and scores == sorted(scores, reverse=True)
    for x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= 140 and 0 <= y0 < y1 <= 90


@pytest.mark.parametrize("h,w", [(96, 1024), (517, 333), (64, 64)])
def test_inpainter_changes_only_the_crop(stages, h, w):
    img = noise_image(h, w)
    region = np.zeros((h, w), bool)
    region[h // 3: h // 2, w // 3: w // 2] = True
    from lasso_edit.edit.base import ExecSettings
    from lasso_edit.imaging.arrays import crop_window

    out = stages["inpainter"].execute(img, region, Edit(Action.REPLACE, "thing", "cat"), ExecSettings(seed=0, steps=2))
    assert out.shape == img.shape and out.dtype == np.uint8
    x0, y0, x1, y1 = crop_window(region, min_side=stages["inpainter"].native // 4)
    outside = np.ones((h, w), bool)
    outside[y0:y1, x0:x1] = False
    assert (out[outside] == img[outside]).all()
    assert (out[region] != img[region]).any()


def test_inpainter_is_seeded(stages):
    img = scene()
    region = np.zeros(img.shape[:2], bool)
    region[30:90, 40:120] = True
    from lasso_edit.edit.base import ExecSettings

    e = Edit(Action.REMOVE, "disc")
    a = stages["inpainter"].execute(img, region, e, ExecSettings(seed=5, steps=2))
    b = stages["inpainter"].execute(img, region, e, ExecSettings(seed=5, steps=2))
    c = stages["inpainter"].execute(img, region, e, ExecSettings(seed=6, steps=2))
    assert (a == b).all() and (a != c).any()


def test_loading_errors_are_typed(tmp_path):
    from lasso_edit.segment.sam import SamSegmenter

    with pytest.raises(ModelUnavailableError, match="not-a-real/model"):
        SamSegmenter.from_pretrained("not-a-real/model")
    with pytest.raises(ModelUnavailableError):
        SamSegmenter.from_pretrained(str(tmp_path))  # an empty folder


def test_wrong_kind_of_model_is_named(tiny_dir):
    from lasso_edit.parse.llava import LlavaParser

    with pytest.raises(ModelUnavailableError, match="LLaVA"):
        LlavaParser.from_pretrained(str(tiny_dir / "segmenter"))


def test_detector_takes_long_phrases(stages):
    boxes, _ = stages["detector"].detect(scene(), "tall person holding a bright red umbrella near the old wooden bench")
    assert isinstance(boxes, list)


def test_sam2_through_the_same_segmenter(tmp_path):
    """SAM 2 (default Sam2Config = hiera-tiny, random weights): several boxes, cached embedding."""
    import torch
    import transformers

    if not hasattr(transformers, "Sam2Model"):
        pytest.skip("this transformers has no Sam2Model")
    from lasso_edit.segment.sam import SamSegmenter

    torch.manual_seed(0)
    transformers.Sam2Model(transformers.Sam2Config()).eval().save_pretrained(tmp_path)
    transformers.Sam2Processor(image_processor=transformers.Sam2ImageProcessor()).save_pretrained(tmp_path)
    seg = SamSegmenter.from_pretrained(str(tmp_path))
    assert seg.is_sam2
    img = noise_image(90, 140)
    s = seg.segment(img, Grounding([(10, 10, 80, 60), (90, 20, 130, 80)], [1.0, 1.0], "test"))
    assert s.mask.shape == (90, 140) and s.mask.any() and len(s.candidates) == 3
    seg.segment(img, Grounding([(0, 0, 50, 50)], [1.0], "test"))
    assert seg.encodes == 1
    # Prompts reach the model as Sam2Processor scales them (to its square frame: x and y differ).
    seen, forward = [], seg.model.forward
    seg.model.forward = lambda *a, **k: seen.append(k) or forward(*a, **k)
    seg.segment(img, Grounding([(10, 10, 80, 60)], [1.0], "test"),
                Correction(points=[(30, 20), (70, 50)], labels=[1, 0]))
    ref = seg.processor(images=None, input_points=[[[[30, 20], [70, 50]]]], input_labels=[[[1, 0]]],
                        input_boxes=[[[10, 10, 80, 60]]], original_sizes=[[90, 140]], return_tensors="pt")
    for key in ("input_points", "input_boxes"):
        np.testing.assert_allclose(seen[-1][key].float().numpy(), ref[key].float().numpy(), rtol=1e-4)
    assert seen[-1]["input_labels"].tolist() == ref["input_labels"].tolist()


def test_sdxl_inpainting_is_picked_from_the_checkpoint(tmp_path):
    from lasso_edit.edit.base import ExecSettings
    from lasso_edit.edit.inpaint import Inpainter
    from lasso_edit.testing.tiny import build_tiny_sdxl_inpaint

    inp = Inpainter.from_pretrained(str(build_tiny_sdxl_inpaint(tmp_path / "sdxl")), default_steps=2)
    assert type(inp.pipe).__name__ == "StableDiffusionXLInpaintPipeline"
    img = noise_image(90, 140)
    region = np.zeros((90, 140), bool)
    region[20:60, 30:90] = True
    out = inp.execute(img, region, Edit(Action.REPLACE, "dog", "cat"), ExecSettings(seed=0, steps=2))
    assert out.shape == img.shape and (out[region] != img[region]).any()


def test_llava_onevision_is_picked_from_the_config(tmp_path):
    from lasso_edit.parse.llava import LlavaParser
    from lasso_edit.testing.tiny import build_tiny_llava_onevision

    parser = LlavaParser.from_pretrained(str(build_tiny_llava_onevision(tmp_path / "ov")))
    assert type(parser.model).__name__ == "LlavaOnevisionForConditionalGeneration"
    plan = parser.parse(noise_image(90, 140), "remove the dog")
    assert [e.describe() for e in plan.edits] == ["remove the dog"]
    # anyres models see the whole image: the box frame is the original one
    assert parser.frame(noise_image(90, 140)).to_pixels((0.5, 0.5, 1.0, 1.0)) == (70.0, 45.0, 140.0, 90.0)


def test_grounding_dino_boxes_are_in_image_pixels(tmp_path):
    from lasso_edit.ground.detector import Detector
    from lasso_edit.testing.tiny import build_tiny_grounding_dino

    det = Detector.from_pretrained(str(build_tiny_grounding_dino(tmp_path / "gd")))
    assert det.kind == "grounding-dino"
    for h, w in ((90, 140), (140, 90)):
        boxes, scores = det.detect(noise_image(h, w), "red car")
        assert boxes and scores == sorted(scores, reverse=True)
        assert all(0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h for x0, y0, x1, y1 in boxes)
