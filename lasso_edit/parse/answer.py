"""Turn a VLM's text into edits, tolerantly: code fences, prose around the JSON, single quotes,
trailing commas, Python literals, a cut-off answer, or no JSON at all (a plain sentence).

Never raises anything but `PlanParseError`, whose message is fed back to the VLM when re-asking.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from ..core.actions import SPECS, spec
from ..core.plan import Action, Box, Edit
from ..imaging.geometry import VisionFrame
from .adjustments import is_adjustment_state
from .phrases import clean_value, split_target

# What a VLM may call each action: its name and its spec's words ("erase" for remove).
ACTION_SYNONYMS = {w: Action(name) for name, how in SPECS.items() for w in (name, *how.words)}


class PlanParseError(ValueError):
    """The answer holds no usable plan. The message says why, for the re-ask."""


# --------------------------------------------------------------------------- JSON extraction
def extract_json(text: str) -> Any:
    """The first JSON object or array in `text`, repaired if need be. Raises PlanParseError."""
    if not text or not text.strip():
        raise PlanParseError("the answer was empty")
    t = text.strip()
    fence = re.search(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", t, re.S)
    if fence and fence.group(1).strip():
        t = fence.group(1).strip()
    starts = [i for i in (t.find("{"), t.find("[")) if i >= 0]
    if not starts:
        raise PlanParseError("the answer holds no JSON object")
    t = t[min(starts) :]
    candidate = _balanced_prefix(t)
    for attempt in (candidate, _repair(candidate)):
        try:
            return json.loads(attempt)
        except (json.JSONDecodeError, ValueError):
            pass
        try:
            return ast.literal_eval(_pythonize(attempt))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    raise PlanParseError("the JSON in the answer could not be read")


def _balanced_prefix(t: str) -> str:
    """Cut at the bracket that closes the first one; if none does, close what is open."""
    stack: list[str] = []
    in_str: str | None = None
    esc = False
    for i, c in enumerate(t):
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == in_str:
                in_str = None
            continue
        if c in "\"'":
            in_str = c
        elif c in "{[":
            stack.append("}" if c == "{" else "]")
        elif c in "}]":
            if stack and stack[-1] == c:
                stack.pop()
                if not stack:
                    return t[: i + 1]
    # Cut off mid-answer: drop a dangling key or comma, close the string and the brackets.
    body = t + (in_str or "")
    body = re.sub(r",\s*$", "", body)
    body = re.sub(r",?\s*(\"[^\"]*\"|'[^']*')\s*:\s*$", "", body)  # a key without its value
    if stack and stack[-1] == "}":
        body = re.sub(r",\s*(\"[^\"]*\"|'[^']*')\s*$", "", body)  # a key cut inside its name
    return body + "".join(reversed(stack))


def _repair(t: str) -> str:
    t = re.sub(r",\s*([}\]])", r"\1", t)  # trailing commas
    t = re.sub(r"(?<=[{,])\s*([A-Za-z_][A-Za-z0-9_]*)\s*:", r'"\1":', t)  # bare keys
    return t


def _pythonize(t: str) -> str:
    t = _repair(t)
    return re.sub(r"\b(true|false|null)\b", lambda m: {"true": "True", "false": "False", "null": "None"}[m.group(1)], t)


# --------------------------------------------------------------------------- validation
def _as_action(v: Any) -> Action:
    if not isinstance(v, str) or not v.strip():
        raise PlanParseError(f"an edit has no action; use one of {', '.join(a.value for a in Action)}")
    key = v.strip().lower().replace("-", "_")
    if key in ACTION_SYNONYMS:
        return ACTION_SYNONYMS[key]
    if key.replace("_", " ") in ACTION_SYNONYMS:
        return ACTION_SYNONYMS[key.replace("_", " ")]
    raise PlanParseError(f"unknown action {v!r}; use one of {', '.join(a.value for a in Action)}")


def _as_box(v: Any, frame: VisionFrame | None) -> Box | None:
    """A box the VLM gave, as XYXY pixels of the original image; None when absent or unusable."""
    if v is None or frame is None:
        return None
    if isinstance(v, dict):
        v = (
            [v.get(k) for k in ("x0", "y0", "x1", "y1")]
            if "x0" in v
            else [v.get(k) for k in ("xmin", "ymin", "xmax", "ymax")]
        )
    if isinstance(v, str):
        v = re.findall(r"-?\d+(?:\.\d+)?", v)
    try:
        nums = [float(x) for x in v]
    except (TypeError, ValueError):
        return None
    if len(nums) != 4 or any(n != n for n in nums):
        return None
    if max(nums) > 1.0:
        if max(nums) <= 1000.0 and min(nums) >= 0:  # per-mille, as several VLMs answer
            nums = [n / 1000.0 for n in nums]
        else:
            return None
    nums = [min(1.0, max(0.0, n)) for n in nums]
    x0, y0, x1, y1 = nums
    if abs(x1 - x0) < 1e-3 or abs(y1 - y0) < 1e-3:
        return None
    box = frame.to_pixels((x0, y0, x1, y1))
    return box if box[2] - box[0] >= 1 and box[3] - box[1] >= 1 else None


def _text(d: dict, *keys: str) -> str | None:
    for k in keys:
        v = d.get(k)
        if isinstance(v, str) and v.strip() and v.strip().lower() not in ("null", "none", "n/a", ""):
            return v.strip()
    return None


def edit_from_dict(d: dict, frame: VisionFrame | None) -> Edit:
    if not isinstance(d, dict):
        raise PlanParseError("each edit must be a JSON object")
    action = _as_action(d.get("action") or d.get("type") or d.get("operation"))
    target = _text(d, "target", "object", "subject", "region")
    value = _text(d, "value", "color", "colour", "new", "replacement", "new_object", "prompt", "style", "with")
    return _READERS[spec(action).answer_form](action, target, value, d, frame)


def _background_edit(action: Action, target: str | None, value: str | None, d: dict, frame: VisionFrame | None) -> Edit:
    """Everything but a subject: the answer's target, unless it says "background", is the subject kept."""
    t = split_target(target).noun if target and target.lower() not in ("background", "the background") else None
    return Edit(
        action=action,
        target="background",
        value=clean_value(value),
        subject=t,
        box=_as_box(d.get("box") or d.get("bbox"), frame),
        prompt=_text(d, "prompt"),
    )


def _whole_edit(action: Action, target: str | None, value: str | None, d: dict, frame: VisionFrame | None) -> Edit:
    """The whole photo; a value that is an adjustment ("black and white") is read as one, as the rules do."""
    if value and is_adjustment_state(value):
        return _adjustment_edit(action, target, value, d, frame)
    return Edit(action=action, target=None, value=clean_value(value), prompt=_text(d, "prompt"))


def _adjustment_edit(action: Action, target: str | None, value: str | None, d: dict, frame: VisionFrame | None) -> Edit:
    from .adjustments import spec_from_words
    from .rules import adjust_edit

    raw = str(d.get("action") or d.get("type") or d.get("operation") or "").replace("_", " ")
    words = value if value and spec_from_words(value) else f"{raw} {value or ''}"  # "brightness" + "+20%"
    edit = adjust_edit(target, words)
    if edit is None:
        raise PlanParseError(
            f"the adjust edit's value {value!r} names no adjustment; say blur, pixelate, brighter, "
            "darker, more or less contrast, exposure, or black and white"
        )
    edit.box = _as_box(d.get("box") or d.get("bbox"), frame) if edit.target else None
    return edit


def _object_edit(action: Action, target: str | None, value: str | None, d: dict, frame: VisionFrame | None) -> Edit:
    """A named object (with its qualifier, relation and "all") and what it becomes."""
    how = spec(action)
    if not target:
        raise PlanParseError(f"the {action.value} edit has no target; name the object to edit")
    if how.needs_value and not how.anchored and not value:
        raise PlanParseError(f"the {action.value} edit of {target!r} has no value; say what it becomes")
    parts = split_target(target)
    qualifier = _text(d, "qualifier", "position", "which") or parts.qualifier
    each = bool(d.get("each")) or (how.anchored and re.search(r"\b(?:each|every)\b", target.lower()) is not None)
    select_all = bool(d.get("all") or d.get("select_all")) or parts.select_all
    return Edit(
        action=action,
        target=parts.noun,
        value=clean_value(value) if how.needs_value else None,
        qualifier=qualifier,
        relation=_text(d, "relation") or parts.relation,
        select_all=select_all,
        box=_as_box(d.get("box") or d.get("bbox"), frame),
        prompt=_text(d, "prompt") if "value" in d else None,
        each=each,
    )


# One reader per ActionSpec.answer_form (actions/spec.py).
_READERS = {
    "object": _object_edit,
    "background": _background_edit,
    "whole": _whole_edit,
    "adjustment": _adjustment_edit,
}


def compact_to_dict(item: list) -> dict:
    """The compact form `[action, target, value, box]` (box in integer percent, or null) as an edit dict."""
    action, target, value, box = (list(item) + [None] * 4)[:4]
    if isinstance(box, (list, tuple)) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box):
        box = [float(v) / 100.0 for v in box]  # percent -> fractions of the frame
    else:
        box = None
    return {"action": action, "target": target, "value": value, "box": box}


def edits_from_answer(text: str, frame: VisionFrame | None = None) -> list[Edit]:
    """Every edit in a VLM answer. Falls back to reading a plain sentence with the rules parser."""
    try:
        data = extract_json(text)
    except PlanParseError as err:
        edits = _edits_from_sentence(text)
        if edits:
            return edits
        raise err
    if isinstance(data, dict):
        items = data.get("edits") if "edits" in data else data.get("plan", [data])
    elif isinstance(data, list):
        items = [data] if data and isinstance(data[0], str) else data  # one compact edit, not nested
        items = [compact_to_dict(d) if isinstance(d, list) else d for d in items]
    else:
        raise PlanParseError("the JSON is neither an object nor a list of edits")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise PlanParseError('the plan has no edits; answer {"edits": [...]}')
    return [edit_from_dict(d, frame) for d in items]


_SENTENCE_PREFIX = re.compile(
    r"^(?:sure|okay|ok|certainly|of course|alright)[,!.]?\s*|^(?:i\s+will|i'll|i\s+would|i\s+can|let\s+me|we\s+(?:will|should))\s+|"
    r"^(?:the\s+(?:user|instruction)\s+(?:wants|asks|is asking)\s+(?:me\s+|us\s+)?to\s+)|^(?:to\s+do\s+this,?\s+)",
    re.I,
)


def _edits_from_sentence(text: str) -> list[Edit]:
    from .rules import parse_instruction  # the rules parser reads plain language

    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text.strip()):
        s = sentence.strip()
        for _ in range(3):
            s = _SENTENCE_PREFIX.sub("", s).strip()
        if not s:
            continue
        try:
            edits, skipped = parse_instruction(s)
        except ValueError:
            continue
        if edits and not skipped:
            return edits
    return []
