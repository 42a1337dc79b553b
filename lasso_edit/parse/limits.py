"""Limits on what one instruction may ask, checked before any model loads (issue 6).

A 100,000-character instruction once became 2,779 edits and ran them all; the rules parser's
regular expressions are also not all linear, so the length is capped before they see it.
"""

from __future__ import annotations

import unicodedata

from ..core.errors import InvalidInstructionError

MAX_INSTRUCTION_CHARS = 2000  # a long paragraph; plans are a few clauses
MAX_EDITS = 8  # edits in one instruction; each one repaints the image


def excerpt(text: str, limit: int = 60) -> str:
    """`text` quoted for an error message, cut to `limit` characters with an ellipsis."""
    t = " ".join(str(text).split())
    return repr(t if len(t) <= limit else t[: limit - 1] + "…")


def has_words(text: str) -> bool:
    """Whether `text` holds a letter or a digit: spaces, zero-width and other invisible characters
    (Unicode categories Z and C) and punctuation alone say nothing to edit."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)


def check_instruction(instruction: object) -> str:
    """The instruction, if it is a non-empty string within MAX_INSTRUCTION_CHARS; else InvalidInstructionError."""
    if isinstance(instruction, bytes):
        raise InvalidInstructionError("the instruction must be text (str), not bytes: decode it first")
    if not isinstance(instruction, str) or not has_words(instruction):
        raise InvalidInstructionError('the instruction is empty: say what to change, e.g. "make the car red"')
    try:
        instruction.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800"): no tokenizer or file takes it
        raise InvalidInstructionError(
            "the instruction holds a character that is not text (a lone UTF-16 surrogate): send it as UTF-8"
        ) from None
    if len(instruction) > MAX_INSTRUCTION_CHARS:
        raise InvalidInstructionError(
            f"the instruction is {len(instruction):,} characters; Lasso reads at most {MAX_INSTRUCTION_CHARS:,}: "
            f"say what to change in a few clauses ({excerpt(instruction)})"
        )
    return instruction


def check_edit_count(n: int) -> None:
    if n > MAX_EDITS:
        raise InvalidInstructionError(
            f"the instruction asks for {n} edits; one instruction may hold at most {MAX_EDITS}: split it into "
            "several runs"
        )
