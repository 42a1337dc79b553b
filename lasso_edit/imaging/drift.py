"""What kind of change AFTER shows outside the mask, when it is not BEFORE kept: a whole-picture
shift or zoom (another size included), a colour drift, re-encoding noise, or content.

    d = diagnose(before, after, mask)   # LoadedImage or arrays; mask: 0 kept, > 0 may change
    d.kinds, d.kind, d.alignment, d.colour, d.box, d.text

How: AFTER is aligned on BEFORE (imaging/align.py: zoom, shift, rotation and a gain and offset per
channel, fit on the pixels outside the mask), then each kind is read from the fit:

- shift_or_zoom: the sizes differ, or the fit moves a corner of BEFORE by more than `MOVED` pixels;
- colour_drift: a gain differs from 1 by more than `GAIN`, or a channel moves mid-grey by `LEVELS`;
- content: a connected area outside the mask (eroded by `MARGIN`, so an edit's rim is not counted)
  still differs well above the noise after the fit (`Alignment.changes`); its box is given;
- reencoding: the same size, no geometric drift, no such area, and a median difference outside
  of at most `NOISE` levels: small, spread, no structure (a JPEG re-encoding, a lossy resave).

`kinds` is ordered by weight, fixed: whole-picture drifts first (they move every pixel), then
local content, then noise. When no alignment can be made (AFTER is not BEFORE at another size,
or too small to align) the kind is content. Run it only when something changed: it costs an
alignment (a fraction of a second at 600x400, about a second for a large photo).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..core.errors import InvalidInputError
from .align import Alignment, align

if TYPE_CHECKING:
    from .decode import LoadedImage
    from .verify import Verification

Box = tuple[int, int, int, int]
KINDS = ("none", "shift_or_zoom", "colour_drift", "reencoding", "content")
MOVED = 0.1  # pixels: a corner of BEFORE moved more than this is a geometric drift
GAIN = 0.01  # a channel's gain further than this from 1 is a colour drift
LEVELS = 0.9  # or a channel's mid-grey (128) moved by this many levels (0-255)
NOISE = 8.0  # median |difference| (largest channel, 0-255) outside at most this: re-encoding level
RESAVED = 1.0  # a residual (align's median, levels) at least this after a fit: the pair was also re-encoded
MARGIN = 0.005  # of the long side: the mask's rim, left out when looking for content outside it


@dataclass(frozen=True)
class Diagnosis:
    """The kinds of change found outside the mask, heaviest first, and their numbers."""

    kinds: list[str]
    text: str
    alignment: dict[str, Any] | None = None  # scale, scale_xy, shift, rotation, both sizes, residual
    colour: dict[str, list[float]] | None = None  # gain and offset per channel (R G B)
    box: Box | None = None  # XYXY in BEFORE's pixels around the content changed outside (x1, y1 exclusive)
    sizes: tuple[tuple[int, int], tuple[int, int]] = field(default=((0, 0), (0, 0)))  # (before, after) (w, h)

    @property
    def kind(self) -> str:
        return self.kinds[0]

    def to_dict(self) -> dict[str, Any]:
        """The `drift` key of `lasso verify --json`."""
        return {
            "kinds": list(self.kinds),
            "alignment": self.alignment,
            "colour": self.colour,
            "box": list(self.box) if self.box else None,
            "text": self.text,
        }

    def line(self) -> str:
        return f"drift: {self.text}"


def diagnose(
    before: LoadedImage | np.ndarray,
    after: LoadedImage | np.ndarray,
    mask: np.ndarray | None = None,
    verification: Verification | None = None,
) -> Diagnosis:
    """What kind of change `after` shows outside `mask` (HxW, BEFORE's size; > 0 may change).
    `verification`: verify()'s of the pair when the sizes agree (computed here when not given)."""
    a, b = _rgb(before), _rgb(after)
    (h, w), (he, we) = a.shape[:2], b.shape[:2]
    sizes = ((w, h), (we, he))
    allowed = _allowed(mask, h, w)
    same = (h, w) == (he, we)
    if same:
        from .verify import verify

        v = verification or verify(before, after, mask)
        if v.identical_outside:
            return Diagnosis(["none"], "nothing changed outside the mask", sizes=sizes)
        if not (a != b).any(axis=2)[~allowed].any():
            text = f"changes outside the mask that 8-bit RGB does not show (alpha, or deeper samples' low bits), box {_list(v.bbox_outside)}"
            return Diagnosis(["content"], text, box=v.bbox_outside, sizes=sizes)
    try:
        found = align(a, b, keep=None if mask is None else ~allowed)
    except (InvalidInputError, cv2.error) as e:
        return _unaligned(a, b, allowed, sizes, str(e))
    return _read(a, b, allowed, found, sizes)


def _read(a: np.ndarray, b: np.ndarray, allowed: np.ndarray, found: Alignment, sizes: tuple) -> Diagnosis:
    """The kinds of change an alignment shows, with their numbers and a line of text."""
    (w, h), (we, he) = sizes
    same = (w, h) == (we, he)
    kinds, parts = [], []
    shown = found.to_dict()
    alignment = colour = None
    if not same or _moved(found) > MOVED:
        kinds.append("shift_or_zoom")
        alignment = {k: v for k, v in shown.items() if k != "colour"}
        parts.append(_geometric_text(found, same))
    if _drifted(found):
        kinds.append("colour_drift")
        colour = shown["colour"]
        parts.append(
            "a colour drift: gain "
            + " ".join(f"{g:.3f}" for g in found.colour.gain)
            + ", offset "
            + " ".join(f"{o:+.1f}" for o in found.colour.offset)
            + " (R G B)"
        )
    region = _content(found, allowed)
    box = None
    if region.any():
        box = _exact_box(a, b, region) if same else _box(region)
        kinds.append("content")
        parts.append(
            f"content changed outside the mask at {_list(box)} ({int(region.sum()):,} px) that no shift, zoom or colour fit explains"
        )
    if same and "shift_or_zoom" not in kinds:
        median = _median_outside(a, found.colour.undo(b), allowed)
        if not kinds or found.residual >= RESAVED:
            if median <= NOISE or kinds:
                kinds.append("reencoding")
                parts.append(
                    f"re-encoding noise (e.g. JPEG): {median:g} levels median difference, no region of larger changes"
                )
            else:
                kinds.append("content")
                parts.append(
                    f"a change spread over the whole picture ({median:g} levels median) that no shift, zoom or colour fit explains"
                )
    return Diagnosis(kinds, "; ".join(parts), alignment, colour, box, sizes)


def _unaligned(a: np.ndarray, b: np.ndarray, allowed: np.ndarray, sizes: tuple, why: str) -> Diagnosis:
    """No alignment: AFTER at another size is not BEFORE; at the same size, read from the raw difference."""
    (w, h), (we, he) = sizes
    if (w, h) != (we, he):
        text = f"AFTER ({we}x{he}) does not look like BEFORE ({w}x{h}) at another size: {why}"
        return Diagnosis(["content"], text, sizes=sizes)
    median = _median_outside(a, b, allowed)
    diff = _blurred_difference(a, b) > 16.0
    region = _big(diff & ~_grown(allowed)) if min(h, w) >= 16 else np.zeros_like(allowed)
    if median <= NOISE and not region.any():
        return Diagnosis(
            ["reencoding"], f"re-encoding noise (e.g. JPEG): {median:g} levels median difference", sizes=sizes
        )
    changed = (a != b).any(axis=2) & ~allowed
    box = _exact_box(a, b, region) if region.any() else _box(changed)
    return Diagnosis(
        ["content"],
        f"content changed outside the mask at {_list(box)}, no alignment found ({why})",
        box=box,
        sizes=sizes,
    )


# --------------------------------------------------------------------------- the kinds
def _moved(found: Alignment) -> float:
    """How far (BEFORE's pixels) the fit moves BEFORE's corners, relative to the plain stretch."""
    (wo, ho), (we, he) = found.original_size, found.edited_size
    kx, ky = we / wo, he / ho
    stretch = np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5], [0.0, 0.0, 1.0]])
    m = np.eye(3)
    m[:2] = found.matrix
    r = np.linalg.inv(stretch) @ m
    corners = np.array([[0, 0, 1], [wo - 1, 0, 1], [0, ho - 1, 1], [wo - 1, ho - 1, 1]], float).T
    return float(np.abs(r[:2] @ corners - corners[:2]).max())


def _drifted(found: Alignment) -> bool:
    """Whether the fit's colour drift is more than a fit's own error."""
    c = found.colour
    return any(abs(g - 1) > GAIN or abs((g - 1) * 128 + o) >= LEVELS for g, o in zip(c.gain, c.offset, strict=True))


def _content(found: Alignment, allowed: np.ndarray) -> np.ndarray:
    """Where AFTER still differs after the fit, outside the mask and off its rim (bool, BEFORE's grid)."""
    return _big(found.changes(grow=0.0) & ~_grown(allowed))


def _geometric_text(found: Alignment, same: bool) -> str:
    (w, h), (we, he) = found.original_size, found.edited_size
    head = (
        "a whole-picture shift or zoom:"
        if same
        else f"another size (AFTER {we}x{he}, BEFORE {w}x{h}); beyond the resize,"
    )
    dx, dy = found.shift
    return f"{head} scale {found.scale:.4f}, shift {dx:+.2f}, {dy:+.2f} px, rotation {found.rotation:+.2f} deg"


# --------------------------------------------------------------------------- helpers
def _rgb(image: LoadedImage | np.ndarray) -> np.ndarray:
    """RGB uint8 HxWx3: a LoadedImage's `rgb`; an array's colour channels, 16 bits rounded to 8."""
    from .decode import LoadedImage

    if isinstance(image, LoadedImage):
        return image.rgb
    x = np.asarray(image)
    x = x[..., None] if x.ndim == 2 else x
    if x.dtype == np.uint16:
        x = np.rint(x / 257.0)
    x = np.repeat(x[..., :1], 3, axis=2) if x.shape[2] in (1, 2) else x[..., :3]
    return np.ascontiguousarray(np.clip(np.nan_to_num(x), 0, 255).astype(np.uint8))


def _allowed(mask: np.ndarray | None, h: int, w: int) -> np.ndarray:
    if mask is None:
        return np.zeros((h, w), bool)
    m = np.asarray(mask)
    m = m.max(axis=2) if m.ndim == 3 else m
    if m.shape != (h, w):
        raise InvalidInputError(f"the mask is {m.shape[1]}x{m.shape[0]}; BEFORE is {w}x{h}")
    return m > 0


def _grown(allowed: np.ndarray) -> np.ndarray:
    """The mask grown by MARGIN of the long side: its rim."""
    if not allowed.any():
        return allowed
    g = max(2, round(MARGIN * max(allowed.shape)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1))
    return cv2.dilate(allowed.astype(np.uint8), disc) > 0


def _big(found: np.ndarray) -> np.ndarray:
    """Specks opened away, areas under 0.05% of the picture (16 pixels at least) dropped."""
    h, w = found.shape
    m = cv2.morphologyEx(found.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= max(16, int(0.0005 * h * w))
    return keep[labels]


def _blurred_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = cv2.GaussianBlur(a.astype(np.float32), (0, 0), 1.0)
    y = cv2.GaussianBlur(b.astype(np.float32), (0, 0), 1.0)
    return np.abs(x - y).max(axis=2)


def _median_outside(a: np.ndarray, b: np.ndarray, allowed: np.ndarray) -> float:
    """The median largest-channel |difference| (levels) outside the mask; 0 with nothing outside."""
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)[~allowed]
    return float(np.median(d)) if d.size else 0.0


def _box(where: np.ndarray) -> Box | None:
    if not where.any():
        return None
    ys, xs = np.nonzero(where.any(axis=1))[0], np.nonzero(where.any(axis=0))[0]
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def _exact_box(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> Box | None:
    """The box of the pixels that differ in and near `region` (same-size pairs): exact, not grown."""
    near = cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return _box((a != b).any(axis=2) & near) or _box(region)


def _list(box: Box | None) -> list[int]:
    return list(box) if box else []
