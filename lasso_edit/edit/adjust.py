"""Deterministic adjustments inside a mask: blur, pixelate, brightness, contrast, exposure, saturation.

No diffusion: a privacy blur must hide what it covers, and "brighter" must not invent detail. The
edit's value is a spec, `KIND [AMOUNT]` (lasso_edit/adjustments.py), written by the parsers:

- `blur [SIGMA]`: Gaussian blur, sigma in pixels (default: 8% of the region's shorter side, at
  least 2). Only the region's own pixels are averaged (normalised convolution: blur(image * m) /
  blur(m)), so blurring a background does not smear the kept subject into it.
- `pixelate [BLOCK]`: blocks of BLOCK pixels (default: the region's longer side / 12, at least 4),
  aligned to the region's box, each the mean of its pixels.
- `brightness P%`, `contrast P%`, `saturation P%`: the enhancement factor 1 + P/100 as in
  Pillow's ImageEnhance (Brightness: blend with black; Contrast: with the region's mean grey;
  Color: with the pixel's own grey, ITU-R 601 luma). `saturation -100%` is black and white.
- `exposure EV`: linear light (the sRGB transfer function undone) times 2**EV, then re-encoded.

Everything is computed on the region's bounding box (plus the blur's reach), so a face in a 24 MP
photo costs what a face costs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..core.plan import Action, Edit
from ..imaging.arrays import mask_bbox
from ..parse.adjustments import DEFAULT_AMOUNT, parse_spec
from .base import ExecSettings
from .blur import masked_blur

if TYPE_CHECKING:
    from ..core.stages import Models


def _to_linear(x: np.ndarray) -> np.ndarray:  # sRGB transfer function (IEC 61966-2-1), x in [0, 1]
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def _luma(rgb: np.ndarray) -> np.ndarray:  # ITU-R 601, as Pillow's convert("L")
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def apply(image: np.ndarray, region: np.ndarray, kind: str, amount: float | None) -> np.ndarray:
    """`image` (RGB uint8 HxWx3) with the adjustment applied inside `region`'s box (outside it: a copy)."""
    import cv2

    out = image.copy()
    bb = mask_bbox(region)
    if bb is None:
        return out
    x0, y0, x1, y1 = bb
    short, long = min(x1 - x0, y1 - y0), max(x1 - x0, y1 - y0)
    if kind == "blur":
        sigma = amount if amount is not None else max(2.0, 0.08 * short)
        sigma = min(max(float(sigma), 0.5), float(max(long, 1)))  # past the region's size it is all one mean
        masked_blur(out, region, sigma, bb)
        return out
    crop = image[y0:y1, x0:x1]
    if kind == "pixelate":
        block = int(amount) if amount is not None else max(4, long // 12)
        block = min(max(1, block), max(long, 1))
        hh, ww = crop.shape[:2]
        small = cv2.resize(crop, (max(1, -(-ww // block)), max(1, -(-hh // block))), interpolation=cv2.INTER_AREA)
        big = np.repeat(np.repeat(small, block, axis=0), block, axis=1)[:hh, :ww]
        out[y0:y1, x0:x1] = big
        return out
    if kind == "exposure":
        ev = amount if amount is not None else DEFAULT_AMOUNT["exposure"]
        ev = min(max(ev, -16.0), 16.0)  # past +-16 stops every pixel is black or white anyway
        curve = lambda f: _to_srgb(_to_linear(f) * (2.0**ev))  # noqa: E731
    else:
        factor = 1.0 + (amount if amount is not None else DEFAULT_AMOUNT[kind]) / 100.0
        factor = min(max(0.0, factor), 256.0)  # 0: black / flat grey / grey; past 256x every step saturates
        if kind == "brightness":
            curve = lambda f: f * factor  # noqa: E731
        elif kind == "contrast":
            inside = region[y0:y1, x0:x1]
            mean = float(_luma(crop.astype(np.float32) / 255.0)[inside].mean())
            curve = lambda f: mean + (f - mean) * factor  # noqa: E731
        else:  # saturation: the pixel's own grey mixes its channels, no per-channel table; the
            # float work a strip of rows at a time (the same arithmetic per pixel, a fraction of the memory)
            if factor == 0.0:  # black and white: grey + (f - grey) * 0 is grey, the same bytes
                _grey_into(out[y0:y1, x0:x1], crop)
                return out
            for r in range(0, crop.shape[0], ROWS):
                f = crop[r : r + ROWS].astype(np.float32) / 255.0
                grey = _luma(f)[:, :, None]
                out[y0 + r : y0 + r + len(f), x0:x1] = _to_uint8(grey + (f - grey) * factor)
            return out
    # Each channel's new value depends on its old value alone: the curve on the 256 values, then a
    # table lookup (the same float32 arithmetic per value, so the same bytes as on every pixel).
    table = _to_uint8(curve(np.arange(256, dtype=np.float32) / 255.0))
    out[y0:y1, x0:x1] = table[crop]
    return out


ROWS = 256  # rows of a per-pixel float adjustment computed at a time


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _grey_tables() -> np.ndarray:
    """1x256x3 float32: each channel's term of the ITU-R 601 luma of value/255, the float32
    product `_luma` forms per pixel (v / 255 in float32, times its weight in float32)."""
    f = np.arange(256, dtype=np.float32) / 255.0
    return np.stack([f * 0.299, f * 0.587, f * 0.114], axis=-1)[None]


def _grey_into(box: np.ndarray, crop: np.ndarray) -> None:
    """Write the uint8 grey of `crop` (RGB uint8) into all three channels of `box` (a view):
    `_to_uint8(_luma(crop / 255))` with the products looked up (cv2.LUT) and the two float32 sums,
    the float32 times 255 and the rounding (cv2's saturating cast rounds half to even, as np.rint)
    the same per pixel, so the same bytes (tests/edit/test_adjust.py checks every 2^24 colour)."""
    import cv2

    table = _grey_tables()
    for r in range(0, crop.shape[0], ROWS):
        terms = cv2.split(cv2.LUT(crop[r : r + ROWS], table))
        grey = cv2.add(cv2.add(terms[0], terms[1]), terms[2])
        np.multiply(grey, np.float32(255.0), out=grey)
        box[r : r + len(grey)] = cv2.cvtColor(cv2.convertScaleAbs(grey), cv2.COLOR_GRAY2RGB)


class Adjuster:
    """Executes `Action.ADJUST` edits (deterministic: the seed and steps are not used)."""

    name = "adjust"
    example = Edit(Action.ADJUST, "ball", "blur")  # an edit it makes, for the contract test (tests/test_contracts.py)
    needs: tuple[str, ...] = ()

    @classmethod
    def create(cls, models: Models) -> Adjuster:
        return cls()

    def execute(self, image: np.ndarray, region: np.ndarray, edit: Edit, settings: ExecSettings) -> np.ndarray:
        kind, amount = parse_spec(edit.value)
        return apply(image, region, kind, amount)
