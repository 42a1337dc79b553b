"""imaging/drift.py on a real photo (examples/coffee.png) drifted as editors drift it: zoomed and
shifted, colour-drifted, JPEG re-encoded, painted outside the mask, resized to another size."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from lasso_edit.imaging.drift import Diagnosis, diagnose

COFFEE = Path(__file__).resolve().parents[2] / "examples" / "coffee.png"
GAIN, OFFSET = (1.04, 0.97, 1.02), (6.0, -5.0, 3.0)


def coffee() -> np.ndarray:
    """The repository's CC0 photo, 600x400 RGB."""
    return np.asarray(Image.open(COFFEE).convert("RGB")).copy()


def the_mask() -> np.ndarray:
    """Where the edit was allowed: a block on the cup (uint8, 255 allowed)."""
    m = np.zeros((400, 600), np.uint8)
    m[100:250, 300:500] = 255
    return m


def zoomed(img: np.ndarray, zoom: float = 1.03, shift: tuple[float, float] = (2.4, -1.7)) -> np.ndarray:
    """`img` zoomed about its centre and shifted (pixels), bicubic, at its own size."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, zoom)
    m[:, 2] += shift
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def recoloured(img: np.ndarray) -> np.ndarray:
    return np.clip(img * np.float32(GAIN) + np.float32(OFFSET), 0, 255).round().astype(np.uint8)


def jpeg(img: np.ndarray, quality: int = 90) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB")).copy()


def edited_inside(img: np.ndarray) -> np.ndarray:
    """A legitimate edit: green paint inside the mask only."""
    out = img.copy()
    out[120:230, 320:480] = (40, 170, 90)
    return out


@pytest.mark.parametrize("mask", [True, False])
def test_a_zoom_and_a_shift_are_named_with_their_numbers(mask: bool) -> None:
    orig = coffee()
    d = diagnose(orig, zoomed(edited_inside(orig)), the_mask() if mask else None)
    assert d.kinds[0] == "shift_or_zoom" and d.kind == "shift_or_zoom"
    a = d.alignment
    assert a is not None and abs(a["scale"] - 1.03) < 0.005
    assert np.allclose(a["shift"], (2.4, -1.7), atol=0.3) and abs(a["rotation"]) < 0.05
    assert a["original_size"] == [600, 400] and a["edited_size"] == [600, 400]
    assert "shift or zoom" in d.text and "1.03" in d.text


def test_a_colour_drift_alone_is_a_colour_drift_with_its_gains() -> None:
    orig = coffee()
    d = diagnose(orig, recoloured(edited_inside(orig)), the_mask())
    assert d.kinds == ["colour_drift"] and d.alignment is None and d.colour is not None
    assert np.allclose(d.colour["gain"], GAIN, atol=0.01)
    assert np.allclose(d.colour["offset"], OFFSET, atol=1.5)


@pytest.mark.parametrize("quality", [90, 75])
def test_a_jpeg_re_encoding_is_re_encoding_noise(quality: int) -> None:
    orig = coffee()
    d = diagnose(orig, jpeg(edited_inside(orig), quality), the_mask())
    assert d.kinds == ["reencoding"] and d.alignment is None and d.colour is None and d.box is None
    assert "re-encoding" in d.text


def test_a_rectangle_painted_outside_the_mask_is_content_with_its_box() -> None:
    orig = coffee()
    after = edited_inside(orig)
    cv2.rectangle(after, (30, 300), (120, 380), (220, 60, 200), -1)
    d = diagnose(orig, after, the_mask())
    assert d.kinds == ["content"] and d.box == (30, 300, 121, 381)
    assert "[30, 300, 121, 381]" in d.text
    d = diagnose(orig, jpeg(after), the_mask())  # and re-encoded: still content first, its box within a few pixels
    assert d.kinds[0] == "content" and d.box is not None
    assert np.allclose(d.box, (30, 300, 121, 381), atol=6)


def test_another_size_is_a_shift_or_zoom_with_both_sizes() -> None:
    orig = coffee()
    after = cv2.resize(edited_inside(orig), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    d = diagnose(orig, after, the_mask())
    assert d.kinds == ["shift_or_zoom"] and d.alignment is not None
    assert d.alignment["original_size"] == [600, 400] and d.alignment["edited_size"] == [1024, 1024]
    assert abs(d.alignment["scale"] - 1.0) < 0.005 and "1024x1024" in d.text and "600x400" in d.text


def test_an_unrelated_picture_at_another_size_is_content() -> None:
    orig = coffee()
    other = cv2.resize(np.ascontiguousarray(orig[::-1, ::-1]), (1024, 1024))
    d = diagnose(orig, other, the_mask())
    assert d.kinds == ["content"] and "does not look like BEFORE" in d.text


def test_a_clean_pair_is_none_and_the_dict_has_the_json_keys() -> None:
    orig = coffee()
    d = diagnose(orig, edited_inside(orig), the_mask())
    assert d.kinds == ["none"]
    got = diagnose(orig, zoomed(orig), None).to_dict()
    assert set(got) >= {"kinds", "alignment", "colour", "text"} and isinstance(Diagnosis([], "").to_dict(), dict)
