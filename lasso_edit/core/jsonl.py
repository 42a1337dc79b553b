"""JSON Lines, read the two ways Lasso needs: a manifest, strictly (a bad line is named), and a
results log, tolerantly (a torn last line from a kill is skipped; the last record of an id wins).
Batch runs, Ray and the evaluation and training data (evaluation/data.py) read theirs through these."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InvalidInputError


def manifest_rows(source: Path) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSONL manifest; InvalidInputError naming
    the line that is not a JSON object."""
    rows = []
    for n, line in enumerate(source.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise InvalidInputError(f"{source.name} line {n} is not JSON") from None
        if not isinstance(row, dict):
            raise InvalidInputError(f"{source.name} line {n}: expected a JSON object with image and instruction")
        rows.append((n, row))
    return rows


def last_by_id(text: str) -> dict[str, dict]:
    """The last line of each id in a results log's text (a torn last line, from a kill, is ignored)."""
    found: dict[str, dict] = {}
    for line in text.splitlines():
        try:
            rec = json.loads(line)
            found[rec["id"]] = rec
        except (ValueError, KeyError, TypeError):
            continue
    return found
