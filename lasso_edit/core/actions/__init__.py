"""The actions, one spec each (actions/spec.py): recolor, replace, remove, add, background, style,
adjust. `spec(action)` is what the plan, the parsers (their words, answer forms and phrases),
grounding, refine, the editor, the inpaint executor, the schema and training ask."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import ANSWER_FORMS, NEGATIVE, REFINE_POLICIES, ActionSpec
from .specs import RECOLOR_MODES, SPECS

if TYPE_CHECKING:
    from ..plan import Action

__all__ = ["ANSWER_FORMS", "NEGATIVE", "RECOLOR_MODES", "REFINE_POLICIES", "SPECS", "ActionSpec", "spec"]


def spec(action: Action | str) -> ActionSpec:
    """The spec of an Action (or its value, "recolor")."""
    return SPECS[getattr(action, "value", action)]
