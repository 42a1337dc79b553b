"""The form fields the edit and plan routes take beside the image, as pydantic models (one
definition, not one per route), and what they become: the editor's keyword arguments.

`plan` is the JSON plan a preview answered (checked against plan_schema.py, so the edit paints
what the person saw); `corrections` is JSON, one object or a list of them, each with `points`
[[x, y], ...], `labels` [1 keep / 0 leave out, ...], `box` [x0, y0, x1, y1], `candidate`, and
`edit`, the index of the edit it fixes (default 0).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from ..core.errors import InvalidInputError
from ..core.plan import Correction, EditPlan


class PlanForm(BaseModel):
    """A dry run's fields: what to plan and how."""

    instruction: str = ""
    preset: str | None = None  # one of the presets the server offers (its own when absent)
    parser: str | None = None
    grounder: str | None = None
    plan: str | None = None
    corrections: str | None = None
    # A part of the instruction Lasso cannot do (rotate, upscale, "4K"...): false (default) refuses the
    # whole instruction (422, naming it); true leaves it out with a warning and makes the rest.
    skip_unknown: bool = False

    def options(self) -> dict[str, Any]:
        """The editor's keyword arguments from the fields given (the JSON ones parsed and checked)."""
        given = {
            **{k: getattr(self, k, None) for k in ("seed", "steps", "guidance")},
            "parser": self.parser or None,
            "grounder": self.grounder or None,
            "plan": parse_plan(self.plan),
            "corrections": parse_corrections(self.corrections),
            "skip_unknown": True if self.skip_unknown else None,
        }
        return {k: v for k, v in given.items() if v is not None and v != {}}


class EditForm(PlanForm):
    """An edit's fields: a plan's, and how to paint."""

    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None


def parse_corrections(text: str | None) -> dict[int, Correction]:
    """The `corrections` form field: JSON, one object or a list; each may name its `edit` (default 0)."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInputError(
            "corrections must be JSON: an object with points, labels, box or candidate, or a list of them"
        ) from None
    out: dict[int, Correction] = {}
    for item in data if isinstance(data, list) else [data]:
        edit = item.get("edit", 0) if isinstance(item, dict) else 0
        if isinstance(edit, bool) or not isinstance(edit, int) or edit < 0:
            raise InvalidInputError(f"a correction's edit must be an edit's index (0 = the first), got {edit!r}")
        if edit in out:
            raise InvalidInputError(f"two corrections for edit {edit}; send one with all its points")
        out[edit] = Correction.from_dict(item)
    return out


def parse_plan(text: str | None) -> EditPlan | None:
    """The `plan` form field: a plan as a preview answered it (its `plan` object), to paint what was
    seen; checked against the one plan schema (plan_schema.py)."""
    if not text:
        return None
    from ..parse.schema import plan_from_json

    return plan_from_json(text)
