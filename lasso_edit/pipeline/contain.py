"""`lasso contain`'s work: another editor's output put back into the original, so that only the
edited region changes. EDITED is aligned on ORIGINAL and its colour drift undone
(imaging/align.py), the region is the mask given or the changes that remain, and the aligned
picture is composited through the Editor (its one compositor: the feather inside the region, the
input's mode, alpha, 16 bits and metadata restored), so every pixel outside the region stays
bit-identical to ORIGINAL.

    result, report = contain("photo.jpg", "their_edit.png")          # the region found
    result, report = contain("photo.jpg", "their_edit.png", mask=m)  # the region given
    write_and_prove(result, Path("out.jpg"))                         # pipeline/outputs.py
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..core.errors import InvalidInputError
from ..core.plan import Action, Correction, Edit, EditPlan
from ..edit.base import ExecSettings
from ..imaging import LoadedImage, load_image
from ..imaging.align import Alignment, align
from ..imaging.arrays import mask_bbox
from .result import EditResult

Source = str | os.PathLike | LoadedImage | np.ndarray


class Laid:
    """The executor `contain` hands the Editor: EDITED laid on ORIGINAL's grid with its colours
    undone, over the region's box; ORIGINAL's own pixels wherever EDITED does not cover it."""

    def __init__(self, alignment: Alignment, edited: np.ndarray):
        self.alignment = alignment
        self.edited = edited

    def execute(self, image: np.ndarray, region: np.ndarray, edit: Edit, settings: ExecSettings) -> np.ndarray:
        out = image.copy()
        window = mask_bbox(region)
        if window is None:
            return out
        x0, y0, x1, y1 = window
        patch, covered = self.alignment.paste(self.edited, window)
        np.copyto(out[y0:y1, x0:x1], patch, where=covered[..., None])
        return out


def contain(original: Source, edited: Source, mask: Source | None = None) -> tuple[EditResult, dict[str, Any]]:
    """ORIGINAL with EDITED's changes inside the region only, and a report: `alignment` (scale,
    shift [dx, dy], rotation, both sizes, residual), `colour` (gain and offset per channel),
    `region_px` and `region_from` ("mask" or "changes"), `warnings`. `mask`: where the edit was
    allowed (bool HxW, or an image read as `lasso verify --mask` reads one: above 0 allowed);
    without one, where EDITED still differs once aligned. Raises InvalidInputError when EDITED is
    not an edit of ORIGINAL, or shows no change from it. The proof comes when the result is written (`write_and_prove`)."""
    from .editor import Editor

    before = original if isinstance(original, LoadedImage) else load_image(original)
    after = edited if isinstance(edited, LoadedImage) else load_image(edited)
    given = _region_of(mask, before.size) if mask is not None else None
    alignment = align(before.rgb, after.rgb, keep=None if given is None else ~given)
    region = given & alignment.covered() if given is not None else alignment.changes()
    if not region.any():
        said = "within the mask" if given is not None else "anywhere"
        raise InvalidInputError(
            f"EDITED shows no change from ORIGINAL {said} once aligned (they differ by {alignment.residual:.1f} "
            "levels, median): nothing to put back"
        )
    editor = Editor({}, models={}, parser="rules", grounder="vlm")
    plan = EditPlan([Edit(Action.REPLACE, target="the region", value="another editor's paint")], source="contain")
    result = editor(before, plan=plan, corrections=Correction(mask=region), executor=Laid(alignment, after.rgb), seed=0)
    # Content Credentials: EDITED is the componentOf ingredient, placed (pipeline/credentials.py)
    result.component = after
    shown = alignment.to_dict()
    report = {
        "alignment": {k: v for k, v in shown.items() if k != "colour"},
        "colour": shown["colour"],
        "region_px": int(region.sum()),
        "region_from": "changes" if given is None else "mask",
        "warnings": list(result.warnings),
    }
    return result, report


def _region_of(mask: Source, size: tuple[int, int]) -> np.ndarray:
    """Where a mask allows the edit (bool HxW): an array above 0, or an image as `lasso verify
    --mask` reads one; it must be ORIGINAL's size."""
    from ..imaging.verify import allowed

    if isinstance(mask, np.ndarray) and mask.ndim == 2:
        m = mask > 0
    else:
        m = allowed(mask if isinstance(mask, LoadedImage) else load_image(mask))
    if m.shape != (size[1], size[0]):
        raise InvalidInputError(f"the mask is {m.shape[1]}x{m.shape[0]}; ORIGINAL is {size[0]}x{size[1]}")
    if not m.any():
        raise InvalidInputError("the mask allows no change anywhere (it is 0 everywhere)")
    return m
