"""What every VLM backend shares (LLaVA through transformers: llava.py; an OpenAI-compatible server:
remote.py), so neither inherits from the other:

- `PROMPT`, `RETRY` and `ANSWER_SCHEMA`: the question, the re-ask and the JSON schema a constrained
  decoder follows, their action words read from the action specs (actions/specs.py);
- `PlanLoop`: ask, parse the answer tolerantly, re-ask once, fall back to the rules parser;
- `VisionLanguageModel`: the protocol the planner and the attention grounder (ground/attention.py)
  see, with `ImageAttention`, what `attention()` answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..core.actions import SPECS
from ..core.errors import InvalidInstructionError, UnsupportedEditError
from ..core.plan import EditPlan, Notice
from ..imaging.geometry import VisionFrame
from .answer import PlanParseError, edits_from_answer
from .rules import RulesParser
from .unknown import plan_the_rest

if TYPE_CHECKING:
    from ..core.plan import Edit
    from ..core.stages import Models

_NAMES = list(SPECS)
_ACTIONS = ", ".join(_NAMES[:-1]) + " or " + _NAMES[-1]  # "recolor, replace, ... or adjust"

# Short on purpose: every output token costs ~7 ms on a 7B model (docs/models.md, "Keep the answer short").
PROMPT = (
    "You plan photo edits. Answer with a JSON list only, one item per edit: [action,target,value,box].\n"
    f"action: {_ACTIONS}. target: the object to edit "
    "(null for the whole photo). value: the new colour, object, scene or style; for adjust one of blur, "
    "pixelate, brighter, darker, more contrast, less contrast, black and white; null for remove. "
    "box: the target's [x0,y0,x1,y1] in percent of the image (0-99), or null if you cannot see it.\n"
    'Example: [["recolor","car","red",[10,40,55,80]]]\n'
    "Instruction: {instruction}"
)
# A session's last edit, for an instruction that may lean on it (conversation.py); put before the
# instruction only when there is one, so the prompt of a standalone edit is the same bytes.
CONTEXT = "Earlier in this session: {context}. Words like it, that or the other one may refer to it.\n"
RETRY = "Your answer could not be used: {error}. Answer again with the JSON only."

_PHRASE = {"type": "string", "pattern": "^[A-Za-z0-9 ,.'&/-]{1,48}$"}
_PERCENT = {"type": "integer", "minimum": 0, "maximum": 99}
# The JSON schema the constrained decoder follows: 1-4 edits of [action, target, value, box].
ANSWER_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "maxItems": 4,
    "items": {
        "type": "array",
        "prefixItems": [
            {"enum": list(SPECS)},
            {"anyOf": [_PHRASE, {"type": "null"}]},
            {"anyOf": [_PHRASE, {"type": "null"}]},
            {
                "anyOf": [
                    {"type": "array", "prefixItems": [_PERCENT] * 4, "items": False, "minItems": 4, "maxItems": 4},
                    {"type": "null"},
                ]
            },
        ],
        "items": False,
        "minItems": 4,
        "maxItems": 4,
    },
}


@dataclass
class ImageAttention:
    """Where a VLM looked while reading a query: one row per image token, in prompt order."""

    weights: np.ndarray  # (N,) float32: attention from the query's tokens, averaged over heads and layers
    centers: np.ndarray  # (N, 2) float32: each token's centre, pixels of the image given (NaN: nowhere)
    cells: np.ndarray  # (N, 2) float32: the size of the patch each token covers, pixels
    groups: np.ndarray  # (N,) int8: which view the token belongs to (overview, tiles)
    layers: list[int]  # the decoder layers read


class VisionLanguageModel(Protocol):
    """A VLM as the planner and the attention grounder use it."""

    constrained: bool

    def ask(self, image: np.ndarray, text: str, constrained: bool | None = None) -> str:
        """The model's answer to `text` about `image`."""
        ...

    def frame(self, image: np.ndarray) -> VisionFrame:
        """The frame the boxes in its answers are fractions of."""
        ...

    def attention(
        self,
        image: np.ndarray,
        text: str,
        query: str,
        layers_of: Callable[[int], list[int]],
        heads: Sequence[int] | None,
    ) -> ImageAttention:
        """Its attention to the image's tokens from the tokens of `query` (a part of `text`).
        A backend that cannot read its attention (a remote server) raises LassoError."""
        ...


class PlanLoop:
    """The planning loop every VLM backend shares: ask, parse the answer tolerantly, re-ask once with
    the error (unless the answer was constrained to the schema), fall back to the rules parser.
    A backend gives `ask(image, text)`, `frame(image)` (the frame its boxes are fractions of) and
    `constrained`. It is both the `vlm` parser and the `vlm` model stage (the parser is the model)."""

    name = "vlm"
    needs = ("vlm",)
    constrained = False
    fallback = RulesParser()

    def ask(self, image: np.ndarray, text: str, constrained: bool | None = None) -> str:
        raise NotImplementedError  # each backend's

    def frame(self, image: np.ndarray) -> VisionFrame:
        raise NotImplementedError  # each backend's

    @classmethod
    def create(cls, models: Models) -> PlanLoop:
        return models("vlm")

    # ------------------------------------------------------------------ the stage
    def parse(
        self, image: np.ndarray, instruction: str, context: str | None = None, skip_unknown: bool = False
    ) -> EditPlan:
        """The VLM's plan. A part Lasso does not do stops the instruction before the VLM is asked
        (UnsupportedEditError), or with `skip_unknown` is left out of what it is asked (unknown.py)."""
        return plan_the_rest(lambda words: self._plan(image, words, context, skip_unknown), instruction, skip_unknown)

    def _plan(self, image: np.ndarray, instruction: str, context: str | None, skip_unknown: bool) -> EditPlan:
        frame = self.frame(image)
        question = PROMPT.format(instruction=instruction.strip())
        if context:
            cut = question.rindex("Instruction: ")
            question = question[:cut] + CONTEXT.format(context=context.strip()) + question[cut:]
        answers: list[str] = []
        error: PlanParseError | None = None
        for attempt in range(2):
            if attempt and self.constrained:  # a constrained answer always parses: asking again cannot help
                break  # (read after the first ask: a server may have refused the schema and answered freely)
            text = self.ask(image, question if attempt == 0 else question + "\n" + RETRY.format(error=error))
            answers.append(text)
            try:
                edits = edits_from_answer(text, frame)
            except PlanParseError as e:
                error = e
                continue
            plan = EditPlan(edits=edits, instruction=instruction, source="vlm", raw_answer=text)
            try:
                check_grounded(edits, instruction)
                return plan
            except PlanParseError as e:
                error = e
                if not reads_as_english(instruction):  # another language: its words can't be matched; warn
                    plan.warnings.append(
                        Notice(
                            f"{e}: check the plan before painting",
                            "plan_unchecked",
                            "Lasso could not check what it understood against your words: read the plan "
                            "before applying it.",
                        )
                    )
                    return plan
                break  # English: the rules parser reads it (below), or nobody does and it is refused
        try:
            plan = self.fallback.parse(image, instruction, skip_unknown=skip_unknown)
        except InvalidInstructionError as refused:  # the VLM's answer unusable and the rules refuse: refuse
            said = f"{refused} (and the VLM's plan was unusable: {str(error).split(';')[0]})"
            if isinstance(refused, UnsupportedEditError):  # still the parts it names
                raise UnsupportedEditError(said, refused.parts) from None
            raise InvalidInstructionError(said) from None
        plan.source = "rules (fallback)"
        plan.raw_answer = answers[-1]
        how = "unusable" if len(answers) == 1 else "unusable twice"
        plan.warnings.insert(
            0,
            Notice(
                f"the VLM's answer was {how} ({str(error).split(';')[0]}); the plan comes from the rules parser",
                "plan_from_words",
                "Lasso could not tell what to change from the picture, so it read your sentence on its own.",
            ),
        )
        return plan


_WORD = re.compile(r"[a-z0-9]+")
_FILLER = {
    "the",
    "and",
    "with",
    "into",
    "make",
    "turn",
    "change",
    "replace",
    "remove",
    "add",
    "put",
    "style",
    "color",
    "colour",
    "background",
    "image",
    "photo",
    "picture",
    "look",
    "like",
    "from",
    "all",
    "its",
}


def _stems(text: str) -> set[str]:
    words = (w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _FILLER)
    return {
        w[:-2] if w.endswith("es") and len(w) > 4 else w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words
    }


# Words nearly every English instruction holds; an instruction with none is in another language,
# whose words a plan in English cannot share (docs/decisions.md, "An unusable plan is never painted").
_ENGLISH = {
    "the",
    "a",
    "an",
    "make",
    "it",
    "to",
    "of",
    "in",
    "on",
    "with",
    "and",
    "turn",
    "change",
    "remove",
    "add",
    "replace",
    "put",
    "please",
    "this",
    "that",
    "my",
    "its",
    "is",
    "more",
    "less",
    "look",
    "like",
    "into",
    "from",
    "get",
    "rid",
    "want",
    "should",
    "be",
    "photo",
    "picture",
    "image",
    "background",
}


def reads_as_english(text: str) -> bool:
    return bool(set(_WORD.findall(text.lower())) & _ENGLISH)


def check_grounded(edits: Sequence[Edit], instruction: str) -> None:
    """Raise PlanParseError when no target or value of the plan shares a word with the instruction.

    A constrained decoder always answers well-formed JSON, even when the model has not understood
    (or, in tests, is random): a plan that names nothing the user wrote is not trusted.
    """
    said = _stems(instruction)
    named = set().union(*(_stems(" ".join(v for v in (e.target, e.value, e.subject) if v)) for e in edits))
    if said and not (named & said):
        raise PlanParseError("the plan names nothing from the instruction; use the instruction's own words")
