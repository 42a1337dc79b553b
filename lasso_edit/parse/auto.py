"""`auto` parser: the VLM reads the instruction, and the rules parser fills in what the VLM's
compact answer tends to drop (spatial words, "all") when both read the same edits."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import InvalidInstructionError
from ..core.plan import EditPlan
from .rules import parse_instruction
from .unknown import parse_with, plan_the_rest

if TYPE_CHECKING:
    from ..core.stages import Models
    from .loop import PlanLoop


class AutoParser:
    name = "auto"
    label = "the VLM, spatial words filled in by the rules"
    needs = ("vlm",)

    @classmethod
    def create(cls, models: Models) -> AutoParser:
        return cls(models("vlm"))

    def __init__(self, vlm: PlanLoop) -> None:
        self.vlm = vlm  # a LlavaParser (which itself falls back to the rules parser)

    def parse(
        self, image: np.ndarray, instruction: str, context: str | None = None, skip_unknown: bool = False
    ) -> EditPlan:
        """The VLM's plan, its spatial words filled in by the rules'. A part Lasso does not do stops
        the instruction, or with `skip_unknown` is left out of what the VLM is asked (unknown.py)."""
        return plan_the_rest(lambda words: self._plan(image, words, context, skip_unknown), instruction, skip_unknown)

    def _plan(self, image: np.ndarray, instruction: str, context: str | None, skip_unknown: bool) -> EditPlan:
        plan = parse_with(self.vlm, image, instruction, context, skip_unknown)
        if plan.source != "vlm":
            return plan
        try:
            rules, _ = parse_instruction(instruction)
        except InvalidInstructionError:
            return plan
        if len(rules) == len(plan.edits) and all(r.action == e.action for r, e in zip(rules, plan.edits)):
            for r, e in zip(rules, plan.edits):
                e.qualifier = e.qualifier or r.qualifier
                e.select_all = e.select_all or r.select_all
                e.relation = e.relation or r.relation
        return plan
