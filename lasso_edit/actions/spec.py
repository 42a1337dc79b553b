"""What an action is, in one place: `ActionSpec`.

The pipeline asks the spec instead of branching on the action: the plan's schema (does it need a
target, a value), the sentence a plan is shown as, how the mask is refined, whether the painter
sees the whole image, whether `strength` applies, which executor runs it and the caption the
painter is given. Specs know an edit only by its fields (`target`, `value`, `subject`, ...), so
this package imports nothing of Lasso's: plan.py and everything above it read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NEGATIVE = "blurry, low quality, distorted, deformed, watermark, text"

# How step 5 (refine.py) turns the segmenter's mask into the region an action paints:
#   tight:   the object's own edge, holes filled, a thin feather (recolour)
#   grown:   dilated by a margin that scales with the object, so no rim survives (remove, replace, add)
#   inverse: everything but the subject, feathered inward so the subject stays bit-identical
#   whole:   the whole image (style)
REFINE_POLICIES = ("tight", "grown", "inverse", "whole")


@dataclass(frozen=True)
class ActionSpec:
    name: str  # Action's value: "recolor", "remove", ...
    needs_target: bool  # the plan must name what it edits
    needs_value: bool  # the plan must say what it becomes
    refine: str  # one of REFINE_POLICIES
    caption: Callable[[Any], tuple[str, str]]  # edit -> (prompt, negative) for a caption-reading painter
    sentence: Callable[[Any, str, str], str]  # (edit, "the car (left)", value) -> "make the car (left) red"
    shadow: bool = False  # the object's cast shadow goes with it (remove)
    whole_crop: bool = False  # the painter sees the whole image, not a crop around the mask
    uses_strength: bool = False  # `strength` (how far from the original) applies
    executor: Callable[[Any, str], str] = lambda edit, recolor_mode: "inpaint"  # (edit, recolor mode) -> name

    def __post_init__(self):
        if self.refine not in REFINE_POLICIES:
            raise ValueError(f"{self.name}: refine must be one of {REFINE_POLICIES}, not {self.refine!r}")
