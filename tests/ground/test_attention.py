"""Attention-guided grounding (ground/attention.py) with the tiny LLaVA, LLaVA-NeXT and OneVision.

Where each image token looks is checked against the processor itself: a photo whose colours encode
their own coordinates goes through the real processor, and each token's patch of `pixel_values`
says which original pixels it saw. A planted attention peak (a test double of the attention
layers' output) must land on those pixels.
"""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest
import torch

from lasso_edit.core.plan import Action, Edit, Grounding
from lasso_edit.ground import attention as att
from lasso_edit.ground.attention import AttentionSettings, Heatmap, heatmap, prompts
from lasso_edit.parse import llava_attention as la
from lasso_edit.parse.llava import LlavaParser
from lasso_edit.parse.llava_attention import token_places

from ..helpers import noise_image

SHAPES = [(90, 160), (160, 90)]  # landscape and portrait


@pytest.fixture(scope="module")
def vlms(tiny_dir, tmp_path_factory):
    from lasso_edit.testing.tiny import build_tiny_llava_next, build_tiny_llava_onevision

    root = tmp_path_factory.mktemp("vlms")
    return {
        "llava": LlavaParser.from_pretrained(str(tiny_dir / "vlm")),
        "llava_next": LlavaParser.from_pretrained(str(build_tiny_llava_next(root / "next"))),
        "llava_onevision": LlavaParser.from_pretrained(str(build_tiny_llava_onevision(root / "ov"))),
    }


def coordinate_image(h: int, w: int) -> np.ndarray:
    """Red = x, green = y (as fractions of the width and height), blue = 255 (padding is 0)."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([np.round(255 * (xx + 0.5) / w), np.round(255 * (yy + 0.5) / h),
                      np.full((h, w), 255)]).astype(np.uint8)


def seen_by_tokens(vlm, inputs, h: int, w: int) -> np.ndarray:
    """(N, 2) the mean original XY each image token's patch saw, decoded from the processor's
    pixel_values of a coordinate image, in the prompt's token order; NaN for a token that has no
    patch or whose patch is partly padding."""
    ip, cfg = vlm.processor.image_processor, vlm.model.config
    mean = torch.tensor(ip.image_mean).view(3, 1, 1)
    std = torch.tensor(ip.image_std).view(3, 1, 1)
    pv = inputs["pixel_values"].float().cpu()
    tiles = pv[0] if pv.dim() == 5 else pv  # (tiles, 3, S, S)
    rgb = (tiles * std + mean) * 255
    side, patch = cfg.vision_config.image_size, cfg.vision_config.patch_size
    g = side // patch
    cells = rgb.reshape(rgb.shape[0], 3, g, patch, g, patch).mean(dim=(3, 5))  # (tiles, 3, g, g)
    x = cells[:, 0] / 255 * w - 0.5
    y = cells[:, 1] / 255 * h - 0.5
    valid = cells[:, 2] > 250
    feats = torch.stack([torch.where(valid, x, torch.nan), torch.where(valid, y, torch.nan),
                         torch.ones_like(x)], dim=-1).reshape(rgb.shape[0], g * g, 3)
    if cfg.model_type == "llava":
        return feats[0, :, :2].numpy()
    n = vlm.model.model  # the library's own packing of the tiles' tokens
    mod = importlib.import_module(type(vlm.model).__module__)
    hw = inputs["image_sizes"][0].tolist()
    n_tiles = mod.image_size_to_num_patches(image_size=hw, grid_pinpoints=cfg.image_grid_pinpoints, patch_size=side)
    kwargs = {"image_newline": torch.tensor([torch.nan, torch.nan, 0.0])}
    params = inspect.signature(n.pack_image_features).parameters
    if "vision_aspect_ratio" in params:
        kwargs["vision_aspect_ratio"] = cfg.vision_aspect_ratio
    if "vision_feature_select_strategy" in params:
        kwargs["vision_feature_select_strategy"] = cfg.vision_feature_select_strategy
    packed, _ = n.pack_image_features([feats[:n_tiles]], inputs["image_sizes"], **kwargs)
    return packed[0][:, :2].numpy()


def places(vlm, image):
    inputs, _, small = vlm.inputs(image, "Where is the car in this image?")
    centers, cells, groups = token_places(vlm, inputs, small, image.shape[:2])
    return inputs, centers, cells, groups


def layout(vlm, h: int, w: int):
    """A coordinate photo through `vlm`'s processor: (image, inputs, our places of its tokens
    (centres, cells, groups), and what each token's pixels show it saw)."""
    image = coordinate_image(h, w)
    inputs, centers, cells, groups = places(vlm, image)
    return image, inputs, centers, cells, groups, seen_by_tokens(vlm, inputs, h, w)


EVERY_VLM = pytest.mark.parametrize("kind", ["llava", "llava_next", "llava_onevision"])
BOTH_ORIENTATIONS = pytest.mark.parametrize("shape", SHAPES, ids=["landscape", "portrait"])


@EVERY_VLM
@BOTH_ORIENTATIONS
def test_every_image_token_is_placed_where_the_processor_shows_it_pixels(vlms, kind, shape):
    vlm = vlms[kind]
    h, w = shape
    image, inputs, centers, cells, groups, seen = layout(vlm, h, w)
    n_image = int((inputs["input_ids"][0] == vlm.model.config.image_token_id).sum())
    assert len(centers) == len(seen) == n_image
    ok = np.isfinite(seen).all(axis=1)
    assert ok.sum() >= 0.6 * np.isfinite(centers).all(axis=1).sum()
    err = np.abs(centers[ok] - seen[ok])
    assert (err <= 0.1 * cells[ok] + 0.6).all(), err.max(axis=0)
    # the tokens' cells tile what the model saw: for anyres the whole photo, for llava-1.5 its centre crop
    lo, hi = (centers - cells / 2)[ok].min(axis=0), (centers + cells / 2)[ok].max(axis=0)
    if kind == "llava":
        long_axis = int(w < h)  # x for landscape, y for portrait
        assert lo[1 - long_axis] == pytest.approx(0, abs=1) and hi[1 - long_axis] == pytest.approx(shape[long_axis], abs=1)
        assert lo[long_axis] > 10 and hi[long_axis] < max(h, w) - 10  # the crop cut the long sides
    else:
        assert lo == pytest.approx([0, 0], abs=1) and hi == pytest.approx([w, h], abs=1)
        assert set(groups) == {0, 1}  # the overview and the tiles


def plant(vlm, image, token: int, settings: AttentionSettings = AttentionSettings()):
    """A test double of every decoder layer's attention output: in the target pass every query
    looks only at image token `token`; in the generic pass evenly at every image token."""
    target_len = vlm.inputs(image, att.TARGET_PROMPT.format(phrase="car"))[0]["input_ids"].shape[1]
    image_pos = (vlm.inputs(image, "x")[0]["input_ids"][0] == vlm.model.config.image_token_id).nonzero().flatten()

    def double(module, args, out):
        weights = torch.zeros_like(out[1])
        if weights.shape[-1] == target_len:
            weights[..., image_pos[token]] = 1.0
        else:
            weights[..., image_pos] = 1.0 / len(image_pos)
        return (out[0], weights, *out[2:])

    layers = la._language_model(vlm.model).layers
    return [layer.self_attn.register_forward_hook(double) for layer in layers]


@EVERY_VLM
@BOTH_ORIENTATIONS
def test_a_planted_attention_peak_lands_on_the_pixels_its_token_saw(vlms, kind, shape):
    vlm = vlms[kind]
    h, w = shape
    image, inputs, centers, cells, groups, seen = layout(vlm, h, w)
    ok = np.flatnonzero(np.isfinite(seen).all(axis=1))
    # a token far from the centre, and for anyres one of the tiles' tokens too
    far = ok[np.argmax(np.abs(seen[ok] - [w / 2, h / 2]).sum(axis=1))]
    tokens = {int(far)}
    if kind != "llava":
        tiles = ok[groups[ok] == 0]
        tokens.add(int(tiles[len(tiles) // 3]))
    for token in tokens:
        handles = plant(vlm, image, token)
        try:
            heat = heatmap(vlm, image, "car")
        finally:
            for hnd in handles:
                hnd.remove()
        x, y = heat.peak()
        cx, cy = seen[token]
        cw, ch = cells[token]
        assert abs(x - cx) <= cw / 2 + 1 and abs(y - cy) <= ch / 2 + 1, (token, (x, y), (cx, cy))
        pts, labels, box = prompts(heat)
        assert labels[0] == 1 and abs(pts[0][0] - cx) <= cw / 2 + 1 and abs(pts[0][1] - cy) <= ch / 2 + 1
        assert box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
        assert (box[2] - box[0]) * (box[3] - box[1]) < 0.25 * w * h  # the hot region, not the photo


def test_relative_attention_cancels_a_sink_that_both_prompts_look_at(vlms):
    vlm = vlms["llava"]
    image = coordinate_image(90, 160)
    inputs, centers, cells, _ = places(vlm, image)
    sink, target = 0, len(centers) - 1  # opposite corners of the crop
    target_len = vlm.inputs(image, att.TARGET_PROMPT.format(phrase="car"))[0]["input_ids"].shape[1]
    image_pos = (inputs["input_ids"][0] == vlm.model.config.image_token_id).nonzero().flatten()

    def double(module, args, out):
        w = torch.zeros_like(out[1])
        if w.shape[-1] == target_len:  # the target prompt: most on the sink, some on the target
            w[..., image_pos[sink]], w[..., image_pos[target]] = 0.6, 0.4
        else:  # the generic prompt: the sink, and a little everywhere
            w[..., image_pos] = 0.1 / (len(image_pos) - 1)
            w[..., image_pos[sink]] = 0.9
        return (out[0], w, *out[2:])

    handles = [layer.self_attn.register_forward_hook(double) for layer in la._language_model(vlm.model).layers]
    try:
        heat = heatmap(vlm, image, "car")
    finally:
        for hnd in handles:
            hnd.remove()
    x, y = heat.peak()
    assert abs(x - centers[target][0]) <= cells[target][0] / 2 + 1 and abs(y - centers[target][1]) <= cells[target][1] / 2 + 1


@EVERY_VLM
def test_the_attention_pass_reads_eager_weights_and_generation_keeps_sdpa(vlms, kind, monkeypatch):
    vlm = vlms[kind]
    lm = la._language_model(vlm.model)
    assert lm.config._attn_implementation == "sdpa"
    image = noise_image(48, 80)
    calls = {"sdpa": 0}
    real = torch.nn.functional.scaled_dot_product_attention

    def counting(*a, **k):
        calls["sdpa"] += 1
        return real(*a, **k)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting)
    heat = heatmap(vlm, image, "car")
    assert np.isfinite(heat.values).all() and heat.values.std() > 0  # real weights were read
    assert lm.config._attn_implementation == "sdpa"
    text_calls = calls["sdpa"]
    vlm.ask(image, "make the car red", constrained=False)
    assert calls["sdpa"] > text_calls  # generation ran on SDPA again
    assert lm.config._attn_implementation == "sdpa"


def test_the_attention_pass_restores_sdpa_when_it_fails(vlms):
    vlm = vlms["llava"]
    lm = la._language_model(vlm.model)
    with pytest.raises(Exception):
        heatmap(vlm, noise_image(40, 40), "car", AttentionSettings(heads=(99,)))
    assert lm.config._attn_implementation == "sdpa"


def test_the_layers_read_are_the_middle_band_unless_chosen(vlms):
    assert AttentionSettings().layer_indices(32) == list(range(11, 19))  # includes the paper's layer 14
    assert AttentionSettings(layers=(14, -1)).layer_indices(32) == [14, 31]
    assert AttentionSettings.parse_layers("12-14,20") == (12, 13, 14, 20)
    from lasso_edit.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="layer 40 does not exist"):
        AttentionSettings(layers=(40,)).layer_indices(32)
    with pytest.raises(InvalidInputError, match="12-18"):
        AttentionSettings.parse_layers("middle")
    calls = []
    layers = la._language_model(vlms["llava"].model).layers
    hooks = [layer.self_attn.register_forward_hook(lambda m, a, o, i=i: calls.append(i)) for i, layer in enumerate(layers)]
    try:
        heat = heatmap(vlms["llava"], noise_image(40, 40), "car", AttentionSettings(layers=(1,)))
    finally:
        for hk in hooks:
            hk.remove()
    assert heat.layers == (1,)


def test_the_target_phrase_tokens_are_the_queries(vlms):
    vlm = vlms["llava"]
    inputs, prompt, _ = vlm.inputs(noise_image(40, 40), "Where is the red car in this image?")
    ids = inputs["input_ids"][0].tolist()
    pos = la.query_positions(vlm.processor.tokenizer, prompt, "red car", ids, vlm.model.config.image_token_id)
    assert pos and pos[-1] < len(ids) - 1
    assert vlm.processor.tokenizer.decode([ids[i] for i in pos]).strip() == "red car"


# --------------------------------------------------------------------------- heatmap -> prompts
def blob_heatmap(w: int = 200, h: int = 100, at=(150, 30)) -> Heatmap:
    ys, xs = np.mgrid[0:10, 0:20]
    centers = np.stack([(xs.ravel() + 0.5) * 10, (ys.ravel() + 0.5) * 10], axis=1).astype(np.float32)
    d2 = ((centers - at) ** 2).sum(axis=1)
    values = np.exp(-d2 / (2 * 12.0 ** 2)).astype(np.float32)
    return Heatmap(w, h, centers, np.full_like(centers, 10), values, np.ones(len(values), np.int8))


def test_prompts_put_positive_points_on_the_peak_negatives_far_from_it_and_a_box_around_it():
    pts, labels, box = prompts(blob_heatmap(), AttentionSettings(points=3, negatives=2))
    pos = [p for p, lab in zip(pts, labels) if lab == 1]
    neg = [p for p, lab in zip(pts, labels) if lab == 0]
    assert 1 <= len(pos) <= 3 and len(neg) == 2
    assert abs(pos[0][0] - 150) <= 5 and abs(pos[0][1] - 30) <= 5
    assert all(box[0] <= x <= box[2] and box[1] <= y <= box[3] for x, y in pos)
    assert all(not (box[0] <= x <= box[2] and box[1] <= y <= box[3]) for x, y in neg)
    assert 120 < box[0] < 150 < box[2] < 180 and box[1] < 30 < box[3] < 60
    flat = blob_heatmap()
    flat.values[:] = 1.0
    assert prompts(flat) == ([], [], None)


def test_attention_mass_is_the_share_of_heat_in_a_box():
    heat = blob_heatmap()
    assert heat.mass((100, 0, 200, 70)) > 0.9
    assert heat.mass((0, 0, 80, 100)) < 0.02
    assert heat.mass((0, 0, 200, 100)) == pytest.approx(1.0)


# --------------------------------------------------------------------------- SAM and the grounders
def test_sam_is_prompted_with_the_groundings_points_box_and_labels(tiny_dir):
    from lasso_edit.core.plan import Correction
    from lasso_edit.segment.sam import SamSegmenter

    seg = SamSegmenter.from_pretrained(str(tiny_dir / "segmenter"))
    seen = {}
    forward = seg.model.forward

    def spy(*a, **k):
        seen.update(k)
        return forward(*a, **k)

    seg.model.forward = spy
    image = noise_image(60, 120)  # SAM resizes the long side to 64: prompts scale by 64 / 120
    g = Grounding([(10.0, 5.0, 70.0, 50.0)], [1.0], "attention", points=[(30.0, 20.0), (100.0, 50.0)], labels=[1, 0])
    out = seg.segment(image, g)
    assert out.mask.shape == (60, 120)
    # as SamProcessor itself scales prompts given in the photo's pixels (its _normalize_coordinates)
    longest = seg.processor.image_processor.size["longest_edge"]
    norm = seg.processor._normalize_coordinates
    points = norm(longest, np.array([[30.0, 20.0], [100.0, 50.0]]), (60, 120))
    box = norm(longest, np.array([[10.0, 5.0, 70.0, 50.0]]), (60, 120), is_bounding_box=True)
    np.testing.assert_allclose(seen["input_points"][0, 0].float().numpy(), points, rtol=1e-4)
    np.testing.assert_allclose(seen["input_boxes"][0].float().numpy(), box, rtol=1e-4)
    assert seen["input_labels"][0, 0].tolist() == [1, 0]
    seg.segment(image, g, Correction(points=[(5.0, 5.0)], labels=[0]))  # a person's points join them
    assert seen["input_labels"][0, 0].tolist() == [1, 0, 0]
    seg.segment(image, Grounding([], [], "attention", points=[(30.0, 20.0)], labels=[1]))  # points alone
    assert "input_boxes" not in seen or seen["input_points"].shape[2] == 1


class ThreeCars:
    """A detector double: three cars, the best-scored on the left."""

    boxes = [(0.0, 20.0, 40.0, 60.0), (60.0, 20.0, 100.0, 60.0), (120.0, 20.0, 160.0, 60.0)]

    def detect(self, image, phrase):
        return list(self.boxes), [0.9, 0.6, 0.5]


def test_auto_breaks_a_tie_by_the_vlms_attention_and_records_it(vlms):
    from lasso_edit.ground.strategies import AutoGrounder

    vlm = vlms["llava"]
    image = coordinate_image(90, 160)
    inputs, centers, cells, _ = places(vlm, image)
    in_middle = [int(np.argmin(((centers - [80, 40]) ** 2).sum(axis=1)))]  # the token nearest the middle car
    grounder = AutoGrounder(ThreeCars(), threshold=0.1, attention=(vlm, AttentionSettings()))
    edit = Edit(Action.RECOLOR, "car", "red")
    handles = plant(vlm, image, in_middle[0])
    try:
        g = grounder.ground(image, edit)
        assert g.boxes == [ThreeCars.boxes[1]] and g.source == "detector+attention"
        assert len(g.attention) == 3 and int(np.argmax(g.attention)) == 1 and g.heatmap is not None
        assert g.to_dict()["candidate_attention"] == g.attention
        # the instruction's own choice still wins over the attention
        g = grounder.ground(image, Edit(Action.RECOLOR, "car", "red", qualifier="right"))
        assert g.boxes == [ThreeCars.boxes[2]] and g.source == "detector" and not g.attention
    finally:
        for hnd in handles:
            hnd.remove()
    plain = AutoGrounder(ThreeCars(), threshold=0.1).ground(image, edit)  # no VLM loaded: the score decides
    assert plain.boxes == [ThreeCars.boxes[0]] and plain.heatmap is None


def test_auto_reads_attention_only_when_the_vlm_is_loaded(tiny_dir):
    from lasso_edit import Editor
    from lasso_edit.pipeline.editor import _StageAccess

    editor = Editor.from_preset("tiny", parser="vlm", grounder="auto", paint=False)
    access = _StageAccess(editor)
    assert not access.loaded("vlm")
    assert editor.grounder.attention is None  # a tie never loads the VLM on its own
    editor.stage("vlm")
    assert editor.grounder.attention is not None


def test_the_attention_grounder_gives_sam_a_box_and_points_and_keeps_the_heatmap(vlms):
    from lasso_edit.ground.strategies import AttentionGrounder

    vlm = vlms["llava_next"]
    image = coordinate_image(90, 160)
    g = AttentionGrounder(vlm).ground(image, Edit(Action.RECOLOR, "car", "red"))
    assert g.source == "attention" and len(g.boxes) == 1 and g.heatmap is not None
    assert 1 in g.labels and len(g.points) == len(g.labels)
    assert g.heatmap.full().shape == (90, 160)
    style = AttentionGrounder(vlm).ground(image, Edit(Action.STYLE, None, "watercolor"))
    assert style.source == "whole-image" and style.heatmap is None
    added = AttentionGrounder(vlm).ground(image, Edit(Action.ADD, "man", "hat", relation="on"))
    assert added.source == "attention+placement" and not added.points
