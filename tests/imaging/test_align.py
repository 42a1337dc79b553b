"""imaging/align.py on a real photo (examples/coffee.png) edited, then drifted as hosted editors
drift it: another size and aspect (stretched, padded or cropped), a zoom, a sub-pixel shift, a small
rotation, a colour gain and offset per channel, JPEG re-encoding."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.errors import InvalidInputError
from lasso_edit.imaging.align import align

COFFEE = Path(__file__).resolve().parents[2] / "examples" / "coffee.png"
GAIN, OFFSET = (1.04, 0.97, 1.02), (6.0, -5.0, 3.0)


def coffee() -> np.ndarray:
    """The repository's CC0 photo, 600x400 RGB."""
    return np.asarray(Image.open(COFFEE).convert("RGB")).copy()


def painted(img: np.ndarray) -> np.ndarray:
    """An edit: a green ellipse on the cup's side and a magenta block lower left."""
    out = img.copy()
    h, w = img.shape[:2]
    cv2.ellipse(out, (int(w * 0.62), int(h * 0.45)), (int(w * 0.12), int(h * 0.16)), 20, 0, 360, (40, 170, 90), -1)
    cv2.rectangle(out, (int(w * 0.15), int(h * 0.6)), (int(w * 0.3), int(h * 0.85)), (220, 60, 200), -1)
    return out


def drift(
    img: np.ndarray,
    zoom: float = 1.03,
    angle: float = 0.5,
    shift: tuple[float, float] = (2.4, -1.7),
    size: tuple[int, int] | None = None,
    fit: str = "stretch",
    quality: int = 92,
) -> tuple[np.ndarray, np.ndarray]:
    """`img` as a hosted editor answers it, and the true 3x3 map of its pixels to the answer's:
    zoomed, turned `angle` degrees counter-clockwise and shifted about the centre, then put at
    `size` (stretched, or uniformly scaled to pad or to crop), colour-drifted, JPEG-encoded."""
    h, w = img.shape[:2]
    we, he = size or (w, h)
    r = np.eye(3)
    r[:2] = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, zoom)
    r[:2, 2] += shift
    if fit == "stretch":
        kx, ky = we / w, he / h
        base = np.array([[kx, 0, 0.5 * kx - 0.5], [0, ky, 0.5 * ky - 0.5], [0, 0, 1]])
    else:
        s = min(we / w, he / h) if fit == "pad" else max(we / w, he / h)
        base = np.array([[s, 0, (we - 1) / 2 - s * (w - 1) / 2], [0, s, (he - 1) / 2 - s * (h - 1) / 2], [0, 0, 1]])
    m = base @ r
    out = cv2.warpAffine(img, m[:2], (we, he), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    out = np.clip(out * np.float32(GAIN) + np.float32(OFFSET), 0, 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB")).copy(), m


def point_error(m: np.ndarray, found: np.ndarray, size: tuple[int, int]) -> float:
    """The largest distance (EDITED's pixels) between where the two maps put ORIGINAL's corners and centre."""
    w, h = size
    pts = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1], [w / 2, h / 2, 1]], float).T
    return float(np.abs(m[:2] @ pts - found[:2] @ pts).max())


def test_the_drift_is_measured_to_a_fraction_of_a_pixel_and_the_colours_to_a_level():
    orig = coffee()
    edited, m = drift(painted(orig))
    a = align(orig, edited)
    assert abs(a.scale - 1.03) < 0.002 and abs(a.rotation - 0.5) < 0.05
    assert np.allclose(a.shift, (2.4, -1.7), atol=0.15)
    assert point_error(m, a.matrix, (600, 400)) < 0.15
    assert a.original_size == (600, 400) and a.edited_size == (600, 400)
    for c in range(3):  # the colour drift at mid-grey and near the ends, within a level
        for x in (40.0, 128.0, 220.0):
            truth = GAIN[c] * x + OFFSET[c]
            assert abs(a.colour.gain[c] * x + a.colour.offset[c] - truth) < 1.5
    assert a.residual < 4


@pytest.mark.parametrize("size,fit", [((1024, 1024), "stretch"), ((1024, 1024), "pad"), ((1024, 1024), "crop"),
                                      ((512, 341), "stretch")])
@pytest.mark.parametrize("given", [True, False])
def test_another_size_and_aspect_stretched_padded_or_cropped(size, fit, given):
    orig = coffee()
    truth = painted(orig)
    edited, m = drift(truth, size=size, fit=fit)
    keep = ~(cv2.dilate(np.any(truth != orig, axis=2).astype(np.uint8), np.ones((9, 9))) > 0) if given else None
    a = align(orig, edited, keep=keep)
    assert a.edited_size == size
    assert point_error(m, a.matrix, (600, 400)) < 0.25 * max(1.0, size[0] / 600)
    covered = a.covered()
    if fit == "crop":  # the answer cut ORIGINAL's sides off: not covered there
        assert not covered[:, :90].any() and covered[20:-20, 120:480].all()
    else:  # zoomed in 3%: ORIGINAL's rim is not in the answer
        assert covered[20:-20, 20:-20].all() and not covered[0, 0] and not covered[-1, -1]


def test_what_changed_is_found_and_little_else():
    orig = coffee()
    truth = painted(orig)
    edited, _ = drift(truth, size=(1024, 1024))
    found = align(orig, edited).changes()
    changed = np.any(truth != orig, axis=2)
    assert found[changed].all()  # every painted pixel
    assert found.sum() < 1.6 * changed.sum()  # grown a little, no specks elsewhere


def test_a_paste_is_in_the_original_grid_with_the_colours_undone():
    orig = coffee()
    truth = painted(orig)
    edited, _ = drift(truth, size=(1024, 1024))
    a = align(orig, edited)
    patch, covered = a.paste(edited, (100, 50, 500, 350))
    assert patch.shape == (300, 400, 3) and covered.all()
    err = np.abs(patch.astype(int) - truth[50:350, 100:500].astype(int))
    assert np.median(err) <= 2


def test_two_different_photos_are_not_an_edit_of_each_other():
    orig = coffee()
    other = np.ascontiguousarray(orig[::-1, ::-1])  # the same photo turned upside down: other content
    with pytest.raises(InvalidInputError, match=r"not look like an edit of ORIGINAL.*\d+(\.\d)? levels|covers only"):
        align(orig, other)
    top, bottom = orig[:200], orig[200:]
    with pytest.raises(InvalidInputError, match="not look like an edit of ORIGINAL"):
        align(top, np.ascontiguousarray(bottom))


def test_bad_arrays_and_masks_are_said():
    orig = coffee()
    with pytest.raises(InvalidInputError, match="RGB uint8"):
        align(orig[..., 0], orig)
    with pytest.raises(InvalidInputError, match="mask is"):
        align(orig, orig, keep=np.ones((10, 10), bool))
    with pytest.raises(InvalidInputError, match="almost everywhere"):
        align(orig, orig, keep=np.zeros((400, 600), bool))
