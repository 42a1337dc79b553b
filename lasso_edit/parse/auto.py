"""`auto` parser: the VLM reads the instruction, and the rules parser fills in what the VLM's
compact answer tends to drop (spatial words, "all") when both read the same edits."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInstructionError
from ..plan import EditPlan
from .rules import parse_instruction


class AutoParser:
    name = "auto"
    label = "the VLM, spatial words filled in by the rules"
    needs = ("vlm",)

    @classmethod
    def create(cls, models) -> AutoParser:
        return cls(models("vlm"))

    def __init__(self, vlm):
        self.vlm = vlm  # a LlavaParser (which itself falls back to the rules parser)

    def parse(self, image: np.ndarray, instruction: str, context: str | None = None) -> EditPlan:
        plan = self.vlm.parse(image, instruction, context) if context else self.vlm.parse(image, instruction)
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
