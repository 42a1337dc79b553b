"""Step 5, refine: turn a segmenter's mask into the mask an action paints, and its feathered alpha.

Each action wants a different edge (docs/models.md, "Masks"):
- remove / replace / add: grown by a margin that scales with the object, so no rim of the old
  object (anti-aliased edge, shadow) survives and the inpainter cannot regrow it from a sliver;
- recolor: tight, holes filled, a thin feather so the new colour meets the old edge smoothly;
- background: the inverse of the subject, feathered inward so the subject stays bit-identical;
- style: the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.actions import spec
from ..core.plan import Action
from ..imaging.arrays import feather, mask_bbox


@dataclass(frozen=True)
class RefineSettings:
    grow: float = 0.04  # remove/replace/add: dilation as a fraction of the object's size (sqrt of area)
    min_grow: int = 3  # ... and at least this many pixels
    max_grow: int = 64  # ... and at most
    feather: int = 4  # feather width in pixels at full resolution (scaled down for small images)
    min_island: float = 0.002  # drop connected specks smaller than this fraction of the mask's area


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes (background pixels not connected to the image border) in a bool HxW mask."""
    import cv2

    if not mask.any():
        return mask.copy()
    inv = (~mask).astype(np.uint8)
    n, labels = cv2.connectedComponents(inv, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.zeros(n, dtype=bool)  # a lookup table per label: one pass over the labels
    outside[border] = True
    return mask | ~outside[labels]


def remove_islands(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Drop connected components smaller than `min_area` pixels; the largest one always stays."""
    import cv2

    if min_area <= 1 or not mask.any():
        return mask.copy()
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, dtype=bool)
    keep[1:] = areas >= min_area
    keep[1 + int(np.argmax(areas))] = True
    return keep[labels]


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow a bool HxW mask by `radius` pixels: every pixel within Euclidean distance `radius` of it.

    Computed with an exact distance transform (one pass, whatever the radius) rather than a
    disc-shaped kernel, whose cost grows with the radius: 0.3 s instead of 3.2 s for a large
    mask at 24 MP and radius 64 on 2 CPU cores (docs/decisions.md, "Mask dilation").
    """
    import cv2

    if radius <= 0 or not mask.any():
        return mask.copy()
    dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return dist <= radius


def grow_radius(mask: np.ndarray, s: RefineSettings) -> int:
    """How far to dilate an object's mask for removal or replacement: scales with its size."""
    size = float(np.sqrt(mask.sum()))
    return int(np.clip(round(s.grow * size), s.min_grow, s.max_grow))


def shadow(image: np.ndarray, mask: np.ndarray, darker: float = 0.75, max_ratio: float = 1.5) -> np.ndarray:
    """The object's cast shadow: dark pixels below and beside it that touch its mask.

    Looks in a window from the object's middle to 0.8 of its height below it and one width to
    each side; a pixel is shadow when its luminance is under `darker` x the window's bright
    background (75th percentile of the non-object pixels) and its dark region touches the mask.
    Gives up (empty) when the dark area exceeds `max_ratio` x the object: a dark scene, not a shadow.
    Expects an RGB uint8 HxWx3 image and a bool HxW mask; returns a bool HxW mask.
    """
    import cv2

    out = np.zeros_like(mask, dtype=bool)
    bb = mask_bbox(mask)
    if bb is None:
        return out
    h_img, w_img = mask.shape
    x0, y0, x1, y1 = bb
    bw, bh = x1 - x0, y1 - y0
    wx0, wx1 = max(0, int(x0 - bw)), min(w_img, int(x1 + bw))
    wy0, wy1 = max(0, int(y0 + 0.5 * bh)), min(h_img, int(y1 + 0.8 * bh))
    if wx1 <= wx0 or wy1 <= wy0:
        return out
    lum = cv2.cvtColor(image[wy0:wy1, wx0:wx1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    obj = mask[wy0:wy1, wx0:wx1]
    if obj.all():
        return out
    ref = float(np.percentile(lum[~obj], 75))
    dark = (lum < darker * ref) & ~obj
    # The mask grown by 2 px, computed on the window plus 2 px (a dilation only looks that far).
    py0, py1, px0, px1 = max(0, wy0 - 2), min(h_img, wy1 + 2), max(0, wx0 - 2), min(w_img, wx1 + 2)
    touch = dilate(mask[py0:py1, px0:px1], 2)[wy0 - py0 : wy1 - py0, wx0 - px0 : wx1 - px0]
    n, labels = cv2.connectedComponents(dark.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)  # a lookup table per label, as in fill_holes
    keep[labels[dark & touch]] = True
    keep[0] = False
    cand = keep[labels]
    if cand.sum() > max_ratio * mask.sum():
        return out
    out[wy0:wy1, wx0:wx1] = cand
    return out


def feather_width(shape: tuple[int, ...], settings: RefineSettings) -> int:
    """The feather in pixels for an HxW image: scaled with it, so that a 64-px test image and a
    24 MP photo look alike (0: no feather)."""
    h, w = shape[:2]
    return max(1, int(round(settings.feather * max(h, w) / 1024))) if settings.feather else 0


def within(mask: np.ndarray, settings: RefineSettings = RefineSettings()) -> tuple[np.ndarray, np.ndarray]:
    """(region, alpha) for a mask a person gave (`Correction.mask`): the region is the mask as it is,
    never grown, holes and specks kept; the feather ramps inward, so alpha is 0 wherever the mask is
    False and every pixel outside it stays bit-identical."""
    region = np.asarray(mask, dtype=bool).copy()
    return region, feather(region, feather_width(region.shape, settings), inward=True)


def refine(
    mask: np.ndarray, action: Action, settings: RefineSettings = RefineSettings(), image: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (region, alpha) for an action from the segmenter's bool HxW mask.

    region (bool HxW) is every pixel the edit may change; alpha (float32 HxW in [0, 1]) is the
    compositing weight, 0 exactly where region is False. With the image (RGB uint8 HxWx3), a
    removal also takes the object's cast shadow (`shadow`).

    The work is done on a crop around the mask, wide enough for everything that looks beyond it
    (the shadow search, the dilation, the feather), so a small object in a 24 MP photo costs what
    it costs in a small one; the answer is the same as on the whole frame (tests check it).
    """
    h, w = mask.shape
    fw = feather_width(mask.shape, settings)
    policy = spec(action).refine  # actions/specs.py: tight, grown, inverse or whole
    if policy == "whole":
        full = np.ones_like(mask, dtype=bool)
        return full, full.astype(np.float32)
    bb = mask_bbox(mask)
    if policy == "inverse" or bb is None:
        return _refine(mask, action, settings, image, fw)
    x0, y0, x1, y1 = bb
    # What looks beyond the mask: the shadow search (an object's size around it), the dilation
    # (at most max_grow) and the feather; a 20% mask without a shadow to find no longer takes the frame.
    reach = max(x1 - x0, y1 - y0) if spec(action).shadow and image is not None else 0
    pad = reach + settings.max_grow + fw + 4
    cx0, cy0, cx1, cy1 = max(0, x0 - pad), max(0, y0 - pad), min(w, x1 + pad), min(h, y1 + pad)
    crop_img = image[cy0:cy1, cx0:cx1] if image is not None else None
    r, a = _refine(mask[cy0:cy1, cx0:cx1], action, settings, crop_img, fw)
    region = np.zeros((h, w), dtype=bool)
    alpha = np.zeros((h, w), dtype=np.float32)
    region[cy0:cy1, cx0:cx1] = r
    alpha[cy0:cy1, cx0:cx1] = a
    return region, alpha


def _refine(
    mask: np.ndarray, action: Action, settings: RefineSettings, image: np.ndarray | None, fw: int
) -> tuple[np.ndarray, np.ndarray]:
    """refine() on a whole frame (or a crop of one), with the feather width `fw` already scaled."""
    s = spec(action)
    m = fill_holes(mask)
    m = remove_islands(m, int(settings.min_island * m.sum()))
    if s.refine == "inverse":
        region = ~m
        return region, feather(region, fw, inward=True)
    if s.shadow and image is not None:
        m = m | shadow(image, m)
    if s.refine == "grown":
        m = dilate(m, grow_radius(m, settings))
    # The feather ramps outward: the region is the core grown by the feather width.
    alpha = feather(m, fw, inward=False)
    return alpha > 0, alpha
