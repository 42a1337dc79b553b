"""Mask corrections (points, a box, another SAM candidate) and per-call stage choice, with the tiny models."""

import numpy as np
import pytest

from lasso_edit import Editor, TargetNotFoundError
from lasso_edit.core.errors import InvalidInputError
from lasso_edit.core.plan import Correction, EditPlan

from .helpers import scene


@pytest.fixture(scope="module")
def planned(tiny_editor):
    img = scene()
    return img, tiny_editor(img, "make the car red", dry_run=True)


def _spy(segmenter):
    """Record the prompts the real SAM model is called with (the model still runs)."""
    seen = []
    forward = segmenter.model.forward

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return forward(*args, **kwargs)

    segmenter.model.forward = spy
    return seen, lambda: setattr(segmenter.model, "forward", forward)


def test_points_reach_sam_scaled_to_its_frame_with_their_labels(tiny_editor, planned):
    img, dry = planned
    seg = tiny_editor.stage("segmenter")
    seen, restore = _spy(seg)
    try:
        fix = Correction(points=[(40, 30), (100, 90)], labels=[1, 0])
        res = tiny_editor(img, plan=dry.plan, corrections=fix, dry_run=True)
    finally:
        restore()
    call = seen[-1]
    _, (fh, fw), (rh, rw) = seg.set_image(img)
    n_boxes = len(res.groundings[0].boxes)
    pts = call["input_points"].float().cpu().numpy()
    assert pts.shape == (1, n_boxes, 2, 2)
    np.testing.assert_allclose(pts[0, 0], [[40 * rw / fw, 30 * rh / fh], [100 * rw / fw, 90 * rh / fh]], rtol=1e-3)
    assert call["input_labels"].cpu().numpy().tolist() == [[[1, 0]] * n_boxes]
    assert "input_boxes" in call


def test_points_change_the_mask(tiny_editor, planned):
    img, dry = planned
    before = dry.steps[0].region
    fixes = [Correction(points=[(20, 20)], labels=[0]), Correction(points=[(140, 100)], labels=[1])]
    after = [tiny_editor(img, plan=dry.plan, corrections=f, dry_run=True).steps[0].region for f in fixes]
    assert any((a != before).any() for a in after)


def test_candidate_picks_that_sam_candidate(tiny_editor, planned):
    img, dry = planned
    seg = dry.steps[0].segmentation
    for k in range(len(seg.candidates)):
        res = tiny_editor(img, plan=dry.plan, corrections=Correction(candidate=k), dry_run=True)
        got = res.steps[0].segmentation
        assert got.chosen == k
        assert (got.mask == seg.candidates[k]).all()
    assert seg.chosen == int(np.argmax(seg.candidate_scores))  # uncorrected: the best-scored one


def test_box_replaces_the_grounding(tiny_editor, planned):
    img, dry = planned
    res = tiny_editor(img, plan=dry.plan, corrections=Correction(box=(10, 20, 60, 70)), dry_run=True)
    g = res.groundings[0]
    assert g.source == "user" and [list(b) for b in g.boxes] == [[10, 20, 60, 70]]


def test_an_edit_corrected_paints_inside_the_corrected_mask(tiny_editor, planned):
    img, dry = planned
    fix = Correction(candidate=0)
    preview = tiny_editor(img, plan=dry.plan, corrections=fix, dry_run=True)
    res = tiny_editor(img, plan=dry.plan, corrections=fix, seed=1, steps=2)
    out = np.asarray(res.image)
    assert (res.steps[0].region == preview.steps[0].region).all()
    assert (out[~res.mask] == img[~res.mask]).all()


def test_points_stand_in_when_the_target_is_not_found(tiny_dir):
    ed = Editor.from_preset("tiny", device="cpu", grounder="detector", box_threshold=1.0, paint=False)
    img = scene()
    with pytest.raises(TargetNotFoundError):
        ed(img, "make the car red", parser="rules", dry_run=True)
    res = ed(img, "make the car red", parser="rules", dry_run=True,
             corrections=Correction(points=[(60, 50)], labels=[1]))
    assert res.groundings[0].source == "user" and res.steps[0].region.any()
    assert any("points you placed" in w for w in res.warnings)
    with pytest.raises(TargetNotFoundError):  # only "leave out" points: still nothing to paint
        ed(img, "make the car red", parser="rules", dry_run=True, corrections=Correction(points=[(5, 5)], labels=[0]))


def test_whole_image_edits_take_a_region_only_when_one_is_given(tiny_editor):
    img = scene()
    plan = EditPlan.from_dict({"edits": [{"action": "style", "target": None, "value": "winter"}]})
    whole = tiny_editor(img, plan=plan, dry_run=True).steps[0].region
    assert whole.all()
    part = tiny_editor(img, plan=plan, dry_run=True, corrections=Correction(box=(0, 0, 50, 50))).steps[0].region
    assert part.any() and not part.all()
    with pytest.raises(InvalidInputError, match="no candidate masks"):
        tiny_editor(img, plan=plan, dry_run=True, corrections=Correction(candidate=1))


def test_added_objects_take_a_box_not_points(tiny_editor):
    img = scene()
    plan = EditPlan.from_dict({"edits": [{"action": "add", "target": None, "value": "a hat"}]})
    res = tiny_editor(img, plan=plan, dry_run=True, corrections=Correction(box=(20, 20, 60, 60)))
    ys, xs = np.nonzero(res.steps[0].segmentation.mask)
    assert xs.min() >= 20 and xs.max() <= 60 and ys.min() >= 20 and ys.max() <= 60 and res.steps[0].region[40, 40]
    with pytest.raises(InvalidInputError, match="placed by a box"):
        tiny_editor(img, plan=plan, dry_run=True, corrections=Correction(points=[(5, 5)], labels=[1]))


@pytest.mark.parametrize("fix,message", [
    (Correction(candidate=3), "candidate 3 is not one"),
    ({2: Correction(candidate=1)}, "correction is for edit 2, but the plan has 1 edit"),
    (Correction(points=[(500, 1)], labels=[1]), r"point \(500, 1\) is outside the 160x120 image"),
    (Correction(points=[(5, 5)], labels=[]), "one label per point"),
    (Correction(box=(200, 200, 300, 300)), "entirely outside"),
    (Correction(box=(50, 50, 10, 10)), "not x0 < x1"),
    ("left", "must be a Correction"),
])
def test_bad_corrections_are_named(tiny_editor, planned, fix, message):
    img, dry = planned
    with pytest.raises(InvalidInputError, match=message):
        tiny_editor(img, plan=dry.plan, corrections=fix, dry_run=True)


@pytest.mark.parametrize("d,message", [
    ({"points": [[1, 2]], "labels": [2]}, "labels must be one 1"),
    ({"points": [[1]]}, r"list of \[x, y\] pairs"),
    ({"points": [["a", 2]]}, "must be numbers"),
    ({"box": [1, 2, 3]}, "four numbers"),
    ({"candidate": -1}, "mask index"),
    ({"colour": "red"}, "no field 'colour'"),
])
def test_correction_json_is_checked(d, message):
    with pytest.raises(InvalidInputError, match=message):
        Correction.from_dict(d)


def test_correction_json_round_trip():
    c = Correction(points=[(1.0, 2.0)], labels=[0], box=(1.0, 2.0, 3.0, 4.0), candidate=2)
    assert Correction.from_dict(c.to_dict()) == c
    assert Correction.from_dict({"points": [[3, 4]]}).labels == [1]  # points keep by default


def test_parser_and_grounder_per_call(tiny_editor):
    img = scene()
    res = tiny_editor(img, "make the car red", parser="rules", grounder="vlm", dry_run=True)
    assert res.plan.source == "rules" and tiny_editor.parser_name != "rules"
    with pytest.raises(InvalidInputError, match="unknown parser 'nope'"):
        tiny_editor(img, "make the car red", parser="nope", dry_run=True)
    with pytest.raises(InvalidInputError, match="unknown grounder"):
        tiny_editor(img, "make the car red", grounder="psychic", dry_run=True)


def test_optional_models_are_offered_when_they_can_be_had(tiny_dir, tmp_path):
    offered = Editor.from_preset("tiny", device="cpu", optional=("detector",), paint=False)
    assert "detector" in offered.models and "detector" not in Editor.from_preset("tiny", paint=False).models
    missing = Editor.from_preset("tiny", device="cpu", detector=str(tmp_path / "nowhere"), optional=("detector",))
    assert "detector" not in missing.models  # not there: left out, not a failure to start
    with pytest.raises(InvalidInputError, match="need a detector model; this editor has none"):
        missing(scene(), "make the car red", grounder="detector", dry_run=True)


# --------------------------------------------------------------------------- a mask a person drew
def _drawn(h, w):
    """An irregular mask: a ring with a hole, a notch and a separate speck (what refine would fill,
    grow or drop for an object's mask)."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 3)
    m = (r < h / 4) & (r > h / 10)
    m[: h // 2, int(w / 3): int(w / 3) + 3] = False
    m[h - 6: h - 3, w - 6: w - 3] = True
    return m


@pytest.mark.parametrize("h,w", [(120, 160), (480, 640)])  # 640 px: a feather 2 px wide
def test_a_mask_correction_is_the_region_as_drawn_never_grown(tiny_editor, h, w):
    """A replace edit's own mask is grown; a person's is taken as it is: no grounding, no segmenter,
    the feather inside it, every pixel outside it bit-identical."""
    from .helpers import noise_image

    img = noise_image(h, w, seed=2)
    drawn = _drawn(h, w)
    plan = EditPlan.from_dict({"edits": [{"action": "replace", "target": "region", "value": "a cat"}]})
    res = tiny_editor(img, plan=plan, corrections=Correction(mask=drawn.astype(np.uint8) * 255), seed=1, steps=2)
    step = res.steps[0]
    assert step.grounding.source == "user" and step.grounding.boxes == []
    assert (step.region == drawn).all() and (res.mask == drawn).all()
    assert (step.alpha[~drawn] == 0).all() and (step.alpha[drawn] > 0).all()
    assert (step.alpha[drawn] < 1).any() == (w > 160)  # a feather, inward, where the image is large enough
    out = np.asarray(res.image)
    assert (out[~drawn] == img[~drawn]).all() and (out[drawn] != img[drawn]).any()


@pytest.mark.parametrize("fix,message", [
    (Correction(mask=np.ones((10, 10), bool)), "the mask is 10x10; the image is 160x120"),
    (Correction(mask=np.zeros((120, 160), bool)), "the mask has no pixel to edit"),
    (Correction(mask=np.ones((120, 160, 3), bool)), "must be an HxW array"),
    (Correction(mask=np.ones((120, 160), bool), box=(1, 2, 30, 40)), "a mask is the whole correction"),
])
def test_bad_mask_corrections_are_named(tiny_editor, planned, fix, message):
    img, dry = planned
    with pytest.raises(InvalidInputError, match=message):
        tiny_editor(img, plan=dry.plan, corrections=fix, dry_run=True)
