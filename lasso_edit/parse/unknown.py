"""A part of an instruction Lasso does not do, whichever parser plans (issue 28 #15).

"rotate the photo 90 degrees and make it 4K" once exited 0: the rotation was dropped with a warning
and "4K" became a restyle of the whole photo. Now the rules read every clause first (rules.py
`read_instruction`), and a part Lasso does not do (rotate, crop, upscale, "4K", sharpen...) stops
the instruction before any model is asked: `UnsupportedEditError` names it, with what Lasso does
instead. Asked to skip such parts (`skip_unknown`), the parser plans the rest only, so a VLM never
sees "4K" to restyle, and the plan's warnings say what was left out.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ..core.plan import EditPlan
from .rules import left_out_notices, read_instruction, refusal


def set_aside(instruction: str, skip_unknown: bool) -> tuple[str | None, list[str]]:
    """(the words to plan, the warnings of what was left out). Without `skip_unknown`, a part Lasso
    does not do raises UnsupportedEditError naming it; with it, the words are the instruction's other
    clauses (None when there are none) and each part left out has its warning."""
    reading = read_instruction(instruction)
    unsupported = [p for p in reading.left_out if p in reading.why]
    if not unsupported:
        return instruction, []
    if not skip_unknown:
        raise refusal(instruction, reading, unsupported, rest=bool(reading.kept))
    return "; ".join(reading.kept) or None, left_out_notices(instruction, reading, unsupported)


def plan_the_rest(plan: Callable[[str], EditPlan], instruction: str, skip_unknown: bool) -> EditPlan:
    """`plan(words)` of what Lasso may do in `instruction` (set_aside), as the plan of the instruction:
    its own words, and first among its warnings what was left out. Nothing left: a plan of no edit."""
    asked, left_out = set_aside(instruction, skip_unknown)
    if asked is None:
        return EditPlan(edits=[], instruction=instruction, source="rules", warnings=left_out)
    made = plan(asked)
    made.instruction = instruction
    made.warnings[:0] = left_out
    return made


def parse_with(
    parser: Any, image: Any, instruction: str, context: str | None = None, skip_unknown: bool = False
) -> EditPlan:
    """`parser.parse(image, instruction)` with the keywords it takes: `context` when there is one,
    `skip_unknown` when asked. A parser of one's own that takes neither plans as it always did."""
    takes = inspect.signature(parser.parse).parameters
    options: dict[str, Any] = {}
    if context and "context" in takes:
        options["context"] = context
    if skip_unknown and "skip_unknown" in takes:
        options["skip_unknown"] = True
    return parser.parse(image, instruction, **options)
