"""`rules-first` parser (the `fast` preset's): the rules parser plans what it can read, and the VLM
is asked only when the rules cannot read the instruction or the plan needs the picture.

A VLM call is most of a fast edit's time on a GPU (issue 17), and most instructions are regular
("remove the car", "make the shirt red", "blur the background"): the rules read them exactly,
at no cost. The VLM is asked when
- the rules cannot read the instruction, or left a clause out;
- a target is a word only the picture can resolve: "it", "this", "that thing", "the distraction",
  "the main subject", "whatever is on the left"... The rules read "make it red" as the whole
  photo; with a VLM at hand, "it" is asked about (`refers_to_picture`).
The plan records which happened: `source` is "rules (rules-first)" or the VLM's own source, and a
plan by rules says the VLM was not asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import InvalidInstructionError
from ..core.plan import EditPlan
from .auto import AutoParser
from .rules import parse_instruction
from .unknown import plan_the_rest

if TYPE_CHECKING:
    from ..core.stages import Models
    from .loop import PlanLoop

# Targets that name no kind of thing: only the picture says what they are.
_NEEDS_PICTURE = re.compile(
    r"^(?:(?:the|a|an|this|that|these|those|some)\s+)?(?:it|this|that|these|those|them|one|ones|thing|things|stuff|"
    r"object|objects|something|anything|everything|whatever|item|items|distraction|distractions|distracting\s+\w+|"
    r"clutter|mess|subject|main\s+subject|focus|problem|issue|ugly\s+\w+|unwanted\s+\w+|weird\s+\w+|odd\s+\w+)$"
)

SOURCE = "rules (rules-first)"


def needs_picture(target: str | None) -> bool:
    """True when an edit's target is a word only the picture can resolve ("it", "the distraction")."""
    if not target:
        return False
    return _NEEDS_PICTURE.match(" ".join(target.lower().split())) is not None


_PRONOUN = re.compile(r"\b(?:it|its|them|they)\b")
_DEICTIC = re.compile(r"\b(?:this|that|these|those)\b(?:\s+(\w+))?")


def refers_to_picture(instruction: str, targets: list[str]) -> bool:
    """True when the words point at something in the picture without naming it: "it", "them", or a
    "this"/"that" whose next word is no target the rules read ("make this red", "remove that")."""
    t = " ".join(instruction.lower().split())
    if _PRONOUN.search(t):
        return True
    named = " ".join(targets).lower().split()
    return any(m.group(1) is None or m.group(1) not in named for m in _DEICTIC.finditer(t))


class RulesFirstParser:
    name = "rules-first"
    label = "the rules; the VLM only when they cannot read it"
    needs = ("vlm",)

    @classmethod
    def create(cls, models: Models) -> RulesFirstParser:
        return cls(lambda: models("vlm"))

    def __init__(self, vlm: Callable[[], PlanLoop]) -> None:
        self._vlm = vlm  # called only when the VLM is asked: a plan by rules loads no VLM

    def parse(
        self, image: np.ndarray, instruction: str, context: str | None = None, skip_unknown: bool = False
    ) -> EditPlan:
        """The rules' plan, or the VLM's when they cannot read it all. A part Lasso does not do stops
        the instruction, or with `skip_unknown` is left out of what is planned (unknown.py)."""
        return plan_the_rest(lambda words: self._plan(image, words, context, skip_unknown), instruction, skip_unknown)

    def _plan(self, image: np.ndarray, instruction: str, context: str | None, skip_unknown: bool) -> EditPlan:
        try:
            edits, skipped = parse_instruction(instruction)
        except InvalidInstructionError:
            edits, skipped = [], [instruction]
        if (
            edits
            and not skipped
            and not any(needs_picture(e.target) for e in edits)
            and not refers_to_picture(instruction, [e.target or "" for e in edits])
        ):
            return EditPlan(edits=edits, instruction=instruction, source=SOURCE, warnings=[])
        return AutoParser(self._vlm()).parse(image, instruction, context, skip_unknown)
