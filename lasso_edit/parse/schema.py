"""The one schema a plan from outside must pass: JSON from the HTTP API and EditPlans from the Python
API are both checked here (pydantic), before any work, and turned into InvalidInputError (HTTP 422,
exit code 2) with a sentence naming the field: an edit with no action, a target missing where the
action needs one, a value that is not text, a strength outside (0, 1], a box that is not four finite
numbers of sane size, more edits than one instruction may hold.

    plan = plan_from_json(text)        # the API's `plan` field
    check_plan_dict(plan.to_dict())    # an EditPlan given to Editor.__call__ (inputs.check_plan)
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..core.actions import spec
from ..core.errors import InvalidInputError, InvalidInstructionError
from ..core.plan import Action, EditPlan
from .adjustments import parse_spec
from .limits import MAX_EDITS, MAX_INSTRUCTION_CHARS, check_edit_count

MAX_COORD = 1e6  # pixels: far beyond any image Lasso opens (150 MP), far below what overflows a float
Text = Optional[Annotated[str, Field(max_length=MAX_INSTRUCTION_CHARS)]]
NEEDS_TARGET = {a for a in Action if spec(a).needs_target}  # actions/specs.py: ADD's target is its optional anchor


class EditSchema(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # strict: "abc" is no number, 1 no text

    action: Action
    target: Text = None
    value: Text = None
    qualifier: Text = None
    relation: Text = None
    select_all: bool = False
    subject: Text = None
    box: Optional[Annotated[list[float], Field(min_length=4, max_length=4)]] = None
    avoid: Optional[Annotated[list[float], Field(min_length=4, max_length=4)]] = None  # "the other one"
    prompt: Text = None
    negative_prompt: Text = None
    strength: Optional[float] = None
    each: bool = False

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, v: Any) -> Action:
        try:
            return Action(v)
        except (ValueError, TypeError):
            raise ValueError(f"unknown action {v!r}; one of: {', '.join(a.value for a in Action)}") from None

    @field_validator("box", "avoid", mode="before")
    @classmethod
    def _box(cls, v: Any) -> Any:
        if v is None:
            return v
        if (
            not isinstance(v, (list, tuple))
            or len(v) != 4
            or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v)
        ):
            raise ValueError(f"must be four numbers [x0, y0, x1, y1] in pixels, got {v!r}")
        if not all(math.isfinite(x) and abs(x) <= MAX_COORD for x in v):
            raise ValueError(f"must be pixels within ±{MAX_COORD:.0e}, got {list(v)!r}")
        return [float(x) for x in v]

    @field_validator("strength", mode="before")
    @classmethod
    def _strength(cls, v: Any) -> Any:
        if v is None:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 < v <= 1:
            raise ValueError(f"must be a number in (0, 1], got {v!r}")
        return float(v)

    @model_validator(mode="after")
    def _needs(self) -> EditSchema:
        if self.action in NEEDS_TARGET and not (self.target or "").strip():
            raise ValueError(f"a {self.action.value} edit needs a target (what to {self.action.value})")
        how = spec(self.action)
        if how.needs_value and not how.value_optional and not (self.value or "").strip():
            raise ValueError(f"a {self.action.value} edit needs a value (the new colour, object or look)")
        if how.value_kind == "adjustment":
            try:
                parse_spec(self.value)
            except InvalidInstructionError as e:
                raise ValueError(str(e)) from None
        return self


class WarningSchema(BaseModel):
    """One of a plan's `warning_details` (plan.Notice.to_dict)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    code: Annotated[str, Field(max_length=50)] = "note"
    text: Annotated[str, Field(max_length=2000)] = ""
    plain: Optional[Annotated[str, Field(max_length=2000)]] = None
    edit: Optional[int] = None


class PlanSchema(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    edits: Annotated[list[EditSchema], Field(min_length=1, max_length=MAX_EDITS)]
    instruction: Annotated[str, Field(max_length=MAX_INSTRUCTION_CHARS)] = ""
    source: Annotated[str, Field(max_length=100)] = ""
    warnings: Annotated[list[Annotated[str, Field(max_length=2000)]], Field(max_length=50)] = []
    warning_details: Annotated[list[WarningSchema], Field(max_length=50)] = []
    raw_answer: Optional[Annotated[str, Field(max_length=100_000)]] = None


_TYPES = {
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "float_type": "must be a number",
    "int_type": "must be a whole number",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "missing": "is missing",
    "string_too_long": "is too long",
    "too_long": "has too many items",
    "too_short": "is empty",
}


def _sentence(e: ValidationError) -> str:
    """The first problem pydantic found, as Lasso says things: "plan: edit 1: value must be text, got {...}"."""
    err = e.errors()[0]
    loc = list(err.get("loc", ()))
    where = ["plan"]
    if loc[:1] == ["edits"] and len(loc) > 1 and isinstance(loc[1], int):
        where.append(f"edit {loc[1] + 1}")
        loc = loc[2:]
    field = " ".join(str(x) for x in loc if not isinstance(x, int))
    kind = err.get("type", "")
    if kind in _TYPES:
        msg = f"{field} {_TYPES[kind]}".strip()
        if kind.endswith("_type"):
            msg += f", got {err.get('input')!r}"[:120]
    else:  # our own validators' sentences (the field is named in them where it helps)
        said = err.get("msg", "is not valid").removeprefix("Value error, ")
        msg = said if said.startswith("unknown action") else f"{field} {said}".strip()
    return ": ".join(where + [msg])


def check_plan_dict(data: Any) -> PlanSchema:
    """`data` checked against the plan schema; InvalidInputError with a sentence otherwise."""
    if not isinstance(data, dict):
        raise InvalidInputError("plan must be an object with a non-empty list of edits")
    if isinstance(data.get("edits"), list):
        check_edit_count(len(data["edits"]))  # the instruction's own limit, in its words
    try:
        return PlanSchema.model_validate(data)
    except ValidationError as e:
        raise InvalidInputError(_sentence(e)) from None


def plan_from_json(text: str) -> EditPlan:
    """The API's `plan` field (the `plan` object a preview answered) as a checked EditPlan."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise InvalidInputError("plan is nested too deeply to be a plan") from None
    except ValueError:
        raise InvalidInputError("plan must be JSON: the `plan` object a preview answered") from None
    checked = check_plan_dict(data)
    return EditPlan.from_dict(checked.model_dump())
