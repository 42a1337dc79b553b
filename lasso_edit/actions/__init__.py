"""The actions, one spec each (actions/spec.py): recolor, replace, remove, add, background, style,
adjust. `spec(action)` is what the plan, refine, the editor, the inpaint executor, the schema and
training ask. The parsers still read actions their own way (parse/rules.py, parse/answer.py):
issue 18's next step."""

from __future__ import annotations

from .spec import NEGATIVE, REFINE_POLICIES, ActionSpec
from .specs import SPECS

__all__ = ["NEGATIVE", "REFINE_POLICIES", "SPECS", "ActionSpec", "spec"]


def spec(action) -> ActionSpec:
    """The spec of an Action (or its value, "recolor")."""
    return SPECS[getattr(action, "value", action)]
