"""The Qwen-VL planners: their frames against the processors' own resize, non-square photos in both
orientations; their native `bbox_2d` as the VLM box; attention read from them; the stage's pick."""

import json

import numpy as np
import pytest

from lasso_edit.core.errors import ModelUnavailableError
from lasso_edit.parse.llava import LlavaParser
from lasso_edit.parse.qwen import GROUND_PROMPT, QwenVLParser
from lasso_edit.parse.vlm import family
from lasso_edit.testing import resolve_tiny

from ..helpers import noise_image

KINDS = ["qwen2.5-vl", "qwen3-vl"]


@pytest.fixture(scope="module")
def qwen(tiny_dir):
    return {k: QwenVLParser.from_pretrained(resolve_tiny({"vlm": f"tiny:{k}"})["vlm"]) for k in KINDS}


SIZES = [(300, 500), (500, 300), (2000, 3000), (3000, 2000), (97, 61)]  # (h, w): both orientations, big, odd


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hw", SIZES)
def test_the_frame_is_the_processors_own_resize(qwen, kind, hw):
    vlm = qwen[kind]
    img = noise_image(*hw)
    inputs, _, small_hw = vlm.inputs(img, "where is the car?")
    _, gh, gw = inputs["image_grid_thw"][0].tolist()
    patch = vlm.processor.image_processor.patch_size
    assert vlm.resized(small_hw) == (gh * patch, gw * patch)  # what the model saw, as the processor made it
    assert small_hw[0] * small_hw[1] <= max(hw[0] * hw[1], 1) and abs(small_hw[0] / small_hw[1] - hw[0] / hw[1]) < 0.05


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("hw", SIZES)
def test_a_bbox_2d_in_the_models_frame_lands_on_the_same_place_in_the_photo(qwen, kind, hw):
    vlm = qwen[kind]
    h, w = hw
    rh, rw = vlm.resized(vlm.shrink(noise_image(h, w)).shape[:2])
    # the right half's lower quarter: in thousandths for Qwen3-VL, in the resized frame's pixels for Qwen2.5-VL
    if kind == "qwen3-vl":
        said = [500, 750, 1000, 1000]
    else:
        said = [rw / 2, rh * 3 / 4, rw, rh]
    answer = "```json\n" + json.dumps([{"bbox_2d": said, "label": "car"}]) + "\n```"
    box = vlm.box_from_answer(answer, (h, w), (rh, rw))
    assert box == pytest.approx((w / 2, h * 3 / 4, w, h), abs=1.0)
    assert vlm.box_from_answer("I cannot see it.", (h, w), (rh, rw)) is None
    assert vlm.box_from_answer('{"bbox_2d": [10, 10, 10, 40]}', (h, w), (rh, rw)) is None  # no width


@pytest.mark.parametrize("kind", KINDS)
def test_the_plan_takes_the_models_own_pointing_as_its_box(qwen, kind, monkeypatch):
    vlm = qwen[kind]
    img = noise_image(300, 500)
    rh, rw = vlm.resized(vlm.shrink(img).shape[:2])
    bbox = [0, 0, 500, 500] if kind == "qwen3-vl" else [0, 0, rw // 2, rh // 2]
    asked = []

    def ask(image, text, constrained=None):
        asked.append(text)
        if text == GROUND_PROMPT.format(phrase="car"):
            return json.dumps([{"bbox_2d": bbox, "label": "car"}])
        return '[["recolor","car","red",[60,60,90,90]]]'  # its plan's own box: the lower right

    monkeypatch.setattr(vlm, "ask", ask)
    plan = vlm.parse(img, "make the car red")
    assert plan.source == "vlm" and plan.edits[0].target == "car"
    assert plan.edits[0].box == pytest.approx((0, 0, 250, 150), abs=1.0)  # the pointing, not the plan's
    assert asked[-1] == GROUND_PROMPT.format(phrase="car")
    # a whole-photo edit points at nothing
    asked.clear()
    monkeypatch.setattr(vlm, "ask", lambda image, text, constrained=None: (asked.append(text), '[["style",null,"winter",null]]')[1])
    vlm.parse(img, "make it look like winter")
    assert not any(t.startswith("Locate") for t in asked)


@pytest.mark.parametrize("kind", KINDS)
def test_attention_is_read_from_qwen_with_a_place_for_every_image_token(qwen, kind):
    from lasso_edit.ground.attention import AttentionSettings, heatmap

    vlm = qwen[kind]
    img = noise_image(120, 200)
    heat = heatmap(vlm, img, "car", AttentionSettings())
    inputs, _, _ = vlm.inputs(img, "where is the car?")
    n_tokens = int((inputs["input_ids"][0] == vlm.model.config.image_token_id).sum())
    assert len(heat.centers) == n_tokens and np.isfinite(heat.values).all()
    assert (heat.centers[:, 0] > 0).all() and (heat.centers[:, 0] < 200).all()
    assert (heat.centers[:, 1] > 0).all() and (heat.centers[:, 1] < 120).all()


def test_the_vlm_stage_picks_the_family_from_the_checkpoint(tiny_dir):
    assert family(resolve_tiny({"vlm": "tiny:qwen3-vl"})["vlm"]) is QwenVLParser
    assert family(resolve_tiny({"vlm": "tiny:qwen2.5-vl"})["vlm"]) is QwenVLParser
    assert family(str(tiny_dir / "vlm")) is LlavaParser
    with pytest.raises(ModelUnavailableError, match="is a 'owlv2' model; Lasso reads llava, .*qwen3_vl"):
        family(str(tiny_dir / "detector"))


@pytest.mark.parametrize("kind", KINDS)
def test_image_tokens_are_placed_row_by_row_over_merged_cells(qwen, kind):
    vlm = qwen[kind]
    img = noise_image(120, 200)
    inputs, _, small_hw = vlm.inputs(img, "where is the car?")
    _, gh, gw = inputs["image_grid_thw"][0].tolist()
    m = vlm.processor.image_processor.merge_size
    rows, cols = gh // m, gw // m
    centers, cells, _ = vlm.token_places(inputs, small_hw, (120, 200))
    assert centers.shape == (rows * cols, 2) and cols > rows  # a landscape photo: more columns
    assert centers[1] == pytest.approx((1.5 * 200 / cols, 0.5 * 120 / rows))  # the second token: one cell right
    assert centers[cols] == pytest.approx((0.5 * 200 / cols, 1.5 * 120 / rows))  # the next row
    assert cells[0] == pytest.approx((200 / cols, 120 / rows))
