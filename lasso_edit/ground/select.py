"""Choose among detections: spatial words, "all", the VLM's own box, scores.

Pure numpy over XYXY pixel boxes, so every qualifier is tested on synthetic detections.
"""

from __future__ import annotations

import re

import numpy as np

from ..core.errors import TargetNotFoundError
from ..core.plan import Box, Edit

ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4}


def iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def nms(boxes: list[Box], scores: list[float], threshold: float = 0.5) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        if all(iou(boxes[i], boxes[j]) < threshold for j in keep):
            keep.append(i)
    return keep


ANOTHER = (
    "no other instance than the one edited before was found; nothing was painted. Say where it is "
    '("the one on the left"), or click it on the page'
)


def apart(boxes: list[Box], avoid: Box, threshold: float = 0.5) -> list[int]:
    """Indices of the boxes that are not `avoid` (IoU at most `threshold`): the candidates left for
    "no, the other one" once the instance edited before is set aside."""
    return [i for i, b in enumerate(boxes) if iou(b, avoid) <= threshold]


def set_aside(boxes: list[Box], edit: Edit, phrase: str) -> list[int]:
    """Indices of the candidates a grounder may choose among: all of them, or for an edit with `avoid`
    ("no, the other one") those that are not the instance edited before. TargetNotFoundError when
    there were candidates and that one was the only one."""
    if edit.avoid is None:
        return list(range(len(boxes)))
    kept = apart(boxes, edit.avoid)
    if boxes and not kept:
        raise TargetNotFoundError(phrase, ANOTHER)
    return kept


def _center(b: Box) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def _area(b: Box) -> float:
    return (b[2] - b[0]) * (b[3] - b[1])


def select(
    boxes: list[Box],
    scores: list[float],
    qualifier: str | None = None,
    select_all: bool = False,
    hint: Box | None = None,
    image_size: tuple[int, int] | None = None,
) -> list[int]:
    """Indices of the chosen detections (already thresholded and de-duplicated).

    - `select_all`: every detection, left to right;
    - a qualifier: "left", "right", "top", "bottom", "middle", "top left" (and the other corners),
      "largest", "smallest", "tallest", "shortest", "closest" (largest), "farthest" (smallest),
      "in the foreground" (lowest bottom edge), "in the background" (highest bottom edge),
      "<ordinal> from the <side>" ("second from the left"), "last from the right";
    - otherwise the VLM's box `hint`, when it overlaps a detection; otherwise the best score.
    """
    n = len(boxes)
    if n == 0:
        return []
    idx = list(range(n))
    if select_all:
        return sorted(idx, key=lambda i: _center(boxes[i])[0])
    q = (qualifier or "").strip().lower()
    if q:
        chosen = _by_qualifier(q, boxes, image_size)
        if chosen is not None:
            return [chosen]
    if hint is not None:
        overlaps = [iou(hint, b) for b in boxes]
        best = int(np.argmax(overlaps))
        if overlaps[best] > 0.1:
            return [best]
    return [int(np.argmax(scores))]


def _by_qualifier(q: str, boxes: list[Box], image_size: tuple[int, int] | None) -> int | None:
    cx = [(_center(b)[0]) for b in boxes]
    cy = [(_center(b)[1]) for b in boxes]
    m = re.fullmatch(r"(?P<o>first|second|third|fourth|fifth|last)\s+from\s+the\s+(?P<s>left|right|top|bottom)", q)
    if m:
        key = {"left": cx, "right": [-v for v in cx], "top": cy, "bottom": [-v for v in cy]}[m.group("s")]
        order = sorted(range(len(boxes)), key=lambda i: key[i])
        k = len(order) - 1 if m.group("o") == "last" else ORDINALS[m.group("o")]
        return order[min(k, len(order) - 1)]
    corners = {"top left": (0, 0), "top right": (1, 0), "bottom left": (0, 1), "bottom right": (1, 1)}
    if q in corners:
        fx, fy = corners[q]
        w = max(b[2] for b in boxes) if image_size is None else image_size[0]
        h = max(b[3] for b in boxes) if image_size is None else image_size[1]
        return int(np.argmin([(c - fx * w) ** 2 + (d - fy * h) ** 2 for c, d in zip(cx, cy)]))
    simple = {
        "left": lambda: np.argmin(cx),
        "right": lambda: np.argmax(cx),
        "top": lambda: np.argmin(cy),
        "bottom": lambda: np.argmax(cy),
        "largest": lambda: np.argmax([_area(b) for b in boxes]),
        "closest": lambda: np.argmax([_area(b) for b in boxes]),
        "front": lambda: np.argmax([b[3] for b in boxes]),
        "in the foreground": lambda: np.argmax([b[3] for b in boxes]),
        "smallest": lambda: np.argmin([_area(b) for b in boxes]),
        "farthest": lambda: np.argmin([_area(b) for b in boxes]),
        "back": lambda: np.argmin([b[3] for b in boxes]),
        "in the background": lambda: np.argmin([b[3] for b in boxes]),
        "tallest": lambda: np.argmax([b[3] - b[1] for b in boxes]),
        "shortest": lambda: np.argmin([b[3] - b[1] for b in boxes]),
    }
    if q in simple:
        return int(simple[q]())
    if q == "middle":
        w = image_size[0] if image_size else (min(b[0] for b in boxes) + max(b[2] for b in boxes))
        h = image_size[1] if image_size else (min(b[1] for b in boxes) + max(b[3] for b in boxes))
        mx, my = (w / 2, h / 2) if image_size else (w / 2, h / 2)
        return int(np.argmin([(c - mx) ** 2 + (d - my) ** 2 for c, d in zip(cx, cy)]))
    return None
