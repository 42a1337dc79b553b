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

# How a VLM's answer for the action is read (parse/answer.py keeps one reader per form):
#   object:     a target (with its qualifier, relation, "all") and a value
#   background: everything but a subject; the answer's target, if any, is the subject kept
#   whole:      the whole photo; a value that is an adjustment ("black and white") is read as one
#   adjustment: a deterministic filter and its amount (adjustments.py)
ANSWER_FORMS = ("object", "background", "whole", "adjustment")


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
    # --- how plans name it
    words: tuple[str, ...] = ()  # what a VLM may call it in an answer ("erase" for remove); the name always counts
    answer_form: str = "object"  # one of ANSWER_FORMS
    value_kind: str = "text"  # "text", or "adjustment": the schema checks the value is one (adjustments.py)
    value_optional: bool = False  # a plan from outside may leave the value out (style: its prompt says it)
    anchored: bool = False  # the target is an anchor the new thing goes near, not what is painted (add)
    mask_as: Callable[[Any], str] | None = None  # edit -> the action whose grounding and mask it takes (adjust)
    # --- how the rules parser reads it (parse/rules.py): the seven built-in actions' English
    # grammar lives in the parser; a new action brings its verbs and its phrases here
    verbs: tuple[str, ...] = ()  # verbs that start a clause ("retexture"): an instruction splits before them
    phrases: tuple[str, ...] = ()  # regexes over a normalised clause, with groups `t` (target) and `v` (value)
    strips_old_colour: bool = False  # "the dress from red to blue": the old colour is not part of the target
    list_continues: str | None = None  # "make the car red, the bike blue": "colour" or "object" follow-ons
    follow_on: bool = False  # "make the road wet and the sky stormy": a noun phrase after it is its own edit

    def __post_init__(self) -> None:
        if self.refine not in REFINE_POLICIES:
            raise ValueError(f"{self.name}: refine must be one of {REFINE_POLICIES}, not {self.refine!r}")
        if self.answer_form not in ANSWER_FORMS:
            raise ValueError(f"{self.name}: answer_form must be one of {ANSWER_FORMS}, not {self.answer_form!r}")
        if self.value_kind not in ("text", "adjustment"):
            raise ValueError(f"{self.name}: value_kind must be 'text' or 'adjustment', not {self.value_kind!r}")
        if self.list_continues not in (None, "colour", "object"):
            raise ValueError(f"{self.name}: list_continues must be None, 'colour' or 'object'")
