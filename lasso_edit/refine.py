"""Step 4: turn a segmenter's mask into the mask an action paints, and its feathered alpha.

Each action wants a different edge (MODELS.md, "Masks"):
- remove / replace / add: grown by a margin that scales with the object, so no rim of the old
  object (anti-aliased edge, shadow) survives and the inpainter cannot regrow it from a sliver;
- recolor: tight, holes filled, a thin feather so the new colour meets the old edge smoothly;
- background: the inverse of the subject, feathered inward so the subject stays bit-identical;
- style: the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .imaging import feather
from .plan import Action


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
    border = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])).tolist())
    holes = ~np.isin(labels, list(border)) & (inv > 0)
    return mask | holes


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
    """Grow a bool HxW mask by `radius` pixels with a disc."""
    import cv2

    if radius <= 0:
        return mask.copy()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool)


def grow_radius(mask: np.ndarray, s: RefineSettings) -> int:
    """How far to dilate an object's mask for removal or replacement: scales with its size."""
    size = float(np.sqrt(mask.sum()))
    return int(np.clip(round(s.grow * size), s.min_grow, s.max_grow))


def refine(mask: np.ndarray, action: Action, settings: RefineSettings = RefineSettings()) -> tuple[np.ndarray, np.ndarray]:
    """Return (region, alpha) for an action from the segmenter's bool HxW mask.

    region (bool HxW) is every pixel the edit may change; alpha (float32 HxW in [0, 1]) is the
    compositing weight, 0 exactly where region is False.
    """
    h, w = mask.shape
    # Scale the feather with the image so that a 64-px test image and a 24 MP photo look alike.
    fw = max(1, int(round(settings.feather * max(h, w) / 1024))) if settings.feather else 0
    if action is Action.STYLE:
        full = np.ones_like(mask, dtype=bool)
        return full, full.astype(np.float32)
    m = fill_holes(mask)
    m = remove_islands(m, int(settings.min_island * m.sum()))
    if action is Action.BACKGROUND:
        region = ~m
        return region, feather(region, fw, inward=True)
    if action in (Action.REMOVE, Action.REPLACE, Action.ADD):
        m = dilate(m, grow_radius(m, settings))
    # The feather ramps outward: the region is the core grown by the feather width.
    alpha = feather(m, fw, inward=False)
    return alpha > 0, alpha
