"""The Editor end to end with the `tiny` preset: real library classes, random tiny weights."""

import numpy as np
import pytest
from PIL import Image

from lasso_edit import Editor, EditPlan, ModelUnavailableError, TargetNotFoundError
from lasso_edit.core.errors import InvalidInputError, InvalidInstructionError
from lasso_edit.core.plan import Action, Edit, Grounding
from lasso_edit.imaging import load_image

from ..helpers import noise_image, scene


# 1x1 to 7x7: any image is an input; 8x4000 and 4000x8: SAM's resize would leave a side of 0 pixels.
@pytest.mark.parametrize(
    "h,w",
    [
        (517, 333),
        (96, 1024),
        (1024, 96),
        (64, 64),
        (251, 397),
        (8, 8),
        (1, 1),
        (2, 3),
        (7, 7),
        (8, 4000),
        (4000, 8),
        (1, 200),
    ],
)
def test_preservation_outside_the_mask_at_many_sizes(tiny_editor, h, w):
    img = noise_image(h, w, seed=h + w)
    for instruction in ("make the ball red", "remove the ball"):
        res = tiny_editor(img, instruction, seed=3)
        out = np.asarray(res.image)
        assert out.shape == img.shape
        assert (out[~res.mask] == img[~res.mask]).all()
        assert res.mask.any()
        assert (res.alpha[~res.mask] == 0).all()


def test_result_carries_plan_seed_timings_models(tiny_editor):
    res = tiny_editor(scene(), "make the car red", seed=11)
    assert res.seed == 11 and res.plan.edits[0].action is Action.RECOLOR
    assert {"parse", "ground", "segment", "edit", "total"} <= set(res.timings)
    assert set(res.models) >= {"vlm", "segmenter", "inpainter"}
    assert res.warnings  # the tiny VLM speaks noise: the fallback is reported
    summary = res.summary()
    assert summary["seed"] == 11 and summary["plan"]["edits"][0]["target"] == "car"


def test_same_seed_same_result_and_random_seed_is_recorded(tiny_editor):
    img = scene()
    a = tiny_editor(img, "remove the car", seed=4)
    b = tiny_editor(img, "remove the car", seed=4)
    assert (np.asarray(a.image) == np.asarray(b.image)).all()
    c = tiny_editor(img, "remove the car")
    assert isinstance(c.seed, int)


def test_modes_round_trip(tiny_editor, tmp_path):
    rgba = noise_image(80, 60, 4)
    rgba[:, :, 3] = np.linspace(0, 255, 60).astype(np.uint8)[None]
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    res = tiny_editor(str(tmp_path / "a.png"), "remove the ball", seed=1)
    assert res.image.mode == "RGBA" and res.image.size == (60, 80)
    assert (np.asarray(res.image)[..., 3] == rgba[..., 3]).all()  # alpha kept
    Image.fromarray(noise_image(50, 70)[:, :, 0], "L").save(tmp_path / "g.png")
    res = tiny_editor(str(tmp_path / "g.png"), "remove the ball", seed=1)
    assert res.image.mode == "L"
    g = np.asarray(Image.open(tmp_path / "g.png"))
    assert (np.asarray(res.image)[~res.mask] == g[~res.mask]).all()


def test_several_edits_run_in_order_on_the_evolving_image(tiny_editor):
    res = tiny_editor(scene(), "make the car red and remove the person on the left", seed=2)
    assert [s.edit.action for s in res.steps] == [Action.RECOLOR, Action.REMOVE]
    assert res.steps[1].edit.qualifier == "left"
    assert res.mask.sum() >= max(s.region.sum() for s in res.steps)


def test_every_action_runs_end_to_end(tiny_editor):
    img = scene()
    for instruction, action in [
        ("make the car red", Action.RECOLOR),
        ("replace the dog with a cat", Action.REPLACE),
        ("remove the dog", Action.REMOVE),
        ("add a hat on the man", Action.ADD),
        ("replace the background with a beach", Action.BACKGROUND),
        ("make it look like winter", Action.STYLE),
    ]:
        res = tiny_editor(img, instruction, seed=1)
        assert res.steps[0].edit.action is action
        out = np.asarray(res.image)
        assert (out[~res.mask] == img[~res.mask]).all(), instruction


def test_background_keeps_the_subject_bit_identical(tiny_editor):
    img = scene()
    res = tiny_editor(img, "replace the background with a beach", seed=1)
    step = res.steps[0]
    subject = ~step.region
    assert subject.any()
    assert (np.asarray(res.image)[subject] == img[subject]).all()


def test_recolor_keeps_lightness_and_can_inpaint_on_request(tiny_dir):
    import cv2

    rng = np.random.default_rng(4)
    img = np.clip(scene().astype(int) + rng.integers(-25, 26, (120, 160, 1)), 0, 255).astype(np.uint8)  # texture
    editor = Editor.from_preset("tiny", device="cpu")
    res = editor(img, "make the car green", seed=1)
    assert res.steps[0].edit.action is Action.RECOLOR
    core = res.alpha == 1.0  # fully recoloured pixels

    def lightness(rgb):
        return cv2.cvtColor(np.asarray(rgb).astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[..., 0][core]

    before, after = lightness(img), lightness(res.image)
    assert core.sum() > 100
    assert np.abs((after - after.mean()) - (before - before.mean())).max() < 4.0  # the shading, as it was
    assert np.corrcoef(before, after)[0, 1] > 0.98
    inpaint = Editor.from_preset("tiny", device="cpu", recolor="inpaint")
    res2 = inpaint(img, "make the car green", seed=1)
    assert (np.asarray(res2.image)[res2.mask] != np.asarray(res.image)[res2.mask]).any()


def test_dry_run_paints_nothing(tiny_editor):
    res = tiny_editor(scene(), "remove the car", dry_run=True)
    assert res.image is None and res.mask.any() and res.steps[0].grounding is not None


def test_given_plan_skips_parsing(tiny_editor):
    plan = EditPlan(edits=[Edit(Action.RECOLOR, "disc", "blue", box=(10, 30, 70, 90))], source="user")
    res = tiny_editor(scene(), "", plan=plan, seed=0)
    assert res.plan.source == "user" and res.steps[0].grounding.source == "vlm"
    assert "parse" not in res.timings


def test_target_not_found_paints_nothing(tiny_dir):
    editor = Editor.from_preset("tiny", device="cpu", grounder="detector", box_threshold=1.0)
    with pytest.raises(TargetNotFoundError, match="'ball'"):
        editor(scene(), "remove the ball", seed=0)


def test_auto_grounder_uses_the_detector(tiny_dir):
    editor = Editor.from_preset("tiny", device="cpu", grounder="auto", box_threshold=0.0)
    res = editor(noise_image(200, 200), "make all the balls red", seed=0)
    g = res.steps[0].grounding
    assert g.source.startswith("detector") and len(g.boxes) == len(g.candidates) >= 1


def test_bad_arguments(tiny_editor):
    with pytest.raises(InvalidInstructionError):
        tiny_editor(scene(), "   ")
    with pytest.raises(InvalidInputError):
        tiny_editor(scene(), "remove the car", steps=0)
    with pytest.raises(InvalidInputError, match="unknown preset"):
        Editor.from_preset("huge")
    with pytest.raises(InvalidInputError, match="unknown parser"):
        Editor.from_preset("tiny", parser="magic")


def test_unavailable_models_fail_fast_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache" / "hub"))
    with pytest.raises(ModelUnavailableError, match="llava-hf/llava-1.5-7b-hf"):
        Editor.from_preset("balanced")
    with pytest.raises(ModelUnavailableError, match="folder not found"):
        Editor.from_preset("tiny", segmenter="./no/such/folder")


def test_rules_parser_needs_no_vlm(tiny_dir):
    editor = Editor.from_preset("tiny", device="cpu", parser="rules")
    res = editor(scene(), "remove the car", seed=0)
    assert res.plan.source == "rules" and "vlm" not in editor.loaded


def test_instruction_limits_apply_to_the_python_api(tiny_editor):
    from lasso_edit.core.errors import InvalidInstructionError
    from lasso_edit.core.plan import Action, Edit, EditPlan

    img = scene()
    with pytest.raises(InvalidInstructionError, match="not bytes"):
        tiny_editor(img, b"make the ball red")
    with pytest.raises(InvalidInstructionError, match="at most 2,000"):
        tiny_editor(img, "remove the ball " * 200)
    nine = EditPlan(edits=[Edit(Action.REMOVE, "ball")] * 9)
    with pytest.raises(InvalidInstructionError, match="at most 8"):
        tiny_editor(img, "", plan=nine)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"seed": "abc"}, "seed must be a whole number"),
        ({"seed": -1}, "seed must be in"),
        ({"seed": 2**64}, "seed must be in"),
        ({"steps": 2.5}, "steps must be a whole number"),
        ({"steps": 1001}, "steps must be in"),
        ({"guidance": float("nan")}, "finite"),
        ({"guidance": float("inf")}, "finite"),
        ({"strength": "0.5x"}, "strength must be a number"),
        ({"strength": 0.0}, "strength must be in"),
    ],
)
def test_bad_settings_are_typed_errors_for_every_action(tiny_editor, kwargs, match):
    from lasso_edit.core.errors import InvalidInputError

    for instruction in ("make the ball red", "remove the ball"):  # recolour and inpaint agree
        with pytest.raises(InvalidInputError, match=match):
            tiny_editor(scene(), instruction, **kwargs)


def test_the_largest_seed_works_and_a_tiny_strength_still_paints(tiny_editor):
    res = tiny_editor(scene(), "remove the ball and make it look like winter", seed=2**64 - 1, strength=0.01)
    assert res.image is not None and res.seed == 2**64 - 1
    assert any("runs no step" in w for w in res.warnings)


@pytest.mark.parametrize("value", ["lots", "-5", "0", "inf"])
def test_a_bad_pixel_limit_is_named(monkeypatch, value):
    from lasso_edit.core.errors import InvalidInputError

    monkeypatch.setenv("LASSO_MAX_PIXELS", value)
    with pytest.raises(InvalidInputError, match="LASSO_MAX_PIXELS"):
        load_image(scene())


def test_a_pixel_limit_in_scientific_notation(monkeypatch):
    from lasso_edit.imaging import max_pixels

    monkeypatch.setenv("LASSO_MAX_PIXELS", "1e9")
    assert max_pixels() == 10**9


@pytest.mark.parametrize("device", ["foo", "meta", "cuda:x"])
def test_an_unknown_device_is_bad_input(device):
    from lasso_edit.core.errors import InvalidInputError
    from lasso_edit.core.loading import resolve_device

    with pytest.raises(InvalidInputError, match="device"):
        resolve_device(device)


@pytest.mark.parametrize(
    "box,match",
    [
        ((1000, 1000, 1100, 1100), "entirely outside the 64x48 image"),
        ((-50, -50, -10, -10), "entirely outside"),
        ((10, 10, 5, 5), "not x0 < x1"),
        ((float("nan"), 0, 5, 5), "not x0 < x1"),
        (("a", 0, 5, 5), "four numbers"),
        ((1, 2, 3), "four numbers"),
        (None, "unknown action 'paint'"),
    ],
)
def test_a_given_plan_with_a_bad_box_is_a_typed_error_before_any_work(tiny_editor, box, match):
    with pytest.raises(InvalidInputError, match=match):
        plan = EditPlan(edits=[Edit("paint" if box is None else Action.REMOVE, "thing", box=box)])
        tiny_editor(noise_image(48, 64), plan=plan)


def test_a_given_plan_needs_no_instruction_and_a_box_may_overhang(tiny_editor):
    plan = EditPlan(edits=[Edit(Action.REMOVE, "thing", box=(-10, -10, 20, 20))])
    res = tiny_editor(noise_image(48, 64), plan=plan, seed=1)
    assert res.mask.any() and res.plan.edits[0].box == (-10, -10, 20, 20)
    with pytest.raises(InvalidInputError, match="must be an EditPlan"):
        tiny_editor(noise_image(48, 64), plan={"edits": []})


def test_online_an_id_the_hub_does_not_know_is_named_before_loading(monkeypatch, tmp_path):
    import http.server
    import threading

    import huggingface_hub.constants

    from lasso_edit.core.loading import ensure_available

    class Hub(http.server.BaseHTTPRequestHandler):  # a loopback stand-in for the Hub's model API
        def do_HEAD(self):
            self.send_response(404 if "nobody" in self.path else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(ModelUnavailableError, match="no such model on the Hub") as info:
            ensure_available({"vlm": "nobody/none", "segmenter": "facebook/sam-vit-base", "lora": "nobody/else"})
        assert "nobody/none, nobody/else" in str(info.value) and "sam-vit-base" not in str(info.value)
        ensure_available({"segmenter": "facebook/sam-vit-base"})  # known there: downloaded when loaded
    finally:
        server.shutdown()


def test_downloads_needed_names_only_uncached_hub_ids_and_preload_loads_every_stage(tiny_dir, tmp_path):
    editor = Editor.from_preset("tiny", device="cpu")
    assert editor.downloads_needed() == [] and editor.loaded == []
    editor.preload()
    assert sorted(editor.loaded) == sorted(editor.pool.builders)
    other = Editor(
        {},
        models={"vlm": "nobody/uncached", "segmenter": str(tmp_path), "detector": "nobody/uncached"},
        parser="rules",
        grounder="vlm",
    )
    assert other.downloads_needed() == ["nobody/uncached"]


def test_the_registry_decides_which_models_an_editor_needs(tiny_dir):
    # the rules parser and the vlm grounder (the plan's boxes) use no VLM: a bad VLM path is never looked at
    editor = Editor.from_preset("tiny", parser="rules", vlm="./no/such/vlm", device="cpu")
    assert "vlm" not in editor.models and "detector" not in editor.models
    with pytest.raises(ModelUnavailableError, match="no/such/vlm"):
        Editor.from_preset("tiny", parser="auto", vlm="./no/such/vlm", device="cpu")
    assert "detector" in Editor.from_preset("tiny", grounder="auto", device="cpu").models


def test_a_preset_object_takes_overrides_too(tiny_dir):
    from lasso_edit.core.presets import PRESETS

    with pytest.raises(ModelUnavailableError, match="elsewhere"):
        Editor.from_preset(PRESETS["tiny"], segmenter="./elsewhere", device="cpu")


def test_a_grounder_without_its_detector_is_an_error_not_a_silent_switch(tiny_dir):
    from lasso_edit.core.presets import PRESETS, Preset

    no_detector = Preset(**{**PRESETS["tiny"].__dict__, "detector": None})
    with pytest.raises(InvalidInputError, match="--grounder auto needs a detector"):
        Editor.from_preset(no_detector, grounder="auto", device="cpu")
    with pytest.raises(InvalidInputError, match="need a detector model"):
        Editor({"segmenter": lambda: None}, models={}, parser="rules", grounder="auto")


def test_more_steps_than_the_scheduler_runs_is_bad_input_naming_the_limit(tiny_editor):
    # the tiny preset's DDIM has 1000 training steps; at 1000 inference steps diffusers indexes past them
    with pytest.raises(InvalidInputError, match="at most 999"):
        tiny_editor(noise_image(32, 32), "remove the ball", steps=1000, seed=0)


def test_each_edit_is_grounded_on_the_image_the_previous_one_left(tiny_dir):
    from lasso_edit import Editor

    ed = Editor.from_preset("tiny", device="cpu", parser="rules", grounder="detector", box_threshold=0.0)
    det = ed.stage("detector")
    seen = []
    real = det.detect
    det.detect = lambda image, phrase: seen.append(image.copy()) or real(image, phrase)
    img = scene()
    res = ed(img, "remove the ball and remove the box", seed=1)
    assert len(seen) == 2 and (seen[0] == img).all()
    assert not (seen[1] == img).all()  # the first removal had painted
    inside = res.steps[0].region
    assert (seen[1][~inside] == img[~inside]).all() and not (seen[1][inside] == img[inside]).all()


def test_an_empty_sam_mask_falls_back_to_the_box_with_a_warning(tiny_dir, monkeypatch):
    from lasso_edit.segment.sam import SamSegmenter

    seg = SamSegmenter.from_pretrained(str(tiny_dir / "segmenter"))
    monkeypatch.setattr(seg, "_full_size", lambda low, orig, resized: np.zeros(orig, dtype=bool))
    out = seg.segment(noise_image(50, 80), Grounding([(10, 10, 30, 40)], [1.0], "test"))
    assert out.mask.sum() == 20 * 30 and out.mask[10:40, 10:30].all()
    assert "empty mask" in out.warnings[0]


def test_on_step_reports_each_denoising_step(tiny_editor):
    said = []
    tiny_editor(noise_image(64, 64), "remove the ball", seed=1, steps=3, progress=said.append)
    steps = [m for m in said if "step" in m]
    assert steps == [f"painting 'ball': step {k}/3" for k in (1, 2, 3)]


def test_a_calls_own_executor_paints_inside_a_given_mask_and_nothing_outside():
    """`executor=` (what `lasso contain` hands the editor): its picture is composited through the
    region a person gave, by the editor's one compositor, with no model loaded."""
    from lasso_edit import Editor
    from lasso_edit.core.plan import Action, Correction, Edit, EditPlan

    class Everything:  # an "other editor" that repainted the whole picture
        def execute(self, image, region, edit, settings):
            return np.full_like(image, 7)

    image = scene(60, 80)
    region = np.zeros((60, 80), bool)
    region[10:30, 20:50] = True
    editor = Editor({}, models={}, parser="rules", grounder="vlm")
    plan = EditPlan([Edit(Action.REPLACE, target="the region", value="paint")], source="user")
    result = editor(image, plan=plan, corrections=Correction(mask=region), executor=Everything(), seed=1)
    out = np.asarray(result.image)
    assert (out[~result.mask] == image[~result.mask]).all() and result.mask.sum() > 0
    assert not result.mask[~region].any()  # a given mask is never grown
    assert (out[10:30, 20:50][region[10:30, 20:50] & (result.alpha[10:30, 20:50] == 1)] == 7).all()
    assert editor.loaded == []


def _given(h, w, *boxes):
    region = np.zeros((h, w), bool)
    for y0, y1, x0, x1 in boxes:
        region[y0:y1, x0:x1] = True
    return region


def test_the_stages_see_the_picture_read_only_and_the_input_is_never_changed():
    """Issue 34 (memory): the canvas is the input's own array until the first composite (no copy
    of a 100 MP picture); an executor that writes into the picture it was given fails loudly
    instead of changing the input, and a result no edit composited is still the caller's own."""
    from lasso_edit.core.plan import Correction

    class Scribbler:  # writes into its input, as no executor may
        def execute(self, image, region, edit, settings):
            image[region] = 0
            return image

    image = scene(40, 50)
    kept = image.copy()
    editor = Editor({}, models={}, parser="rules", grounder="vlm")
    plan = EditPlan([Edit(Action.REPLACE, target="the region", value="paint")], source="user")
    region = _given(40, 50, (5, 20, 5, 30))
    with pytest.raises(ValueError, match="read-only"):
        editor(image, plan=plan, corrections=Correction(mask=region), executor=Scribbler(), seed=1)
    assert (image == kept).all()
    from lasso_edit.pipeline.editor import _Canvas

    untouched = _Canvas(image)  # no edit composited (every region empty): a copy is handed back
    assert untouched.result() is not image and (untouched.result() == image).all() and not untouched.alpha.any()


def test_one_edits_weight_is_the_results_and_a_second_edit_does_not_change_the_firsts():
    """Issue 34 (memory): the result's weight is the first edit's own array (400 MB saved at
    100 MP); a second edit's weight is added to a copy, never into the first edit's."""
    from lasso_edit.core.plan import Correction

    class Paint:
        def execute(self, image, region, edit, settings):
            out = image.copy()
            out[region] = 200
            return out

    image = scene(40, 50)
    editor = Editor({}, models={}, parser="rules", grounder="vlm")
    one = EditPlan([Edit(Action.REPLACE, target="the region", value="paint")], source="user")
    a = _given(40, 50, (5, 15, 5, 20))
    single = editor(image, plan=one, corrections=Correction(mask=a), executor=Paint(), seed=1)
    assert single.alpha is single.steps[0].alpha and single.rgb is not image and single.rgb.flags.writeable
    two = EditPlan(
        [Edit(Action.REPLACE, target="a", value="paint"), Edit(Action.REPLACE, target="b", value="paint")],
        source="user",
    )
    b = _given(40, 50, (25, 35, 30, 45))
    double = editor(
        image, plan=two, corrections={0: Correction(mask=a), 1: Correction(mask=b)}, executor=Paint(), seed=1
    )
    first, second = double.steps[0].alpha, double.steps[1].alpha
    assert double.alpha is not first and not first[b].any() and (double.alpha == np.maximum(first, second)).all()
    assert (np.asarray(double.image)[a | b] == 200).all() and (image == scene(40, 50)).all()
