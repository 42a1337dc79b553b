"""pipeline/contain.py: another editor's drifted answer put back into the original through the
Editor's one compositor: its change restored within a few levels, nothing outside changed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.errors import InvalidInputError
from lasso_edit.imaging import load_image
from lasso_edit.pipeline.contain import contain
from lasso_edit.pipeline.outputs import write_and_prove

from ..imaging.test_align import coffee, drift, painted


def _inner(changed: np.ndarray) -> np.ndarray:
    """The painted pixels away from their rim (the feather blends the rim)."""
    return cv2.erode(changed.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0


@pytest.mark.parametrize("size,fit", [(None, "stretch"), ((1024, 1024), "stretch"), ((1024, 1024), "pad"),
                                      ((512, 341), "stretch")])
def test_a_drifted_answer_is_put_back_and_nothing_outside_changes(size, fit):
    orig = coffee()
    truth = painted(orig)
    changed = np.any(truth != orig, axis=2)
    edited, _ = drift(truth, size=size, fit=fit)
    result, report = contain(orig, edited)
    out = np.asarray(result.image)
    assert (out[~result.mask] == orig[~result.mask]).all()  # bit-identical outside the region
    assert result.mask[changed].all() and result.mask.sum() < 1.6 * changed.sum()
    err = np.abs(out.astype(int) - truth.astype(int))[_inner(changed)]
    assert np.median(err) <= 2 and np.percentile(err, 95) <= 8
    a = report["alignment"]
    assert report["region_from"] == "changes" and report["region_px"] == int(result.mask.sum())
    assert a["original_size"] == [600, 400] and a["edited_size"] == list(size or (600, 400))
    if fit == "stretch":
        assert abs(a["scale"] - 1.03) < 0.003 and abs(a["rotation"] - 0.5) < 0.06
        assert np.allclose(a["shift"], (2.4, -1.7), atol=0.2)
    assert set(report["colour"]) == {"gain", "offset"}


def test_a_given_mask_is_the_region_and_never_grown(tmp_path):
    orig = coffee()
    truth = painted(orig)
    changed = np.any(truth != orig, axis=2)
    mask = cv2.dilate(changed.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    edited, _ = drift(truth, size=(1024, 1024))
    result, report = contain(orig, edited, mask=mask)
    assert report["region_from"] == "mask" and not result.mask[~mask].any()
    out = np.asarray(result.image)
    assert (out[~mask] == orig[~mask]).all()
    assert np.median(np.abs(out.astype(int) - truth.astype(int))[_inner(changed)]) <= 2
    path = tmp_path / "mask.png"  # the same mask as a file, read as `lasso verify --mask` reads one
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    again, _ = contain(orig, edited, mask=str(path))
    assert (np.asarray(again.image) == out).all()


def test_the_proof_is_made_on_the_file_written(tmp_path):
    orig = coffee()
    edited, _ = drift(painted(orig), size=(1024, 1024))
    result, _ = contain(orig, edited)
    write_and_prove(result, tmp_path / "out.png", mask_out=tmp_path / "mask.png")
    p = result.preservation
    assert p is not None and p["identical_outside"] and p["changed_outside"] == 0 and p["changed_inside"] > 0


def test_rgba_and_16_bit_originals_keep_their_mode(tmp_path):
    orig = coffee()
    edited, _ = drift(painted(orig), size=(1024, 1024))
    alpha = np.full(orig.shape[:2], 255, np.uint8)
    alpha[:40] = 90
    Image.fromarray(np.dstack([orig, alpha]), "RGBA").save(tmp_path / "rgba.png")
    result, _ = contain(str(tmp_path / "rgba.png"), edited)
    assert result.image.mode == "RGBA" and (np.asarray(result.image)[..., 3] == alpha).all()
    rng = np.random.default_rng(0)
    deep = orig.astype(np.uint16) * 257 + rng.integers(0, 200, orig.shape, dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep[..., ::-1])  # 16-bit RGB PNG
    result, _ = contain(str(tmp_path / "deep.png"), edited)
    write_and_prove(result, tmp_path / "deep-out.png")
    back = load_image(tmp_path / "deep-out.png")
    assert back.deep is not None and back.deep.dtype == np.uint16
    assert (back.deep[~result.mask] == deep[~result.mask]).all()
    assert result.preservation["bits"] == 16 and result.preservation["identical_outside"]


def test_a_pair_that_is_not_an_edit_is_bad_input():
    orig = coffee()
    with pytest.raises(InvalidInputError, match=r"not look like an edit of ORIGINAL.*levels"):
        contain(orig[:200], np.ascontiguousarray(orig[200:]))
    with pytest.raises(InvalidInputError, match="the mask is 10x10"):
        contain(orig, orig, mask=np.ones((10, 10), bool))


def test_an_answer_with_no_change_has_nothing_to_put_back():
    orig = coffee()
    edited, _ = drift(orig, size=(1024, 1024))
    with pytest.raises(InvalidInputError, match="no change from ORIGINAL anywhere"):
        contain(orig, edited)
