"""A model-free parser for the common phrasings of an edit instruction.

It is the fallback when a VLM's answer is unusable, and the instant path for users who want a
detector and no 7B model (`--parser rules`). It reads imperatives, polite requests ("could you
please..."), several edits joined by "and" / "then" / ";", plurals and "all", spatial words
("the person on the left", "the second car from the right") and relations ("the cat on the
table": the target is the cat), and forgives common typos in the verbs.
"""

from __future__ import annotations

import difflib
import re

from ..colors import is_color
from ..errors import InvalidInstructionError
from ..plan import Action, Edit, EditPlan
from ..registry import PARSERS
from .phrases import clean_value, split_target, strip_determiners

_POLITE_PREFIX = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|so|now|lasso)[,!]?\s+)*"
    r"(?:(?:please|kindly|pls|plz)\s+)?"
    r"(?:(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+|kindly\s+)?|"
    r"(?:i\s+(?:want|need|would like|'d like|wish)|i'd\s+like|i'd\s+love|i\s+would\s+love)\s+(?:you\s+)?to\s+|"
    r"(?:help\s+me|let's|lets|let\s+us|try\s+to|go\s+ahead\s+and|be\s+so\s+kind\s+as\s+to)\s+)?"
    r"(?:please\s+|kindly\s+|just\s+)?"
)
_POLITE_SUFFIX = re.compile(r"(?:[,\s]+(?:please|pls|plz|thanks|thank you|thx|for me|if you can|if possible|now))+$")

_VERBS = [
    "make", "turn", "change", "paint", "color", "colour", "recolor", "recolour", "dye", "tint", "replace", "swap",
    "substitute", "exchange", "remove", "delete", "erase", "eliminate", "get", "take", "add", "put", "place",
    "insert", "give", "draw", "convert", "transform", "render", "apply", "set", "clear", "cut", "wipe", "hide",
    "switch", "transform",
]
_VERB_RE = r"(?:make|turn|change|paint|colou?r|recolou?r|dye|tint|replace|swap|substitute|exchange|remove|delete|" \
           r"erase|eliminate|get\s+rid|take\s+(?:out|away)|add|put|place|insert|give|draw|convert|transform|render|" \
           r"apply|set|clear|cut\s+out|wipe|hide|switch)"
# Where one edit ends and the next begins: a joiner followed by a verb.
_SPLIT = re.compile(rf"(?:\s*[;.]\s*|\s*,\s*(?:and\s+)?(?:then\s+)?(?:also\s+)?|\s+and\s+(?:then\s+)?(?:also\s+)?|\s+then\s+|\s+also\s+)(?=(?:please\s+)?{_VERB_RE}\b)")
_WORD_FIX = {  # frequent misspellings difflib would not reach safely
    "colur": "color", "coulor": "color", "colr": "color", "backround": "background", "backgroud": "background",
    "bakground": "background", "backgorund": "background", "remvoe": "remove", "rmove": "remove",
    "delet": "delete", "replce": "replace", "repalce": "replace", "chnage": "change", "chagne": "change",
    "mkae": "make", "amke": "make", "trun": "turn", "tunr": "turn", "ad": "add", "errase": "erase",
    "teh": "the", "hte": "the", "wiht": "with", "whit": "with", "iwth": "with", "int": "into",
}
_FUZZY_WORDS = sorted(set(_VERBS) | {"background", "into", "with", "color", "colour", "instead"})

_IMAGE = r"(?:image|photo|picture|pic|scene|shot|frame|photograph|it|this)"
_BG = r"(?:background|backdrop|bg|setting|surroundings|scenery)"


def _fix_typos(text: str) -> str:
    words = text.split(" ")
    out = []
    for w in words:
        core = w.strip(",.;:!?")
        fixed = _WORD_FIX.get(core)
        if fixed is None and len(core) >= 5 and core.isalpha() and core not in _FUZZY_WORDS:
            close = difflib.get_close_matches(core, _FUZZY_WORDS, n=1, cutoff=0.84)
            fixed = close[0] if close else None
        out.append(w.replace(core, fixed) if fixed else w)
    return " ".join(out)


def normalize(instruction: str) -> str:
    t = instruction.strip().lower()
    t = t.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    t = re.sub(r"\s+", " ", t).strip(" .!?\"'")
    t = _fix_typos(t)
    t = _POLITE_PREFIX.sub("", t)
    t = _POLITE_SUFFIX.sub("", t).strip(" .!?,")
    return t


def split_clauses(text: str) -> list[str]:
    parts = [p.strip(" ,.;") for p in _SPLIT.split(text)]
    return [_POLITE_PREFIX.sub("", p).strip() for p in parts if p.strip(" ,.;")]


# --------------------------------------------------------------------------- clause patterns
def _edit(action: Action, target: str | None, value: str | None = None, **extra) -> Edit:
    if target is None:
        return Edit(action=action, target=None, value=clean_value(value), **extra)
    t = split_target(re.sub(r"\s+colou?r$", "", target.strip()))
    fields = {"qualifier": t.qualifier, "relation": t.relation, "select_all": t.select_all, **extra}
    return Edit(action=action, target=t.noun, value=clean_value(value), **fields)


def _background(m: re.Match) -> Edit:
    subject = m.groupdict().get("subj")
    return Edit(action=Action.BACKGROUND, target="background", value=clean_value(m.group("v")),
                subject=split_target(subject).noun if subject else None)


def _style(m: re.Match) -> Edit:
    v = m.group("v")
    v = re.sub(r"^(?:look\s+)?(?:like\s+)?(?:it\s+(?:is|was)\s+)?", "", v)
    v = re.sub(r"\s+(?:style|filter|look|effect|version)$", "", v)
    return Edit(action=Action.STYLE, target=None, value=clean_value(v))


def _recolor_or_replace(target: str, value: str) -> Edit:
    value = re.sub(r"\s+(?:colou?r(?:ed)?|paint(?:ed)?|instead)$", "", value.strip())
    if is_color(value):
        return _edit(Action.RECOLOR, target, value)
    return _edit(Action.REPLACE, target, value)


_PATTERNS: list[tuple[re.Pattern, object]] = [
    # --- background
    (rf"^(?:replace|change|swap|switch|set|turn|make|update)\s+(?:the\s+|my\s+|this\s+)?{_BG}(?:\s+of\s+(?:the\s+)?{_IMAGE})?\s+(?:with|to|into|for|by|so\s+(?:it|that\s+it)\s+(?:is|shows))\s+(?P<v>.+)$", _background),
    (rf"^(?:make|turn)\s+(?:the\s+)?{_BG}\s+(?:a|an|into)\s+(?P<v>.+)$", _background),
    (rf"^(?:give|put)\s+(?:it|this|the\s+{_IMAGE}|the\s+(?P<subj>.+?))\s+(?:a|an)\s+(?P<v>.+?)\s+{_BG}$", _background),
    (rf"^(?:new|different)\s+{_BG}\s*[:\-]?\s*(?P<v>.+)$", _background),
    (rf"^{_BG}\s*[:\-]\s*(?P<v>.+)$", _background),
    (rf"^(?:put|place|move|set|show)\s+(?:the|this|my|our|these|those)\s+(?P<subj>.+?)\s+(?:on|in|at|into|onto|inside)\s+(?P<v>(?:a|an|some)\s+.+)$", _background),
    # --- remove
    (r"^(?:remove|delete|erase|eliminate|get\s+rid\s+of|take\s+(?:out|away)|cut\s+out|wipe\s+(?:out|away|off)?|clear(?:\s+away|\s+out)?|hide|drop|lose|ditch)\s+(?P<t>.+?)(?:\s+(?:from|in|out\s+of|off)\s+(?:the\s+|this\s+)?(?:image|photo|picture|pic|scene|shot|frame|photograph))?$",
     lambda m: _edit(Action.REMOVE, m.group("t"))),
    (r"^(?:make\s+)?(?P<t>.+?)\s+(?:disappear|vanish|go\s+away|gone)$", lambda m: _edit(Action.REMOVE, re.sub(r"^make\s+", "", m.group("t")))),
    (r"^(?:i\s+)?(?:don't|do\s+not)\s+want\s+(?P<t>.+?)(?:\s+(?:in|on)\s+(?:the\s+|this\s+)?(?:image|photo|picture))?$", lambda m: _edit(Action.REMOVE, m.group("t"))),
    (r"^(?P<t>.+?)\s+(?:should|must|needs?\s+to)\s+(?:be\s+)?(?:removed|deleted|erased|go|gone)$", lambda m: _edit(Action.REMOVE, m.group("t"))),
    # --- replace
    (r"^(?:replace|substitute|exchange)\s+(?P<t>.+?)\s+(?:with|by|for|using)\s+(?P<v>.+)$", lambda m: _recolor_or_replace_replace(m)),
    (r"^(?:swap|switch|trade)\s+(?:out\s+)?(?P<t>.+?)\s+(?:for|with|to|into)\s+(?P<v>.+)$", lambda m: _recolor_or_replace_replace(m)),
    (r"^(?:put|place|add|draw|paint)\s+(?P<v>.+?)\s+(?:instead\s+of|in\s+place\s+of|where)\s+(?P<t>.+?)(?:\s+(?:is|was|are))?$", lambda m: _edit(Action.REPLACE, m.group("t"), m.group("v"))),
    (r"^(?:change|turn|transform|convert|morph|make)\s+(?P<t>.+?)\s+into\s+(?P<v>.+)$", lambda m: _recolor_or_replace(m.group("t"), m.group("v"))),
    # --- style (before recolour: "make it black and white", "make it look like winter")
    (rf"^(?:make|turn|render|redo|convert|change|transform)\s+(?:it|this|everything|the\s+(?:whole\s+|entire\s+)?{_IMAGE})\s+(?:look\s+)?(?:like\s+|as\s+|into\s+|in\s+|to\s+)?(?:a\s+|an\s+)?(?P<v>.+)$", _style),
    (r"^(?:apply|add|use)\s+(?:a\s+|an\s+)?(?P<v>.+?)\s+(?:style|filter|look|effect|aesthetic)(?:\s+to\s+.+)?$", _style),
    (rf"^(?:in|as|to)\s+(?:the\s+style\s+of\s+|a\s+|an\s+)?(?P<v>.+)$", _style),
    # --- recolour
    (r"^(?:change|set|make|turn|switch)\s+(?:the\s+)?colou?r\s+of\s+(?P<t>.+?)\s+(?:to|into|in)\s+(?P<v>.+)$", lambda m: _recolor_or_replace(m.group("t"), m.group("v"))),
    (r"^(?:change|set|switch)\s+(?P<t>.+?)(?:'s|s')\s+colou?r\s+(?:to|into)\s+(?P<v>.+)$", lambda m: _recolor_or_replace(m.group("t"), m.group("v"))),
    (r"^(?:paint|colou?r|recolou?r|dye|tint|spray|repaint)\s+(?P<t>.+?)\s+(?:in\s+|with\s+|to\s+)?(?P<v>\S+(?:\s+\S+)?)$", lambda m: _paint(m)),
    (r"^(?:make|turn|change|switch|set|get)\s+(?P<t>.+?)\s+(?:to\s+(?:be\s+)?|into\s+|in\s+)?(?:a\s+|an\s+)?(?P<v>\S+(?:\s+\S+){0,2})$", lambda m: _make(m)),
    (r"^(?P<t>.+?)\s+(?:should|must|needs?\s+to)\s+be\s+(?P<v>.+)$", lambda m: _recolor_or_replace(m.group("t"), m.group("v"))),
    (r"^(?:i\s+want|i'd\s+like|i\s+would\s+like)\s+(?P<t>.+?)\s+(?:to\s+be\s+|in\s+)(?P<v>.+)$", lambda m: _recolor_or_replace(m.group("t"), m.group("v"))),
    # --- add
    (r"^(?:add|put|place|insert|draw|paint|include|stick)\s+(?P<v>.+?)\s+(?P<rel>on\s+top\s+of|in\s+front\s+of|next\s+to|on|onto|to|in|into|inside|beside|near|above|below|under|behind|over|at|by|around|in\s+the\s+hands?\s+of)\s+(?P<t>.+)$", lambda m: _add(m)),
    (r"^(?:give)\s+(?P<t>.+?)\s+(?P<v>(?:a|an|some)\s+.+)$", lambda m: _edit(Action.ADD, m.group("t"), m.group("v"), relation="on")),
    (r"^(?:add|insert|draw|include)\s+(?P<v>.+)$", lambda m: _edit(Action.ADD, None, m.group("v"))),
]


def _recolor_or_replace_replace(m: re.Match) -> Edit:
    t, v = m.group("t"), m.group("v")
    if re.fullmatch(rf"(?:the\s+)?{_BG}", t.strip()):
        return Edit(action=Action.BACKGROUND, target="background", value=clean_value(v))
    v2 = re.sub(r"^(?:a|an|the|some)\s+", "", v.strip())
    if is_color(v2) and not re.match(r"^(?:a|an|the|some)\s", v.strip()):
        # "replace the red of the car with blue" is rare; "swap the car to blue" is a recolour.
        return _edit(Action.RECOLOR, t, v2)
    return _edit(Action.REPLACE, t, v)


def _paint(m: re.Match) -> Edit:
    t, v = m.group("t"), m.group("v")
    if is_color(v):
        return _edit(Action.RECOLOR, t, v)
    # "paint the wall in bright red": the colour may be the last 2-3 words.
    words = (t + " " + v).split()
    for n in (3, 2, 1):
        if len(words) > n and is_color(" ".join(words[-n:])):
            tgt = re.sub(r"\s+(?:in|with|to)$", "", " ".join(words[:-n]))
            return _edit(Action.RECOLOR, tgt, " ".join(words[-n:]))
    return _edit(Action.RECOLOR, t, v)


def _make(m: re.Match) -> Edit | None:
    t, v = m.group("t"), m.group("v")
    if re.fullmatch(rf"(?:it|this|everything|the\s+(?:whole\s+|entire\s+)?{_IMAGE})", t):
        return Edit(action=Action.STYLE, target=None, value=clean_value(v))
    if is_color(v):
        return _edit(Action.RECOLOR, t, v)
    # "make the car bright red" where the split put "bright" into the target
    words = (t + " " + v).split()
    for n in (3, 2, 1):
        if len(words) > n and is_color(" ".join(words[-n:])):
            tgt = re.sub(r"\s+(?:to|into|in)(?:\s+be)?$", "", " ".join(words[:-n]))
            return _edit(Action.RECOLOR, tgt, " ".join(words[-n:]))
    if re.match(r"^(?:a|an)\s", m.group(0).split(t, 1)[-1].strip()) or " a " in f" {m.group(0)} ":
        return _edit(Action.REPLACE, t, v)
    return None


def _add(m: re.Match) -> Edit:
    """'add a hat on the man': the target is the anchor, the value the new object."""
    rel = re.sub(r"\s+", " ", m.group("rel"))
    t = split_target(m.group("t"))
    return Edit(action=Action.ADD, target=t.noun, value=clean_value(m.group("v")), qualifier=t.qualifier,
                relation=rel if rel not in ("to", "into") else "in", select_all=t.select_all)


_COMPILED = [(re.compile(p), fn) for p, fn in _PATTERNS]


def parse_clause(clause: str) -> Edit | None:
    for pat, fn in _COMPILED:
        m = pat.match(clause)
        if m:
            edit = fn(m)  # type: ignore[operator]
            if edit is not None and (edit.target or edit.action in (Action.STYLE, Action.ADD)):
                return edit
    return None


def parse_instruction(instruction: str) -> tuple[list[Edit], list[str]]:
    """Turn an instruction into (edits in order, clauses not understood).

    Raises InvalidInstructionError if the instruction is empty or no clause is understood.
    """
    if not instruction or not instruction.strip():
        raise InvalidInstructionError("the instruction is empty: say what to change, e.g. \"make the car red\"")
    text = normalize(instruction)
    edits: list[Edit] = []
    not_understood: list[str] = []  # clauses skipped; reported by the plan as warnings
    for clause in split_clauses(text):
        found = _parse_verbless_list(clause) or [e for e in [parse_clause(clause)] if e is not None]
        if not found:
            e = _continue_previous(clause, edits)
            found = [e] if e is not None else []
        if found:
            edits.extend(found)
        else:
            not_understood.append(clause)
    if not edits:
        raise InvalidInstructionError(
            f"could not understand {instruction.strip()!r}; try e.g. \"make the car red\", \"remove the dog\", "
            "\"replace the background with a beach\""
        )
    return edits, not_understood


def _continue_previous(clause: str, edits: list[Edit]) -> Edit | None:
    """'make the car red and the bike blue': a clause without a verb reuses the previous verb."""
    if not edits:
        return None
    prev = edits[-1]
    words = clause.split()
    if prev.action is Action.RECOLOR and len(words) >= 2:
        for n in (3, 2, 1):
            if len(words) > n and is_color(" ".join(words[-n:])):
                return _edit(Action.RECOLOR, " ".join(words[:-n]), " ".join(words[-n:]))
    if prev.action is Action.REMOVE:
        return _edit(Action.REMOVE, clause)
    return None


def _parse_verbless_list(clause: str) -> list[Edit] | None:
    """'make the car red and the bike blue', 'remove the dog and the cat': one verb, several objects.

    Used only when every piece parses; otherwise the clause is read whole ("black and white").
    """
    pieces = [p for p in re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+", clause) if p]
    if len(pieces) < 2:
        return None
    first = parse_clause(pieces[0])
    if first is None or first.action not in (Action.RECOLOR, Action.REMOVE):
        return None
    edits = [first]
    for p in pieces[1:]:
        e = _continue_previous(p, edits)
        if e is None:
            return None
        edits.append(e)
    return edits


@PARSERS.register("rules")
class RulesParser:
    """Model-free: regular phrasings -> EditPlan. Instant; no image needed."""

    name = "rules"

    def parse(self, image, instruction: str) -> EditPlan:
        edits, skipped = parse_instruction(instruction)
        warnings = [f"did not understand {c!r}; it was left out of the plan" for c in skipped]
        return EditPlan(edits=edits, instruction=instruction, source="rules", warnings=warnings)
