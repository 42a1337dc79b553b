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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.actions import SPECS, spec
from ..core.errors import InvalidInstructionError, UnsupportedEditError
from ..core.plan import Action, Edit, EditPlan, Notice
from ..imaging.colors import is_color
from .adjustments import STATE as ADJUST_STATE
from .limits import check_edit_count, check_instruction, excerpt
from .phrases import DETERMINERS, clean_value, split_target

if TYPE_CHECKING:
    import numpy as np

    from ..core.stages import Models

_POLITE_PREFIX = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|so|now|lasso)[,!]?\s+)*"
    r"(?:(?:please|kindly|pls|plz)\s+)?"
    r"(?:(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+|kindly\s+)?|"
    r"(?:i'd\s+love\s+it|it\s+would\s+be\s+(?:great|nice|cool|awesome))\s+if\s+(?:you|u)\s+(?:could\s+|would\s+)?|"
    r"(?:i\s+(?:want|need|would like|'d like|wish)|i'd\s+like|i'd\s+love|i\s+would\s+love)\s+(?:you\s+)?to\s+|"
    r"(?:help\s+me|let's|lets|let\s+us|try\s+to|go\s+ahead\s+and|be\s+so\s+kind\s+as\s+to)\s+)?"
    r"(?:please\s+|kindly\s+|just\s+)?"
)
# (?<!...): tried from the first character of a run of commas and spaces only, not from each one
_POLITE_SUFFIX = re.compile(
    r"(?<![,\s])(?:[,\s]+(?:please|pls|plz|thanks|thank you|thx|for me|if you can|if possible|now))+$"
)

# The seven built-in actions' English is this module's grammar; an action added since brings its
# verbs and phrases in its spec (actions/spec.py), read here.
_SPEC_VERBS = [v for how in SPECS.values() for v in how.verbs]
_VERBS = [
    "make",
    "turn",
    "change",
    "paint",
    "color",
    "colour",
    "recolor",
    "recolour",
    "dye",
    "tint",
    "replace",
    "swap",
    "substitute",
    "exchange",
    "remove",
    "delete",
    "erase",
    "eliminate",
    "get",
    "take",
    "add",
    "put",
    "place",
    "insert",
    "give",
    "draw",
    "convert",
    "transform",
    "render",
    "apply",
    "set",
    "clear",
    "cut",
    "wipe",
    "hide",
    "switch",
    "pixelate",
    "brighten",
    "darken",
    "desaturate",
    *_SPEC_VERBS,
]
_VERB_RE = (
    r"(?:make|turn|change|paint|colou?r|recolou?r|dye|tint|replace|swap|substitute|exchange|remove|delete|"
    r"erase|eliminate|get\s+rid|take\s+(?:out|away)|add|put|place|insert|give|draw|convert|transform|render|"
    r"apply|set|clear|cut\s+out|wipe|hide|switch|blur|pixel+ate|pixeli[sz]e|censor|anonymi[sz]e|brighten|"
    r"lighten|darken|desaturate|saturate|increase|decrease|boost|reduce"
    + "".join("|" + re.escape(v) for v in _SPEC_VERBS)
    + ")"
)
# Where one edit ends and the next begins: a joiner followed by a verb.
_SPLIT = re.compile(
    rf"(?:\s*[;.]\s*(?:then\s+|and\s+)?|\s*,\s*(?:and\s+)?(?:then\s+)?(?:also\s+)?|\s+and\s+(?:then\s+)?(?:also\s+)?|\s+then\s+|\s+also\s+)(?=(?:please\s+)?{_VERB_RE}\b)"
)
_WORD_FIX = {  # frequent misspellings difflib would not reach safely
    "colur": "color",
    "coulor": "color",
    "colr": "color",
    "backround": "background",
    "backgroud": "background",
    "bakground": "background",
    "backgorund": "background",
    "remvoe": "remove",
    "rmove": "remove",
    "delet": "delete",
    "replce": "replace",
    "repalce": "replace",
    "chnage": "change",
    "chagne": "change",
    "mkae": "make",
    "amke": "make",
    "trun": "turn",
    "tunr": "turn",
    "errase": "erase",
    "teh": "the",
    "hte": "the",
    "wiht": "with",
    "whit": "with",
    "iwth": "with",
    "int": "into",
}
_FUZZY_WORDS = sorted(set(_VERBS) | {"background", "into", "with", "color", "colour", "instead"})
_NOT_TYPOS = {
    "bright",
    "brighter",
    "lighter",
    "darker",
    "blurry",
    "blurred",
    "brightness",
    "brightly",
}  # near a verb, but words

_IMAGE = r"(?:image|photo|picture|pic|scene|shot|frame|photograph|it|this)"
_BG = r"(?:background|backdrop|bg|setting|surroundings|scenery)"


def _inflected(word: str) -> bool:
    """'removed', 'taken', 'colors': a known word with an ending, not a typo."""
    for suffix in ("d", "ed", "n", "en", "s", "es", "ing", "r", "er"):
        if word.endswith(suffix) and (
            word[: -len(suffix)] in _FUZZY_WORDS or word[: -len(suffix)] + "e" in _FUZZY_WORDS
        ):
            return True
    return False


def _fix_typos(text: str) -> str:
    words = text.split(" ")
    out = []
    for w in words:
        core = w.strip(",.;:!?")
        fixed = _WORD_FIX.get(core)
        if (
            fixed is None
            and len(core) >= 5
            and core.isalpha()
            and core not in _FUZZY_WORDS
            and core not in _NOT_TYPOS
            and not _inflected(core)
        ):
            close = difflib.get_close_matches(core, _FUZZY_WORDS, n=1, cutoff=0.84)
            fixed = close[0] if close else None
        out.append(w.replace(core, fixed) if fixed else w)
    return " ".join(out)


def normalize(instruction: str) -> str:
    t = re.sub(r"(?<!\s)[^\S\r\n]*[\r\n]\s*", ". ", instruction.strip()).lower()  # a line break ends a clause
    t = t.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    t = re.sub(r"\s+", " ", t).strip(" .!?\"'")
    t = _fix_typos(t)
    t = re.sub(
        r"\b(?:made|turned|changed|removed|replaced)\b(?=\s+(?:the|it|this|my|her|his|all|every))",
        lambda m: {"made": "make", "turned": "turn", "changed": "change", "removed": "remove", "replaced": "replace"}[
            m.group(0)
        ],
        t,
    )
    t = _POLITE_PREFIX.sub("", t)
    t = _POLITE_SUFFIX.sub("", t).strip(" .!?,")
    t = _SPATIAL_POSSESSIVE.sub(lambda m: f"the {m['sp']} {m['owner']}'s {m['thing']}", t)
    return t


_SEQUENCE = re.compile(r"^(?:(?:first(?:ly)?|then|next|also|and|finally|lastly|after\s+that|afterwards)[,]?\s+)+")


def split_clauses(text: str) -> list[str]:
    parts = [p.strip(" ,.;") for p in _SPLIT.split(_SEQUENCE.sub("", text))]
    return [_POLITE_PREFIX.sub("", _SEQUENCE.sub("", p)).strip() for p in parts if p.strip(" ,.;")]


# --------------------------------------------------------------------------- clause patterns
def _edit(action: Action, target: str | None, value: str | None = None, **extra: Any) -> Edit:
    if target is None:
        return Edit(action=action, target=None, value=clean_value(value), **extra)
    target = re.sub(r"\s+colou?r$", "", target.strip())
    if spec(action).strips_old_colour:  # "the dress from red to blue": the old colour is not part of the target
        target = re.sub(
            r"\s+from\s+(?:\S+\s+){0,2}\S+$", lambda m: "" if is_color(m.group(0)[6:]) else m.group(0), target
        )
    t = split_target(target)
    fields = {"qualifier": t.qualifier, "relation": t.relation, "select_all": t.select_all, **extra}
    return Edit(action=action, target=t.noun, value=clean_value(value), **fields)


def _background(m: re.Match) -> Edit:
    subject = m.groupdict().get("subj")
    return Edit(
        action=Action.BACKGROUND,
        target="background",
        value=clean_value(m.group("v")),
        subject=split_target(subject).noun if subject else None,
    )


def _style_value(v: str) -> str | None:
    v = re.sub(r"^(?:look\s+)?(?:like\s+)?(?:it\s+(?:is|was)\s+)?", "", v)
    v = re.sub(r"\s+(?:style|filter|look|effect|version)$", "", v)
    return clean_value(v)


def _style(m: re.Match) -> Edit:
    return Edit(action=Action.STYLE, target=None, value=_style_value(m.group("v")))


def _recolor_or_replace(target: str, value: str) -> Edit:
    if re.fullmatch(
        rf"(?:it|this|everything|(?:(?:the|this|my|our)\s+)?(?:whole\s+|entire\s+)?{_IMAGE})", target.strip()
    ):
        return Edit(action=Action.STYLE, target=None, value=_style_value(value))
    value = re.sub(r"\s+(?:colou?r(?:ed)?|paint(?:ed)?|instead)$", "", value.strip())
    value = re.sub(r"^(?:painted|colou?red|dyed|tinted)\s+(?:in\s+)?(?=\S)", "", value)  # "were painted red"
    if is_color(value):
        return _edit(Action.RECOLOR, target, value)
    return _edit(Action.REPLACE, target, value)


_ADJUST_VERB = (
    r"(?:blur(?:\s+out)?|pixel+ate|pixeli[sz]e|censor|anonymi[sz]e|mosaic|defocus|brighten(?:\s+up)?|"
    r"lighten(?:\s+up)?|darken|desaturate|saturate)"
)
_ADJUST_KIND = r"(?:contrast|exposure|brightness|(?:colou?r\s+)?saturation|vibrance)"
_ADJUST_STATE = ADJUST_STATE
_AMOUNT = (
    r"(?:by\s+)?(?:[+-]?\d+(?:\.\d+)?\s*(?:%|percent|px|pixels?|ev|stops?)?|slightly|a\s+(?:bit|little|lot|touch|tad)|"
    r"strongly|heavily|completely|fully|subtly|somewhat|much|way|more|less|a\s+little\s+bit)"
)
_AMOUNT_WORDS = rf"(?:\s+{_AMOUNT})+$"
_ONE_AMOUNT = re.compile(_AMOUNT)


def _without_amounts(target: str) -> str:
    """`target` without the amounts it ends with ("the sky by 20% slightly" -> "the sky"; its first
    word stays), unit by unit from the end: a search for the run (`_AMOUNT_WORDS`) started again at
    each of its units, quadratic in them."""
    words = target.split()
    while True:
        n = next((n for n in (4, 3, 2, 1) if n < len(words) and _ONE_AMOUNT.fullmatch(" ".join(words[-n:]))), 0)
        if not n:
            return " ".join(words)
        del words[-n:]


def adjust_edit(target: str | None, words: str) -> Edit | None:
    """An adjustment of the image (target None or an image word), the background, or an object."""
    from .adjustments import spec_from_words

    value = spec_from_words(words)
    if value is None:
        return None
    t = _without_amounts((target or "").strip())
    t = re.sub(r"^(?:up|out)\s+|\s+(?:up|out)$", "", t)
    image_words = rf"(?:{_IMAGE}|colou?rs?|(?:colou?rs?|tones?)\s+(?:of|in)\s+(?:the\s+)?{_IMAGE})"
    if not t or re.fullmatch(
        rf"(?:it|this|everything|all|(?:(?:the|this|my|our)\s+)?(?:whole\s+|entire\s+)?{image_words})", t
    ):
        return Edit(action=Action.ADJUST, target=None, value=value)
    bg = re.fullmatch(rf"(?:the\s+|my\s+|this\s+)?{_BG}(?:\s+(?:behind|around)\s+(?P<s>.+))?", t)
    if bg:
        subject = split_target(bg.group("s")).noun if bg.group("s") else None
        return Edit(action=Action.ADJUST, target="background", value=value, subject=subject)
    return _edit(Action.ADJUST, t, value)


def _adjust_state(m: re.Match) -> Edit | None:
    """'make the photo black and white', 'make the background blurry'. Lighter and darker of an
    object stay recolours ("make the car darker" keeps its hue; the recolour executor does that)."""
    t, v = m.group("t"), m.group("v")
    edit = adjust_edit(t, v)
    if (
        edit is not None
        and edit.target not in (None, "background")
        and re.fullmatch(r"(?:brighter|darker|lighter|dimmer)", v.strip())
    ):
        return None
    return edit


_PATTERNS: list[tuple[str, Callable[[re.Match], Edit | None]]] = [
    # --- adjust: deterministic filters (before remove, style and recolour, which would misread them)
    (rf"^{_ADJUST_VERB}(?:\s+(?P<t>.+))?$", lambda m: adjust_edit(m.group("t"), m.group(0))),
    (
        rf"^(?:increase|boost|raise|reduce|decrease|lower|add|adjust|bump\s+up|up|turn\s+(?:up|down)|tone\s+down|"
        rf"more|less|fix)\s+(?:the\s+|some\s+|(?:a\s+(?:bit|little)\s+|much\s+)?(?:more|less)\s+)?{_ADJUST_KIND}(?:\s+(?:of|in|on|for)\s+(?P<t>.+))?(?:{_AMOUNT_WORDS[:-1]})?$",
        lambda m: adjust_edit(m.group("t"), m.group(0)),
    ),
    (
        rf"^(?:make|turn|render|convert|change|set|switch|get)\s+(?P<t>.+?)\s+(?:to\s+|into\s+|in\s+)?"
        rf"(?P<v>(?:a\s+bit\s+|slightly\s+|much\s+|a\s+lot\s+|way\s+)?{_ADJUST_STATE})$",
        _adjust_state,
    ),
    (
        r"^(?:add|apply|give|use)\s+(?:a\s+|an\s+|some\s+)?(?P<v>(?:gaussian\s+|strong\s+|slight\s+|light\s+|heavy\s+|"
        r"soft\s+)?(?:blur|pixelation|mosaic|black\s+and\s+white))(?:\s+(?:effect|filter))?(?:\s+(?:to|on|for)\s+(?P<t>.+))?$",
        lambda m: adjust_edit(m.group("t"), m.group("v")),
    ),
    (
        r"^(?:give)\s+(?P<t>.+?)\s+(?:a\s+|some\s+)?(?P<v>(?:gaussian\s+|strong\s+|slight\s+)?(?:blur|pixelation))$",
        lambda m: adjust_edit(m.group("t"), m.group("v")),
    ),
    (
        r"^(?:remove|drain|strip|take\s+out)\s+(?:the\s+|all\s+(?:the\s+)?)?colou?rs?(?:\s+(?:from|of|in)\s+(?P<t>.+))?$",
        lambda m: adjust_edit(m.group("t"), "black and white"),
    ),
    (
        rf"^(?P<v>{_ADJUST_STATE}|black\s+and\s+white)(?:\s+(?:the\s+)?(?P<t>.+))?$",
        lambda m: adjust_edit(m.group("t"), m.group("v")),
    ),
    # --- a person (him, her, the man) put somewhere: a background edit that keeps them
    (
        r"^(?:put|place|move|set|show|take|transport|teleport)\s+(?P<subj>him|her|them|me|us|myself|"
        r"(?:the|this|my|our)\s+.+?)\s+(?P<rel>in\s+front\s+of|in|at|on|by|next\s+to|near|under|beneath|before|into|onto|inside)\s+"
        r"(?P<v>.+)$",
        lambda m: _person_somewhere(m),
    ),
    # --- "look" styles: "give it a vintage film look", "a cinematic feel"
    (
        rf"^(?:give|add)\s+(?:it|this|everything|(?:the\s+|this\s+|my\s+)?(?:whole\s+|entire\s+)?{_IMAGE})\s+(?:a\s+|an\s+|some\s+)?"
        rf"(?P<v>.+?)\s+(?:look|feel|vibe|style|aesthetic|tone|mood|atmosphere|treatment|effect|filter|finish)$",
        _style,
    ),
    (r"^(?:a|an)\s+(?P<v>.+?)\s+(?:look|feel|vibe|style|aesthetic|effect|filter)$", _style),
    (
        r"^(?:let|have)\s+(?P<t>.+?)\s+(?:be|become|turn|look)\s+(?P<v>.+)$",
        lambda m: _recolor_or_replace(m.group("t"), m.group("v")),
    ),
    # --- "X instead of Y": X replaces Y
    (
        r"^(?:i\s+want|i'd\s+like|i\s+would\s+like|give\s+me|let's\s+have|show|use|have|put)?\s*(?P<v>(?:a|an|some|the)\s+.+?)\s+"
        r"(?:instead\s+of|in\s+place\s+of|rather\s+than)\s+(?P<t>.+)$",
        lambda m: _edit(Action.REPLACE, m.group("t"), m.group("v")),
    ),
    # --- background
    (
        rf"^(?:replace|change|swap|switch|set|turn|make|update)\s+(?:the\s+|my\s+|this\s+)?{_BG}(?:\s+of\s+(?:the\s+)?{_IMAGE})?\s+(?:with|to|into|for|by|so\s+(?:it|that\s+it)\s+(?:is|shows))\s+(?P<v>.+)$",
        _background,
    ),
    (rf"^(?:make|turn)\s+(?:the\s+)?{_BG}\s+(?:a|an|into)\s+(?P<v>.+)$", _background),
    (
        rf"^(?=.*\s{_BG}$)(?:give|put)\s+(?:it|this|the\s+{_IMAGE}|the\s+(?P<subj>.+?))\s+(?:a|an)\s+(?P<v>.+?)\s+{_BG}$",
        _background,
    ),
    (rf"^(?:new|different)\s+{_BG}\s*[:\-]?\s*(?P<v>.+)$", _background),
    (rf"^{_BG}\s*[:\-]\s*(?P<v>.+)$", _background),
    (
        r"^(?:put|place|move|set|show)\s+(?:the|this|my|our|these|those)\s+(?P<subj>.+?)\s+(?:on|in|at|into|onto|inside)\s+(?P<v>(?:a|an|some)\s+.+)$",
        _background,
    ),
    # --- remove
    (
        r"^(?:remove|delete|erase|eliminate|get\s+rid\s+of|take\s+(?:out|away)|cut\s+out|wipe\s+(?:out|away|off)?|clear(?:\s+away|\s+out)?|hide|drop|lose|ditch)\s+(?P<t>.+?)(?:\s+(?:from|in|out\s+of|off)\s+(?:the\s+|this\s+)?(?:image|photo|picture|pic|scene|shot|frame|photograph))?$",
        lambda m: _edit(Action.REMOVE, m.group("t")),
    ),
    (
        r"^(?:make\s+)?(?P<t>.+?)\s+(?:disappear|vanish|go\s+away|gone)$",
        lambda m: _edit(Action.REMOVE, re.sub(r"^make\s+", "", m.group("t"))),
    ),
    (
        r"^(?:i\s+)?(?:don't|do\s+not)\s+want\s+(?P<t>.+?)(?:\s+(?:in|on)\s+(?:the\s+|this\s+)?(?:image|photo|picture))?$",
        lambda m: _edit(Action.REMOVE, m.group("t")),
    ),
    (
        r"^(?P<t>.+?)\s+(?:should|must|needs?\s+to)\s+(?:be\s+)?(?:removed|deleted|erased|go|gone)$",
        lambda m: _edit(Action.REMOVE, m.group("t")),
    ),
    # --- replace
    (r"^(?:replace|substitute|exchange)\s+(?P<t>.+?)\s+(?:with|by|for|using)\s+(?P<v>.+)$", lambda m: _replace_with(m)),
    (r"^(?:swap|switch|trade)\s+(?:out\s+)?(?P<t>.+?)\s+(?:for|with|to|into)\s+(?P<v>.+)$", lambda m: _replace_with(m)),
    (
        r"^(?:put|place|add|draw|paint)\s+(?P<v>.+?)\s+(?:instead\s+of|in\s+place\s+of|where)\s+(?P<t>.+?)(?:\s+(?:is|was|are))?$",
        lambda m: _edit(Action.REPLACE, m.group("t"), m.group("v")),
    ),
    (
        r"^(?:change|turn|transform|convert|morph|make)\s+(?P<t>.+?)\s+into\s+(?P<v>.+)$",
        lambda m: _recolor_or_replace(m.group("t"), m.group("v")),
    ),
    (
        r"^(?:convert|transform|morph)\s+(?P<t>.+?)\s+to\s+(?P<v>.+)$",
        lambda m: _recolor_or_replace(m.group("t"), m.group("v")),
    ),
    (
        r"^(?:make|let)\s+(?P<t>.+?)\s+(?:wear|hold|have)\s+(?P<v>.+)$",
        lambda m: _edit(Action.ADD, m.group("t"), m.group("v"), relation="on"),
    ),
    (r"^(?:make)\s+(?P<t>.+?)\s+look\s+like\s+(?P<v>.+)$", lambda m: _recolor_or_replace(m.group("t"), m.group("v"))),
    (
        r"^(?:change|set|switch|turn|make)\s+(?:the\s+)?(?:season|weather|time\s+of\s+(?:the\s+)?day|mood|lighting)\s+(?:to|into)\s+(?P<v>.+)$",
        _style,
    ),
    # --- style (before recolour: "make it black and white", "make it look like winter")
    (
        rf"^(?:make|turn|render|redo|convert|change|transform)\s+(?:it|this|everything|(?:the|this|my|our)\s+(?:whole\s+|entire\s+)?{_IMAGE})\s+(?:look\s+)?(?:like\s+|as\s+|into\s+|in\s+|to\s+)?(?:a\s+|an\s+)?(?P<v>.+)$",
        _style,
    ),
    (
        r"^(?:apply|add|use)\s+(?:a\s+|an\s+)?(?P<v>.+?)\s+(?:style|filter|look|effect|aesthetic)(?:\s+to\s+.+)?$",
        _style,
    ),
    (r"^(?:in|as|to)\s+(?:the\s+style\s+of\s+|a\s+|an\s+)?(?P<v>.+)$", _style),
    # --- recolour
    (
        r"^(?:change|set|make|turn|switch)\s+(?:the\s+)?colou?r\s+of\s+(?P<t>.+?)\s+(?:to|into|in)\s+(?P<v>.+)$",
        lambda m: _recolor_or_replace(m.group("t"), m.group("v")),
    ),
    (
        r"^(?:change|set|switch)\s+(?P<t>.+?)(?:'s|s')\s+colou?r\s+(?:to|into)\s+(?P<v>.+)$",
        lambda m: _recolor_or_replace(m.group("t"), m.group("v")),
    ),
    (
        r"^(?P<verb>paint|colou?r|recolou?r|dye|tint|spray|repaint)\s+(?P<t>.+?)\s+(?:in\s+|with\s+|to\s+)?(?P<v>\S+(?:\s+\S+)?)$",
        lambda m: _paint(m),
    ),
    (
        r"^(?P<verb>make|turn|change|switch|set|get)\s+(?P<t>.+?)\s+(?:to\s+(?:be\s+)?|into\s+|in\s+)?(?:a\s+|an\s+)?(?P<v>\S+(?:\s+\S+){0,2})$",
        lambda m: _make(m),
    ),
    (
        r"^(?P<t>.+?)\s+(?:should|must|needs?\s+to)\s+be\s+(?P<v>.+)$",
        lambda m: _recolor_or_replace(m.group("t"), m.group("v")),
    ),
    (
        r"^(?:i\s+want|i'd\s+like|i\s+would\s+like)\s+(?P<t>.+?)\s+(?:to\s+be\s+|in\s+)(?P<v>.+)$",
        lambda m: _recolor_or_replace(m.group("t"), m.group("v")),
    ),
    # --- add
    (
        r"^(?:add|put|place|insert|draw|paint|include|stick)\s+(?P<v>.+?)\s+(?P<rel>on\s+top\s+of|in\s+front\s+of|next\s+to|on|onto|to|in|into|inside|beside|near|above|below|under|behind|over|at|by|around|in\s+the\s+hands?\s+of)\s+(?P<t>.+)$",
        lambda m: _add(m),
    ),
    (
        r"^(?:give)\s+(?P<t>.+?)\s+(?P<v>(?:a|an|some)\s+.+)$",
        lambda m: _edit(Action.ADD, m.group("t"), m.group("v"), relation="on"),
    ),
    (r"^(?:add|insert|draw|include)\s+(?P<v>.+)$", lambda m: _edit(Action.ADD, None, m.group("v"))),
    # --- shorthand: "car -> red", "car: red", "let the sky be purple"
    (
        r"^(?P<t>[^:>=\u2192]+?)\s*(?:->|=>|\u2192|:|=)\s*(?P<v>[^:>=\u2192]+)$",
        lambda m: _recolor_or_replace(m.group("t"), m.group("v")),
    ),
]


_PERSON_PRONOUN = {"him": "man", "her": "woman", "me": "person", "myself": "person", "them": "people", "us": "people"}


def _person_somewhere(m: re.Match) -> Edit | None:
    """'put him in front of the eiffel tower', 'place the dog on a beach': keep the subject, repaint
    the rest. A definite thing put on a definite thing ('put the vase on the table') is not this."""
    subj, rel, v = m.group("subj"), re.sub(r"\s+", " ", m.group("rel")), m.group("v").strip()
    pronoun = subj in _PERSON_PRONOUN
    if not pronoun and rel != "in front of" and not re.match(r"^(?:a|an|some)\s", v):
        return None
    subject = _PERSON_PRONOUN[subj] if pronoun else split_target(subj).noun
    value = f"{v}" if rel in ("in", "at", "on", "into", "onto", "inside") else f"{rel} {v}"
    return Edit(action=Action.BACKGROUND, target="background", value=clean_value(value), subject=subject)


def _replace_with(m: re.Match) -> Edit:
    t, v = m.group("t"), m.group("v")
    if re.fullmatch(rf"(?:the\s+)?{_BG}", t.strip()):
        return Edit(action=Action.BACKGROUND, target="background", value=clean_value(v))
    v2 = re.sub(r"^(?:a|an|the|some)\s+", "", v.strip())
    if is_color(v2) and not re.match(r"^(?:a|an|the|some)\s", v.strip()):
        # "replace the red of the car with blue" is rare; "swap the car to blue" is a recolour.
        return _edit(Action.RECOLOR, t, v2)
    return _edit(Action.REPLACE, t, v)


def _names_something(words: list[str]) -> bool:
    """Whether the words before a colour name a thing: "the sky blue" is the sky, blue, not "the",
    sky blue (the longest colour phrase is taken only when a noun is left)."""
    return re.fullmatch(rf"(?:{DETERMINERS}\s*)*", " ".join(words)) is None


def _split_color_suffix(body: str) -> tuple[str, str] | None:
    """'the car bright red' -> ('the car', 'bright red'): the longest colour phrase at the end."""
    body = re.sub(r"\s+(?:colou?r(?:ed)?|paint(?:ed)?|instead)$", "", body.strip())
    words = body.split()
    for n in (4, 3, 2, 1):
        if (
            len(words) > n
            and words[-n] not in ("in", "to", "into", "with", "a", "of", "be")
            and _names_something(words[:-n])
            and is_color(" ".join(words[-n:]))
        ):
            target = re.sub(r"\s+(?:to|into|in|with)(?:\s+be)?$", "", " ".join(words[:-n]))
            return target, " ".join(w for w in words[-n:] if w not in ("colored", "coloured"))
    return None


def _body(m: re.Match) -> str:
    """The clause after its verb (the patterns that call this name the verb group)."""
    return m.string[m.end("verb") :].strip()


def _paint(m: re.Match) -> Edit:
    found = _split_color_suffix(_body(m))
    if found:
        return _edit(Action.RECOLOR, *found)
    return _edit(Action.RECOLOR, m.group("t"), m.group("v"))


# Patterns and materials: "make the shirt striped" repaints the shirt as a striped shirt.
_SURFACE = (
    r"(?:striped|stripy|polka[\s-]?dott?(?:ed)?|dotted|spotted|checkered|chequered|checked|plaid|tartan|floral|"
    r"flowery|paisley|camo(?:uflage)?|leopard[\s-]print|zebra[\s-]print|tie[\s-]dyed?|wooden|wood|metal|metallic|"
    r"steel|chrome|glass|leather|denim|velvet|silk(?:y|en)?|woo(?:l|len|llen)|knitted|marble|stone|brick|concrete|"
    r"plastic|rubber|furry|fluffy|rusty|shiny|glossy|matte|transparent|glittery|sparkly|sequined|crystal|ceramic|"
    r"porcelain|bamboo|wicker|straw|paper|cardboard|icy|frozen|neon|"
    # states and looks an inpainter paints: "make the road wet", "make the sky dramatic"
    r"wet|dry|snowy|snow[\s-]covered|muddy|dirty|clean|dusty|rainy|cloudy|stormy|sunny|foggy|misty|hazy|"
    r"dramatic|moody|gloomy|old|older|new|newer|broken|cracked|burnt|burning|on\s+fire|flooded|overgrown|"
    r"smiling|happy|sad|angry|surprised|sleeping|wrinkled|shaggy|bald|bearded|fancy|modern|vintage|antique)"
)


def _surface(target: str, body_value: str) -> Edit | None:
    """'the table' + 'wooden' (or 'made of marble') -> replace the table with a wooden (marble) table."""
    v = re.sub(r"^(?:made\s+(?:out\s+)?of|out\s+of|of)\s+", "", body_value.strip())
    made_of = v != body_value.strip()
    if not (re.fullmatch(rf"(?:{_SURFACE}(?:\s+and\s+{_SURFACE})?)", v) or made_of):
        return None
    t = split_target(target)
    value = f"{t.noun} made of {v}" if made_of else f"{v} {t.noun}"
    return _edit(Action.REPLACE, target, value)


def _make(m: re.Match) -> Edit | None:
    body = _body(m)
    surface = re.match(
        rf"^(?P<t>.+?)\s+(?:look\s+)?(?P<v>(?:made\s+(?:out\s+)?of|out\s+of)\s+.+|{_SURFACE}(?:\s+and\s+{_SURFACE})?)$",
        body,
    )
    if (
        surface
        and not re.match(rf"^(?:it|this|everything|the\s+{_IMAGE})$", surface.group("t"))
        and not re.search(r"\s+and\s+(?:the|a|an|this|that|my|his|her|their)\s", surface.group("t"))
    ):
        found_surface = _surface(surface.group("t"), surface.group("v"))
        if found_surface is not None:
            return found_surface
    target_is_image = re.match(
        rf"^(?:it|this|everything|(?:the|this|my|our)\s+(?:whole\s+|entire\s+)?{_IMAGE})\s", body + " "
    )
    found = _split_color_suffix(body)
    if target_is_image:
        return Edit(action=Action.STYLE, target=None, value=clean_value(m.group("v")))
    if found:
        return _edit(Action.RECOLOR, *found)
    # "make the dog a lion": an article before the new thing
    parts = re.split(r"\s+(?:(?:to\s+be|into)\s+)?(?:a|an)\s+", body, maxsplit=1)
    if len(parts) == 2 and parts[0].strip():
        return _edit(Action.REPLACE, parts[0], parts[1])
    return None


def _add(m: re.Match) -> Edit:
    """'add a hat on the man': the target is the anchor, the value the new object."""
    rel = re.sub(r"\s+", " ", m.group("rel"))
    t = split_target(m.group("t"))
    each = re.search(r"\b(?:each|every|all)\b", m.group("t")) is not None  # else one by the group: "next to the bags"
    return Edit(
        action=Action.ADD,
        target=t.noun,
        value=clean_value(m.group("v")),
        qualifier=t.qualifier,
        relation=rel if rel not in ("to", "into") else "in",
        select_all=t.select_all,
        each=each,
    )


def _phrase(action: Action) -> Callable[[re.Match[str]], Edit]:
    """The builder of an edit a spec's phrase matched: its `t` group the target, its `v` the value."""
    return lambda m: _edit(action, m.groupdict().get("t"), m.groupdict().get("v"))


# The specs' phrases first: an action added since names itself with verbs the grammar below lacks.
_COMPILED = [(re.compile(p), _phrase(Action(name))) for name, how in SPECS.items() for p in how.phrases] + [
    (re.compile(p), fn) for p, fn in _PATTERNS
]


# How people say an edit without its verb (issue 16 #19, classes from MagicBrush-style phrasings),
# each rewritten into a phrasing the patterns above read; tried only when the clause itself is not
# understood, so no reading the patterns already give changes.
_OWNER = r"(?:the|this|that|these|those|my|our|his|her|their|its)"
_IF = (
    r"(?:what\s+if|imagine(?:\s+if)?|suppose|picture|how\s+about\s+if|what\s+would\s+it\s+look\s+like\s+if|"
    r"(?:wouldn't|would\s+not)\s+it\s+be\s+\w+\s+if|it\s+would\s+be\s+\w+\s+if|i\s+wish)"
)
_REPHRASE = [
    # hypotheticals: "what if the bus was yellow", "imagine the kite were a bird", "what if there was a boat"
    (rf"^{_IF}\s+there\s+(?:was|were|is|are|'s)\s+(?P<rest>.+)$", "add {rest}"),
    (
        rf"^{_IF}\s+(?P<t>.+?)\s+(?:had|wore|was\s+wearing|were\s+wearing|held|was\s+holding)\s+(?P<v>.+)$",
        "let {t} have {v}",
    ),
    (
        rf"^{_IF}\s+(?P<t>.+?)\s+(?:was|were|is|are|became|turned\s+into|turned|looked\s+like|could\s+be|would\s+be)"
        r"\s+(?P<v>.+)$",
        "let {t} be {v}",
    ),
    # needs and wants: "the dog needs a collar", "the table could use some flowers"
    (
        rf"^(?P<t>{_OWNER}\s+.+?)\s+(?:needs|wants|could\s+use|should\s+have|must\s+have|deserves|is\s+missing|"
        rf"lacks|would\s+look\s+better\s+with|looks\s+empty\s+without)\s+(?P<v>.+)$",
        "let {t} have {v}",
    ),
    # "no more clouds", "no cars", "without the fence", "enough of the trash", "away with the sign"
    (
        r"^(?:no\s+more|without|enough(?:\s+of)?|away\s+with|lose|bye\s+bye|goodbye(?:\s+to)?)\s+"
        r"(?P<t>(?!(?:idea|way|problem|thanks|need|matter|clue|worries|doubt|longer)\b)"
        r"(?!\b(?:what|how|why|when|where|who|to)\b)[a-z'-]+(?:\s+(?!\b(?:what|how|why|when|where|who|to)\b)[a-z'-]+){0,4}\s*)$",
        "remove {t}",
    ),
    # a bare "no" only before things in the plural ("no clouds", "no people in the background"):
    # "no idea", "no json here" are not requests
    (
        r"^no\s+(?P<t>(?:[a-z'-]+\s+){0,2}(?:[a-z'-]+[^s\s]s|people|children)(?:\s+(?:in|on|at|from|near|by)\s+"
        r"(?:the|this|that|my)\s+[a-z'\s-]+)?)$",
        "remove {t}",
    ),
    # preferences: "i'd prefer the curtains in beige", "i'd rather have the car blue", "i'd like a hat on the man"
    (
        rf"^(?:i'd|i\s+would|we'd|we\s+would|i|we)\s+(?:prefer|rather\s+have|rather|like|love|want)\s+"
        rf"(?P<t>{_OWNER}\s+.+?)\s+(?:in|to\s+be|as|being|be|were|was|painted|colou?red)\s+(?P<v>.+)$",
        "let {t} be {v}",
    ),
    (rf"^(?:i'd|i\s+would|we'd|we\s+would|i|we)\s+(?:prefer|rather\s+have)\s+(?P<t>{_OWNER}\s+.+)$", "make {t}"),
    (
        r"^(?:i'd|i\s+would|we'd|we\s+would|i|we)\s+(?:like|love|want|prefer)\s+(?:to\s+see\s+|to\s+have\s+)?"
        r"(?P<rest>(?:a|an|some|more)\s+.+)$",
        "add {rest}",
    ),
    (rf"^(?:can|could)\s+(?P<t>{_OWNER}\s+.+?)\s+(?:be|become|look)\s+(?P<v>.+)$", "let {t} be {v}"),
    # modal verbs: "the kite ought to be a bird", "the wall has to be white", "the sofa would look better in green"
    (
        r"^(?P<t>.+?)\s+(?:ought\s+to|should|must|has\s+to|have\s+to|needs?\s+to|had\s+better|could|might|would|will)"
        r"\s+(?:be|become|turn\s+into|look\s+like|turn)\s+(?P<v>.+)$",
        "let {t} be {v}",
    ),
    (
        r"^(?P<t>.+?)\s+(?:would|will|might|could)\s+look\s+(?:better|nicer|good|great|best)\s+(?:in\s+|as\s+)?(?P<v>.+)$",
        "let {t} be {v}",
    ),
    # a follow-on with no verb of its own ("... and the bus yellow", "then the sky purple"): make
    (rf"^(?P<t>{_OWNER}\s+.+)$", "make {t}"),
]
# "the man on the right's jacket": the possessive after a spatial word, said as "the right man's jacket"
# (how "the man's jacket" and "the right man" already read)
_SPATIAL_POSSESSIVE = re.compile(
    r"\bthe\s+(?P<owner>[a-z-]+(?:\s+[a-z-]+)?)\s+(?:on|to|at|in)\s+the\s+(?P<sp>(?:far\s+)?"
    r"(?:left|right|middle|center|centre|top|bottom|back|front))'s\s+(?P<thing>[a-z-]+)"
)


def _rephrased(clause: str) -> list[str]:
    out = []
    for pat, template in _REPHRASE_COMPILED:
        m = pat.match(clause)
        if m:
            out.append(template.format(**m.groupdict()))
    return out


_REPHRASE_COMPILED = [(re.compile(p), t) for p, t in _REPHRASE]


def parse_clause(clause: str) -> Edit | None:
    edit = _parse_clause(clause)
    if edit is None:
        for again in _rephrased(clause):
            edit = _parse_clause(again)
            if edit is not None:
                break
    return edit


def _parse_clause(clause: str) -> Edit | None:
    old = re.match(r"^(?P<c>.+?),?\s+(?:instead\s+of|rather\s+than|not)\s+(?:the\s+)?(?P<old>[\w\s-]{1,60})$", clause)
    if old and is_color(old.group("old")):  # "make the car blue instead of red": red is what it was
        clause = old.group("c")
    for pat, fn in _COMPILED:
        m = pat.match(clause)
        if m:
            edit = fn(m)
            if edit is not None and (edit.target or not spec(edit.action).needs_target):
                return edit
    return None


@dataclass
class Reading:
    """What the rules read in an instruction: the edits, and the parts left out of them."""

    edits: list[Edit]
    left_out: list[str] = field(default_factory=list)  # parts not in the plan, in order (normalized words)
    why: dict[str, str] = field(default_factory=dict)  # of those, each one Lasso does not do -> why not
    kept: list[str] = field(default_factory=list)  # the clauses that ask for nothing Lasso does not do

    def refused(self) -> list[str]:
        """The parts that stop the instruction unless the user asks to skip them: what Lasso does not
        do, and what asks for something the rules could not read ("sing a song"); a remark ("i love
        this photo", "the lamp is ugly") asks for nothing and is only said."""
        return [p for p in self.left_out if p in self.why or not _REMARK.match(p)]


def read_instruction(instruction: str) -> Reading:
    """The edits the rules read in an instruction and what they left out, each part Lasso does not
    do (rotate, crop, upscale, "make it 4K", sharpen...) with why. An unsupported part is never read
    as an edit ("make it 4K" is no restyle). Raises InvalidInstructionError only for an instruction no
    edit would take (empty, bytes, too long); one with no edit in it reads as no edits."""
    check_instruction(instruction)
    text = normalize(instruction)
    edits: list[Edit] = []
    not_understood: list[str] = []  # clauses skipped; reported by the plan as warnings
    why: dict[str, str] = {}
    kept: list[str] = []
    antecedent: tuple[str, str] | None = None  # (clause, noun phrase) a later "it" may refer to
    for said in split_clauses(text):
        clause = said
        if antecedent is not None and _PRONOUN.search(clause):
            clause = _PRONOUN.sub(antecedent[1], clause, count=1)  # "the lamp is ugly, get rid of it"
            not_understood.remove(antecedent[0])  # it was context, not a lost edit
            antecedent = None
        reason = why_not(clause)
        listed = _parse_verbless_list(clause) if reason is None else None
        if reason is not None:
            found: list[Edit] = []
        elif listed is not None:
            found, rest = listed
            not_understood.extend(rest)
            why.update({p: w for p in rest if (w := why_not(p))})
        else:
            found = [e for e in [parse_clause(clause)] if e is not None]
        if not found and reason is None:
            e = _continue_previous(clause, edits)
            found = [e] if e is not None else []
        reason = reason or next((w for e in found if (w := _why_not_edit(e))), None)
        if found and reason is None:
            edits.extend(found)
            set_aside = [p for p in listed[1] if p in why] if listed is not None else []
            kept.append(_without(said, set_aside))
        else:
            not_understood.append(clause)
            if reason is not None:
                why[clause] = reason
            else:
                kept.append(said)
                noun = _described(clause)
                antecedent = (clause, noun) if noun else antecedent
    return Reading(edits, not_understood, why, kept)


def parse_instruction(instruction: str) -> tuple[list[Edit], list[str]]:
    """Turn an instruction into (edits in order, clauses not understood).

    Raises InvalidInstructionError if the instruction is empty or no clause is understood
    (UnsupportedEditError, naming them, when a clause is one Lasso does not do).
    """
    reading = read_instruction(instruction)
    if not reading.edits:
        raise refusal(instruction, reading, reading.refused()) if reading.why else _not_understood(instruction)
    check_edit_count(len(reading.edits))
    return reading.edits, reading.left_out


def _not_understood(instruction: str) -> InvalidInstructionError:
    return InvalidInstructionError(
        f'could not understand {excerpt(instruction)}; try e.g. "make the car red", "remove the dog", '
        '"replace the background with a beach", "blur the background"'
    )


def why_not(part: str) -> str | None:
    """Why Lasso does not make what a part of an instruction (normalized words) asks, or None: a
    change of geometry ("rotate the photo", "crop it"), a restoration ("sharpen", "upscale", "increase
    the resolution", "4K"), moving an object."""
    part = _SEQUENCE.sub("", part)
    first = part.split(" ", 1)[0]
    if first in _UNSUPPORTED:
        return _UNSUPPORTED[first]
    if _RESOLUTION.match(part):
        return _RESTORE
    return None


def _why_not_edit(edit: Edit) -> str | None:
    """Why an edit the patterns read is not one: a value that is a resolution or a size ("make it 4K",
    "make the photo higher resolution", "make it sharper", "make it bigger") is no style or object."""
    value = edit.value or ""
    if _RESOLUTION_VALUE.fullmatch(value):
        return _RESTORE
    if _SIZE_VALUE.fullmatch(value):
        return _GEOMETRY
    return None


def _without(clause: str, parts: list[str]) -> str:
    """`clause` with the pieces of its list that were set aside taken out ("remove the dog and rotate it")."""
    for p in parts:
        clause = re.sub(rf"(?:\s*,\s*(?:and\s+)?|\s+and\s+)?(?:then\s+)?{re.escape(p)}", "", clause, count=1)
    return clause.strip(" ,")


def _in_their_words(instruction: str, part: str) -> str:
    """`part` (normalized, lower case) as the instruction wrote it ("make it 4K"), where it can be found."""
    low = instruction.lower()
    i = low.find(part)
    return instruction[i : i + len(part)] if i >= 0 and len(low) == len(instruction) else part


def left_out_notices(instruction: str, reading: Reading, parts: list[str]) -> list[str]:
    """The warnings of the parts left out of a plan: what Lasso does not do, and what it did not understand."""
    out: list[str] = []
    for c in parts:
        if c in reading.why:
            words = _in_their_words(instruction, _SEQUENCE.sub("", c))
            out.append(
                Notice(
                    f"{words!r} was left out: it is not an edit Lasso makes ({reading.why[c]})",
                    "not_supported",
                    f"Lasso cannot do {words!r}, so it left that part out, as you asked.",
                )
            )
        else:
            out.append(
                Notice(
                    f"did not understand {c!r}; it was left out of the plan",
                    "not_understood",
                    f"Lasso did not understand {c!r}, so it left that part out.",
                )
            )
    return out


_CAN = (
    "It recolours, replaces, removes and adds objects, changes the background or the style, and adjusts a "
    "region or the photo: blur, pixelate, brighten or darken, contrast, exposure, black and white"
)


def refusal(instruction: str, reading: Reading, parts: list[str], rest: bool | None = None) -> UnsupportedEditError:
    """The error that stops an instruction with `parts` Lasso cannot do: each named, in the user's
    words, with why, then what Lasso does; where there is a rest to make (`rest`; default: the rules
    read an edit), how to ask for it."""
    said = []
    for p in parts:
        if p in reading.why:
            first = _SEQUENCE.sub("", p).split(" ", 1)[0]
            what = first if first in _UNSUPPORTED else _SEQUENCE.sub("", p)
            said.append(f"{_in_their_words(instruction, what)!r} is not an edit Lasso makes ({reading.why[p]})")
        else:
            said.append(f"Lasso did not understand {_in_their_words(instruction, p)!r}")
    message = "; ".join(said) + ". " + _CAN
    if bool(reading.edits) if rest is None else rest:
        them = "that part" if len(parts) == 1 else "those parts"
        message = (
            f"nothing was done: {message}. To make the rest and leave {them} out, pass --skip-unknown "
            "(skip_unknown=True in Python and the HTTP API)"
        )
    return UnsupportedEditError(message, [_in_their_words(instruction, p) for p in parts])


_PRONOUN = re.compile(r"\b(?:it|them|him|her|they|this\s+one|that\s+one)\b")
_DESCRIBED = re.compile(
    r"^(?:(?:there(?:'s|\s+is|\s+are)|i\s+(?:see|have|hate|dislike|don't\s+like|do\s+not\s+like)|see|look\s+at|notice)\s+)?"
    r"(?P<np>(?:the|a|an|this|that|these|those|my|our|his|her|their)\s+[a-z][a-z\s-]*?)"
    r"(?:\s+(?:is|are|was|were|looks?|seems?|has|have)\b.*|\?)?$"
)


def _described(clause: str) -> str | None:
    """The thing a clause that is not an edit talks about, as a phrase a pronoun can stand for:
    'the lamp is ugly' -> 'the lamp'; "there's a cat on the sofa" -> 'the cat'; 'the cups' -> 'all the cup'."""
    m = _DESCRIBED.match(clause)
    if not m:
        return None
    t = split_target(m.group("np"))
    if t.noun == "object":
        return None
    return f"{'all the' if t.select_all else 'the'} {t.noun}"


_GEOMETRY = "geometry is for an image editor: Lasso keeps the photo's size and framing"
_RESTORE = "a restoration or upscaling tool does that"
_UNSUPPORTED = {
    "crop": _GEOMETRY,
    "rotate": _GEOMETRY,
    "resize": _GEOMETRY,
    "flip": _GEOMETRY,
    "mirror": _GEOMETRY,
    "straighten": _GEOMETRY,
    "stretch": _GEOMETRY,
    "scale": _GEOMETRY,
    "zoom": _GEOMETRY,
    "shrink": _GEOMETRY,
    "enlarge": _GEOMETRY,
    "move": "moving an object is not supported yet: remove it, then add it where it should be",
    "sharpen": _RESTORE,
    "denoise": _RESTORE,
    "upscale": _RESTORE,
    "restore": _RESTORE,
    "deblur": _RESTORE,
    "unblur": _RESTORE,
    "upsample": _RESTORE,
    "upres": _RESTORE,
    "super-resolve": _RESTORE,
    "downscale": _GEOMETRY,
    "downsize": _GEOMETRY,
    "rescale": _GEOMETRY,
}
# A resolution asked for: "4K", "UHD", "higher resolution", "super-resolution" (issue 28 #15: "make it
# 4K" was read as a style, and the whole photo repainted).
_PIXELS = (
    r"(?:ultra\s+|full\s+)?(?:[2-8]k|uhd|hd|1080p|1440p|2160p|4320p|hi[-\s]?res|high(?:er)?[-\s]?(?:res(?:olution)?|definition)|"
    r"super[-\s]?res(?:olution)?|max(?:imum)?\s+resolution|more\s+pixels)"
)
_RESOLUTION = re.compile(  # a clause that asks for more pixels: "increase the resolution", "super-resolve it"
    r"^(?:(?:increase|raise|boost|improve|enhance|double|up|bump\s+up|maximi[sz]e|upgrade)\s+"
    rf"(?:(?:the|its|this)\s+)?(?:{_IMAGE}(?:'s)?\s+)?(?:resolution|res|pixel\s+count|definition)\b|"
    rf"super[-\s]?resol\w*|{_PIXELS}$)"
)
_RESOLUTION_VALUE = re.compile(  # what "make it ..." asks when it asks for a resolution or a restoration
    rf"(?:in\s+|to\s+|into\s+|as\s+)?(?:a\s+)?{_PIXELS}(?:\s+(?:quality|resolution|version|image|photo|picture))?|"
    r"(?:sharp|crisp)(?:er)?(?:\s+and\s+(?:sharp|crisp|clear)(?:er)?)?|less\s+blurr?y"
)
_SIZE_VALUE = re.compile(r"(?:much\s+|a\s+bit\s+|twice\s+as\s+)?(?:bigger|larger|smaller|wider|taller|square)")
# How a part that is a remark, not a request, begins: "i love this photo", "the lamp is ugly".
_REMARK = re.compile(
    r"^(?:i|i'm|im|i've|we|we're|you|you're|it|it's|its|this|that|that's|these|those|there|there's|here|here's|"
    r"what|what's|how|why|who|wow|nice|great|cool|love|lovely|beautiful|thanks|thank|hello|hi|hey|ok|okay|so|"
    r"well|yes|yeah|no|oh|hmm|the|a|an|my|our|his|her|their)\b"
)


def _continue_previous(clause: str, edits: list[Edit]) -> Edit | None:
    """'make the car red and the bike blue': a clause without a verb reuses the previous verb."""
    if not edits:
        return None
    prev = edits[-1]
    words = clause.split()
    follows = spec(prev.action).list_continues
    if follows == "colour" and len(words) >= 2:  # "..., the bike blue": an object and its colour
        for n in (3, 2, 1):
            if len(words) > n and _names_something(words[:-n]) and is_color(" ".join(words[-n:])):
                return _edit(prev.action, " ".join(words[:-n]), " ".join(words[-n:]))
    if follows == "object":  # "..., the cat": another object
        return _edit(prev.action, clause)
    return None


_CONTINUATION_START = re.compile(rf"^(?:{DETERMINERS}|all|every|both|each)\b")


def _parse_verbless_list(clause: str) -> tuple[list[Edit], list[str]] | None:
    """'make the car red and the bike blue', 'remove the dog and the cat': one verb, several objects.

    A later piece that starts like a noun phrase must parse as a continuation, or the clause is
    read whole ("make it black and white"); a piece that starts otherwise ("... and sing a song")
    is reported as not understood while the first edit stands.
    """
    pieces = [p for p in re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+", clause) if p]
    pieces = [p for p in pieces if not (p.startswith("not ") and is_color(p[4:]))]  # "green, not yellow"
    if len(pieces) < 2:
        return None
    first = parse_clause(pieces[0])
    if first is None:
        return None
    edits, skipped = [first], []
    for p in pieces[1:]:
        if len(p.split()) >= 2 and why_not(p):  # "remove the dog and rotate the photo": no object "rotate the photo"
            skipped.append(_SEQUENCE.sub("", p))
            continue
        e = _continue_previous(p, edits) if spec(first.action).list_continues else None
        if e is None and spec(first.action).follow_on and _CONTINUATION_START.match(p):
            e = parse_clause(p)  # "make the road wet and the sky stormy": "the sky stormy" as a follow-on
        if e is not None:
            edits.append(e)
        elif len(p.split()) >= 2 and not _CONTINUATION_START.match(p) and not is_color(p):
            skipped.append(p)
        else:
            return None
    return edits, skipped


class RulesParser:
    """Model-free: regular phrasings -> EditPlan. Instant; no image needed."""

    label = "the rules alone, no model"

    name = "rules"
    needs: tuple[str, ...] = ()

    @classmethod
    def create(cls, models: Models) -> RulesParser:
        return cls()

    def parse(self, image: np.ndarray | None, instruction: str, skip_unknown: bool = False) -> EditPlan:
        """The plan of what the rules read. A part Lasso cannot do (or could not read) raises
        UnsupportedEditError naming it, unless `skip_unknown`: then it is left out with a warning and
        the rest is planned (no edit at all when nothing else is asked)."""
        reading = read_instruction(instruction)
        refused = reading.refused()
        if not reading.edits and not reading.why:
            raise _not_understood(instruction)
        if refused and not skip_unknown:
            raise refusal(instruction, reading, refused)
        check_edit_count(len(reading.edits))
        warnings = left_out_notices(instruction, reading, reading.left_out)
        return EditPlan(edits=reading.edits, instruction=instruction, source="rules", warnings=warnings)
