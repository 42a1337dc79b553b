"""Another editor's answer laid back on the original: the geometric drift (its size and aspect, a
zoom, a shift, a small rotation) and the colour drift it added, both estimated from the pixels the
edit left alone, robustly and to a fraction of a pixel, then undone.

    a = align(original_rgb, edited_rgb, keep=~region)   # keep: where the edit was not allowed (None: find out)
    patch, covered = a.paste(edited_rgb, window)        # EDITED in ORIGINAL's grid, its colours undone
    region = a.changes()                                # with no mask: where it still differs

How: both pictures are shrunk to a long side of `WORK` pixels, EDITED stretched to ORIGINAL's
aspect. Candidate starts (the plain stretch; a uniform fit that padded or cropped to another
aspect; ORB features matched and fit by RANSAC) are each refined by ECC (OpenCV's
`findTransformECC`, an affine motion, invariant to gain and offset) on a coarse level, the best is
refined at `WORK` and, for large pictures, at `FINE`. ECC is masked to the pixels outside the
edit; with no mask given, the pixels that still differ after a first fit are masked out and the fit
is made again. The colour drift is a gain and an offset per channel, fit on the same pixels by
least squares trimmed of outliers. Pure numpy and OpenCV: no pipeline here.

Coordinates are OpenCV's: pixel centres at integers. `Alignment.matrix` (2x3) maps a pixel
(x, y) of ORIGINAL to (u, v) in EDITED at EDITED's own size. The drift is reported relative to
the plain stretch of one frame onto the other: `scale`, `shift` (where ORIGINAL's centre moved,
in ORIGINAL's pixels) and `rotation` (degrees, counter-clockwise as seen, as OpenCV's
getRotationMatrix2D counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..core.errors import InvalidInputError

WORK = 768  # long side (pixels) the transform and the colours are estimated at
FINE = 1536  # long side of the last refinement, for pictures larger than about twice WORK
COARSE = 256  # long side the candidate starts are compared at
MAX_RESIDUAL = 12.0  # median difference (0-255) outside the edit above which EDITED is not an edit of ORIGINAL
MAX_TURN = 15.0  # degrees: an editor turns its answer a little, if at all; more is another picture
MAX_ZOOM = 1.5  # nor zooms it by more than this either way, beyond the plain stretch or a pad or crop
MIN_COVERED = 0.5  # EDITED must cover this share of the pixels outside the edit
CHANGE_LEVELS = 16.0  # a pixel differs when a channel differs by more than this (or 5 noise sigmas)

Size = tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class ColourDrift:
    """The editor's colour drift: EDITED = gain * ORIGINAL + offset, per RGB channel (0-255)."""

    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def undo(self, rgb: np.ndarray) -> np.ndarray:
        """`rgb` (uint8 HxWx3, EDITED's colours) in ORIGINAL's colours, rounded to uint8."""
        levels = np.arange(256, dtype=np.float64)[:, None]
        table = (levels - np.asarray(self.offset)) / np.asarray(self.gain)  # a table per channel: exact and fast
        lut = np.clip(np.rint(table), 0, 255).astype(np.uint8).reshape(256, 1, 3)
        return cv2.LUT(np.ascontiguousarray(rgb), lut)

    def to_dict(self) -> dict[str, list[float]]:
        return {"gain": [round(g, 4) for g in self.gain], "offset": [round(b, 2) for b in self.offset]}


@dataclass
class _Work:
    """The pictures at WORK size (ORIGINAL's grid): ORIGINAL, EDITED laid on it with its colours
    undone, where EDITED covers it, and the pixels used for the fit."""

    original: np.ndarray
    edited: np.ndarray
    covered: np.ndarray
    keep: np.ndarray


@dataclass(frozen=True)
class Alignment:
    """How EDITED lies on ORIGINAL (module docstring: coordinates and conventions)."""

    matrix: np.ndarray  # 2x3 float64: ORIGINAL (x, y) -> EDITED (u, v), at EDITED's own size
    original_size: Size
    edited_size: Size
    scale: float  # the zoom: sqrt of the determinant, relative to the plain stretch
    scale_xy: tuple[float, float]  # along x and along y (they differ when the aspect changed)
    shift: tuple[float, float]  # where ORIGINAL's centre went, ORIGINAL's pixels, (dx, dy)
    rotation: float  # degrees, counter-clockwise as seen
    residual: float  # median |ORIGINAL - EDITED aligned| outside the edit, 0-255, after the colour undone
    colour: ColourDrift
    work: _Work | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """What a report shows: the drift, both sizes, the residual and the colour."""
        return {
            "scale": round(self.scale, 5),
            "scale_xy": [round(s, 5) for s in self.scale_xy],
            "shift": [round(s, 3) for s in self.shift],
            "rotation": round(self.rotation, 4),
            "original_size": list(self.original_size),
            "edited_size": list(self.edited_size),
            "residual": round(self.residual, 3),
            "colour": self.colour.to_dict(),
        }

    def paste(self, edited: np.ndarray, window: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """EDITED (RGB uint8, its own size) in ORIGINAL's grid over `window` (XYXY, x1 and y1
        exclusive), bicubic, its colour drift undone; and where EDITED covers it (bool)."""
        x0, y0, x1, y1 = window
        m, src = _h(self.matrix), edited
        k = min(edited.shape[1] / self.original_size[0], edited.shape[0] / self.original_size[1])
        if k > 1.5:  # much larger than ORIGINAL: area-shrunk first, so the warp does not alias
            w, h = round(edited.shape[1] / k), round(edited.shape[0] / k)
            src = cv2.resize(edited, (w, h), interpolation=cv2.INTER_AREA)
            m = _resize(edited.shape[1], edited.shape[0], w, h) @ m
        m = m @ _translate(x0, y0)
        flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
        out = cv2.warpAffine(src, m[:2], (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        return self.colour.undo(out), _covered(m, (x1 - x0, y1 - y0), (src.shape[1], src.shape[0]))

    def changes(self, grow: float = 0.01) -> np.ndarray:
        """Where EDITED still differs from ORIGINAL once aligned and its colours undone (bool HxW,
        ORIGINAL's size): channels differing well above re-encoding noise, specks dropped, holes
        filled, grown by `grow` of the long side; never where EDITED does not cover ORIGINAL."""
        if self.work is None:
            raise ValueError("this alignment kept no working pictures")
        w = self.work
        diff = _difference(w.original, w.edited)
        noise = 1.4826 * float(np.median(diff[w.covered])) if w.covered.any() else 0.0
        found = (diff > max(CHANGE_LEVELS, 5.0 * noise)) & w.covered
        found = _clean(found, grow)
        full = cv2.resize(found.astype(np.uint8) * 255, self.original_size, interpolation=cv2.INTER_LINEAR) > 0
        return full & self.covered() if full.any() else full

    def covered(self) -> np.ndarray:
        """Where EDITED covers ORIGINAL (bool HxW, ORIGINAL's size)."""
        return _covered(_h(self.matrix), self.original_size, self.edited_size)


def align(original: np.ndarray, edited: np.ndarray, keep: np.ndarray | None = None) -> Alignment:
    """How `edited` (RGB uint8, any size) lies on `original` (RGB uint8): its geometric and colour
    drift, fit on the pixels `keep` (bool HxW, ORIGINAL's size: where the edit was not allowed;
    None: every pixel, those that differ set aside after a first fit). Raises InvalidInputError
    when no fit leaves the two alike outside the edit: EDITED is not an edit of ORIGINAL."""
    _check(original, edited, keep)
    (ho, wo), (he, we) = original.shape[:2], edited.shape[:2]
    ow, oh = _fit((wo, ho), min(WORK, max(we, he)))  # never finer than EDITED's own pixels
    fine = max(wo, ho) > 1.8 * WORK and max(we, he) > 1.3 * WORK
    fsize = _fit((wo, ho), FINE) if fine else (ow, oh)
    o_f, e_f = cv2.resize(original, fsize, interpolation=cv2.INTER_AREA), _shrink(edited, fsize)
    o_w, e_w = _shrink(o_f, (ow, oh)), _shrink(e_f, (ow, oh))
    t_o, t_e = _resize(wo, ho, ow, oh), _resize(we, he, ow, oh)
    keep_w = _keep_at(keep, (ow, oh))
    w = _start(
        _grey(o_w), _grey(e_w), keep_w, [t_o @ np.linalg.inv(c) @ np.linalg.inv(t_e) for c in _guesses(wo, ho, we, he)]
    )
    w, keep_w = _refine(_grey(o_w), _grey(e_w), w, keep_w)
    m = np.linalg.inv(t_e) @ np.linalg.inv(w) @ t_o
    if fine:
        m = _fine(_grey(o_f), _grey(e_f), (wo, ho), (we, he), m, keep)
    w = t_o @ np.linalg.inv(m) @ np.linalg.inv(t_e)
    laid = cv2.warpAffine(e_w, w[:2], (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    cov_w = _covered(np.linalg.inv(w), (ow, oh), (ow, oh))
    used = keep_w & cov_w
    if used.mean() < MIN_COVERED * max(keep_w.mean(), 1e-9):
        raise InvalidInputError(
            f"EDITED does not look like an edit of ORIGINAL: the best alignment covers only {used.mean():.0%} of it"
        )
    colour = _fit_colour(o_w, laid, used)
    laid = colour.undo(laid)
    residual = float(np.median(np.abs(o_w.astype(np.int16) - laid.astype(np.int16)).mean(axis=2)[used]))
    if residual > MAX_RESIDUAL:
        raise InvalidInputError(
            f"EDITED does not look like an edit of ORIGINAL: after the best alignment the two still differ by "
            f"{residual:.1f} levels (median, 0-255) outside the edit, more than {MAX_RESIDUAL:g}"
        )
    found = _described(m, (wo, ho), (we, he), residual, colour, _Work(o_w, laid, cov_w, used))
    if not _plausible(m, (wo, ho), (we, he)):
        raise InvalidInputError(
            f"EDITED does not look like an edit of ORIGINAL: the only alignment found turns it {found.rotation:.0f} "
            f"degrees and scales it {found.scale:.2f} times (residual {residual:.1f} levels), not an editor's drift"
        )
    return found


# --------------------------------------------------------------------------- the geometric fit
def _start(o: np.ndarray, e: np.ndarray, keep: np.ndarray, guesses: list[np.ndarray]) -> np.ndarray:
    """The best start (W: EDITED's work grid -> ORIGINAL's) among the guesses and a feature fit,
    each refined by ECC on a coarse level and judged by its correlation there."""
    feat = _features(o, e, keep)
    starts = guesses + ([feat] if feat is not None and _plausible(feat, (1, 1), (1, 1), guesses) else [])
    cw, ch = _fit((o.shape[1], o.shape[0]), COARSE)
    s = _resize(o.shape[1], o.shape[0], cw, ch)
    oc = cv2.resize(o, (cw, ch), interpolation=cv2.INTER_AREA)
    ec = cv2.resize(e, (cw, ch), interpolation=cv2.INTER_AREA)
    kc = _keep_at(keep, (cw, ch))
    best, best_rho = starts[0], -2.0
    for w in starts:
        rho, wc = _ecc(oc, ec, s @ w @ np.linalg.inv(s), kc, 60, 3)
        if rho > best_rho:
            best, best_rho = np.linalg.inv(s) @ wc @ s, rho
    return best


def _refine(o: np.ndarray, e: np.ndarray, w: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ECC at the work level from `w`, then again with the pixels that still differ masked out
    (what the edit changed, given a mask or not: an editor may change more than it was allowed).
    Returns W and the pixels it was fit on."""
    used = keep
    for _ in range(2):
        rho, fitted = _ecc(o, e, w, used, 40, 5)
        if rho > -1.0:
            w = fitted
        used = keep & ~_outliers(o, e, w)
    return w, used


def _fine(o: np.ndarray, e: np.ndarray, osize: Size, esize: Size, m: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """`m` refined by ECC on `o` and `e` (grey ORIGINAL and EDITED at a long side of FINE: for
    large pictures, where a work-level pixel is several)."""
    (wo, ho), (we, he), (fw, fh) = osize, esize, (o.shape[1], o.shape[0])
    t_o, t_e = _resize(wo, ho, fw, fh), _resize(we, he, fw, fh)
    w = t_o @ np.linalg.inv(m) @ np.linalg.inv(t_e)
    used = _keep_at(keep, (fw, fh)) & ~_outliers(o, e, w)
    rho, fitted = _ecc(o, e, w, used, 20, 5)
    if rho <= -1.0:
        return m
    return np.linalg.inv(t_e) @ np.linalg.inv(fitted) @ t_o


def _ecc(
    o: np.ndarray, e: np.ndarray, w: np.ndarray, keep: np.ndarray, iterations: int, blur: int
) -> tuple[float, np.ndarray]:
    """ECC from `w` (3x3, EDITED's grid -> ORIGINAL's), masked to `keep` in ORIGINAL's grid:
    (correlation, the fitted 3x3); (-2, w) when it does not converge."""
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, 1e-5)
    mask = keep.astype(np.uint8)
    try:
        rho, fitted = cv2.findTransformECC(e, o, w[:2].astype(np.float32), cv2.MOTION_AFFINE, criteria, mask, blur)
    except cv2.error:
        return -2.0, w
    out = np.eye(3)
    out[:2] = fitted
    if not np.isfinite(out).all() or abs(np.linalg.det(out[:2, :2])) < 1e-3:
        return -2.0, w
    return float(rho), out


def _features(o: np.ndarray, e: np.ndarray, keep: np.ndarray) -> np.ndarray | None:
    """W fit by RANSAC to ORB features matched between the two (those of ORIGINAL outside the
    edit only); None when too few agree."""
    orb = cv2.ORB.create(3000)
    ko, do = orb.detectAndCompute(_u8(o), keep.astype(np.uint8) * 255)
    ke, de = orb.detectAndCompute(_u8(e), None)
    if do is None or de is None or len(ko) < 8 or len(ke) < 8:
        return None
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(de, do, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < 0.8 * p[1].distance]
    if len(good) < 12:
        return None
    src = np.array([ke[g.queryIdx].pt for g in good], np.float32)
    dst = np.array([ko[g.trainIdx].pt for g in good], np.float32)
    a, inliers = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    if a is None or inliers is None or int(inliers.sum()) < 12:
        return None
    out = np.eye(3)
    out[:2] = a
    return out


def _outliers(o: np.ndarray, e: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Where grey EDITED, laid on ORIGINAL by `w` with a robust grey gain and offset, still differs
    well above the noise (bool, ORIGINAL's work grid), specks opened away and the rest grown a
    little: what the edit changed, for the fit to leave out."""
    size = (o.shape[1], o.shape[0])
    laid = cv2.warpAffine(e, w[:2], size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    covered = _covered(np.linalg.inv(w), size, size)
    g, b = _robust_line(o[covered], laid[covered])
    r = np.abs(cv2.GaussianBlur(laid - (g * o + b), (0, 0), 1.0))
    noise = 1.4826 * float(np.median(r[covered])) if covered.any() else 0.0
    found = (r > max(CHANGE_LEVELS, 5.0 * noise)).astype(np.uint8)
    bad = cv2.morphologyEx(found, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)))
    grow = max(3, round(0.01 * max(o.shape)))
    return cv2.dilate(bad, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))) > 0


# --------------------------------------------------------------------------- colour
def _fit_colour(o: np.ndarray, e: np.ndarray, used: np.ndarray) -> ColourDrift:
    """A gain and an offset per channel (EDITED = gain * ORIGINAL + offset) on the pixels `used`,
    clipped samples left out, fit by least squares trimmed of outliers."""
    gains, offsets = [], []
    rng = np.random.default_rng(0)
    idx = np.flatnonzero(used)
    if idx.size > 200_000:
        idx = rng.choice(idx, 200_000, replace=False)
    for c in range(3):
        x = o[..., c].reshape(-1)[idx].astype(np.float64)
        y = e[..., c].reshape(-1)[idx].astype(np.float64)
        ok = (x > 2) & (x < 253) & (y > 2) & (y < 253)
        if ok.sum() < 50 or np.ptp(x[ok]) < 16:  # too little range to tell a gain: an offset at most
            gains.append(1.0)
            offsets.append(float(np.median(y[ok] - x[ok])) if ok.any() else 0.0)
            continue
        g, b = _robust_line(x[ok], y[ok])
        gains.append(g)
        offsets.append(b)
    return ColourDrift(tuple(gains), tuple(offsets))  # type: ignore[arg-type]


def _robust_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """y = g x + b by least squares, refit three times on the points within 3 robust sigmas."""
    x, y = x.astype(np.float64).ravel(), y.astype(np.float64).ravel()
    if x.size > 50_000:  # a sample is as good a fit, and faster
        pick = np.random.default_rng(0).choice(x.size, 50_000, replace=False)
        x, y = x[pick], y[pick]
    if x.size < 2 or np.ptp(x) == 0:
        return 1.0, float(np.median(y - x)) if x.size else 0.0
    keep = np.ones(x.size, bool)
    g, b = 1.0, 0.0
    for _ in range(4):
        if keep.sum() < 2 or np.ptp(x[keep]) == 0:
            break
        g, b = np.polyfit(x[keep], y[keep], 1)
        r = np.abs(y - (g * x + b))
        keep = r <= max(2.0, 3.0 * 1.4826 * float(np.median(r[keep])))
    if not 0.2 < g < 5.0:  # no sensible gain: the offset alone
        return 1.0, float(np.median(y - x))
    return float(g), float(b)


# --------------------------------------------------------------------------- the changed region
def _difference(o: np.ndarray, e: np.ndarray) -> np.ndarray:
    """The largest channel difference of the two, each lightly blurred (sub-pixel misfit and
    re-encoding noise are not changes), float32 HxW."""
    a = cv2.GaussianBlur(o.astype(np.float32), (0, 0), 1.0)
    b = cv2.GaussianBlur(e.astype(np.float32), (0, 0), 1.0)
    return np.abs(a - b).max(axis=2)


def _clean(found: np.ndarray, grow: float) -> np.ndarray:
    """Specks opened away, gaps closed, regions under 0.05% of the picture dropped, holes filled,
    grown by `grow` of the long side."""
    h, w = found.shape
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    m = cv2.morphologyEx(found.astype(np.uint8), cv2.MORPH_OPEN, disc)
    r = max(1, round(0.006 * max(h, w)))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    small = max(16, int(0.0005 * h * w))
    big = np.zeros(n, bool)
    big[1:] = stats[1:, cv2.CC_STAT_AREA] >= small
    m = big[labels].astype(np.uint8)
    if not m.any():
        return m > 0
    flood = np.pad(m, 1)  # the background flooded from the border: what it misses is a hole
    cv2.floodFill(flood, None, (0, 0), 1)
    m = m | (1 - flood[1:-1, 1:-1])
    g = max(1, round(grow * max(h, w)))
    return cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1, 2 * g + 1))) > 0


# --------------------------------------------------------------------------- small helpers
def _check(original: np.ndarray, edited: np.ndarray, keep: np.ndarray | None) -> None:
    for name, a in (("ORIGINAL", original), ("EDITED", edited)):
        if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
            raise InvalidInputError(f"{name} must be RGB uint8 HxWx3, got {a.dtype} {a.shape}")
        if min(a.shape[:2]) < 16:
            raise InvalidInputError(
                f"{name} is {a.shape[1]}x{a.shape[0]}: too small to align (16 pixels a side at least)"
            )
    if keep is not None and keep.shape != original.shape[:2]:
        raise InvalidInputError(
            f"the mask is {keep.shape[1]}x{keep.shape[0]}; ORIGINAL is {original.shape[1]}x{original.shape[0]}"
        )
    if keep is not None and keep.mean() < 0.1:
        raise InvalidInputError("the mask allows changes almost everywhere: too little is left outside it to align on")


def _described(m: np.ndarray, osize: Size, esize: Size, residual: float, colour: ColourDrift, work: _Work) -> Alignment:
    """The Alignment of `m` (ORIGINAL -> EDITED), its drift read relative to the plain stretch."""
    r = np.linalg.inv(_resize(*osize, *esize)) @ m  # ORIGINAL -> EDITED stretched back to ORIGINAL's frame
    a = r[:2, :2]
    sx = math.hypot(a[0, 0], a[1, 0])
    sy = float(np.linalg.det(a)) / sx
    centre = np.array([(osize[0] - 1) / 2, (osize[1] - 1) / 2, 1.0])
    moved = r @ centre - centre
    return Alignment(
        matrix=m[:2].copy(),
        original_size=osize,
        edited_size=esize,
        scale=math.sqrt(abs(float(np.linalg.det(a)))),
        scale_xy=(sx, sy),
        shift=(float(moved[0]), float(moved[1])),
        rotation=math.degrees(math.atan2(-a[1, 0], a[0, 0])),
        residual=residual,
        colour=colour,
        work=work,
    )


def _plausible(m: np.ndarray, osize: Size, esize: Size, guesses: list[np.ndarray] | None = None) -> bool:
    """Whether `m` is a drift an editor makes: turned at most MAX_TURN degrees and zoomed at most
    MAX_ZOOM times from one of `guesses` (default: the plain stretch, the pad and the crop of the
    two sizes)."""
    a = m[:2, :2]
    if (
        abs(math.degrees(math.atan2(-a[1, 0], a[0, 0]))) > MAX_TURN
        or abs(math.degrees(math.atan2(a[0, 1], a[1, 1]))) > MAX_TURN
    ):
        return False
    for g in guesses if guesses is not None else _guesses(*osize, *esize):
        k = np.linalg.inv(g[:2, :2]) @ a
        if all(1 / MAX_ZOOM < abs(float(v)) < MAX_ZOOM for v in np.abs(np.linalg.eigvals(k))):
            return True
    return False


def _guesses(wo: int, ho: int, we: int, he: int) -> list[np.ndarray]:
    """Starts for M (ORIGINAL -> EDITED): the plain stretch, and when the aspects differ a uniform
    fit centred in EDITED that padded (the whole picture inside) and one that cropped (filled it)."""
    out = [_resize(wo, ho, we, he)]
    if abs(math.log((we / he) / (wo / ho))) > 0.01:
        for s in (min(we / wo, he / ho), max(we / wo, he / ho)):
            out.append(
                _translate((we - 1) / 2, (he - 1) / 2) @ np.diag([s, s, 1.0]) @ _translate(-(wo - 1) / 2, -(ho - 1) / 2)
            )
    return out


def _covered(m: np.ndarray, size: Size, src: Size) -> np.ndarray:
    """Where `m` (3x3: a grid of `size` -> a picture of `src`) lands inside the picture (bool HxW).
    The covered pixels of a row are one run: its ends are solved for, row by row."""
    w, h = size
    y = np.arange(h, dtype=np.float64)
    lo, hi = np.full(h, -np.inf), np.full(h, np.inf)
    eps = 1e-3
    for row, top in ((0, src[0] - 1), (1, src[1] - 1)):
        a, base = m[row, 0], m[row, 1] * y + m[row, 2]  # u (or v) = a x + base
        if abs(a) < 1e-12:
            inside = (base >= -eps) & (base <= top + eps)
            lo[~inside], hi[~inside] = np.inf, -np.inf
            continue
        x1, x2 = (-eps - base) / a, (top + eps - base) / a
        lo, hi = np.maximum(lo, np.minimum(x1, x2)), np.minimum(hi, np.maximum(x1, x2))
    first = np.ceil(np.clip(lo, -1, w + 1)).astype(np.int64)[:, None]
    last = np.floor(np.clip(hi, -1, w + 1)).astype(np.int64)[:, None]
    x = np.arange(w, dtype=np.int64)[None, :]
    return (x >= first) & (x <= last)


def _keep_at(keep: np.ndarray | None, size: Size) -> np.ndarray:
    """`keep` at another size: True where every pixel it covers is kept, then eroded 2 pixels
    (off the edit's rim); every pixel with no mask."""
    if keep is None:
        return np.ones((size[1], size[0]), bool)
    small = cv2.resize(keep.astype(np.uint8) * 255, size, interpolation=cv2.INTER_AREA) >= 255
    return cv2.erode(small.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0


def _fit(size: Size, long: int) -> Size:
    """`size` shrunk (never grown) to a long side of `long`."""
    f = min(1.0, long / max(size))
    return max(8, round(size[0] * f)), max(8, round(size[1] * f))


def _shrink(rgb: np.ndarray, size: Size) -> np.ndarray:
    """`rgb` resized to `size`: area filter down, linear up."""
    down = size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _u8(a: np.ndarray) -> np.ndarray:
    return np.clip(a, 0, 255).astype(np.uint8)


def _h(m: np.ndarray) -> np.ndarray:
    out = np.eye(3)
    out[:2] = m[:2]
    return out


def _translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def _resize(w0: int, h0: int, w1: int, h1: int) -> np.ndarray:
    """The 3x3 map of a (w0, h0) picture's pixels to a (w1, h1) resize of it (cv2.resize's centres)."""
    kx, ky = w1 / w0, h1 / h0
    return np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5], [0.0, 0.0, 1.0]])
