"""Noun-phrase handling shared by the rules parser and the VLM-answer parser.

`split_target("the second person from the left")` -> Target(noun="person", qualifier="second from the left").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DETERMINERS = r"(?:the|a|an|this|that|these|those|my|our|your|his|her|their|its|some|any)"
_ALL = re.compile(
    r"^(?:all\s+(?:of\s+)?(?:the\s+)?|(?:the\s+)?(?:two|three|four|five|six|\d+)\s+|every\s+(?:single\s+)?|each\s+(?:of\s+the\s+)?|both\s+(?:of\s+)?(?:the\s+)?)"
)
_DET = re.compile(rf"^(?:{DETERMINERS}\s+)+")

_SIDE = r"(?:left|right|top|bottom|middle|center|centre|front|back|top left|top right|bottom left|bottom right|upper left|upper right|lower left|lower right)"
_ORD = r"(?:first|second|third|fourth|fifth|last|1st|2nd|3rd|4th|5th)"
# Qualifier phrases after the noun, longest first; group "q" is the qualifier as stored.
_POST_QUALIFIERS = [
    rf"\s+(?P<q>{_ORD}\s+from\s+the\s+(?:left|right|top|bottom))$",
    rf"\s+(?:on|at|in|to|towards?)\s+(?:the\s+)?(?:far\s+)?(?P<q>{_SIDE})(?:\s+(?:side|corner|edge|part))?(?:\s+of\s+the\s+(?:image|photo|picture|frame|scene|pic))?$",
    r"\s+(?P<q>in\s+the\s+(?:foreground|background))$",
]
_PRE_QUALIFIERS = [
    (rf"^(?P<o>{_ORD})\s+(?P<rest>.+?)\s+from\s+the\s+(?P<s>left|right|top|bottom)$", "{o} from the {s}"),
    (r"^(?P<q>(?:top|bottom|upper|lower)\s+(?:left|right))\s+(?P<rest>.+)$", "{q}"),
    # "the bigger of the two dogs", "the smaller one of the cars": a comparative picks as the superlative does
    (
        r"^(?P<q>bigger|larger|smaller|taller|shorter|closer|nearer|farther|further)\s+(?:(?:one|object)\s+)?of\s+(?:the\s+)?(?:two\s+|both\s+)?(?P<rest>.+)$",
        "{q}",
    ),
    (
        r"^(?P<q>leftmost|rightmost|topmost|bottommost|biggest|largest|smallest|tallest|shortest|closest|nearest|farthest|furthest|"
        r"bigger|larger|smaller|taller|shorter|closer|nearer|farther|further)\s+(?P<rest>.+)$",
        "{q}",
    ),
    (r"^(?:far\s+)?(?P<q>left|right|upper|lower|top|bottom|middle|center|centre|front)\s+(?P<rest>.+)$", "{q}"),
]
_QUALIFIER_ALIASES = {
    "upper": "top",
    "lower": "bottom",
    "centre": "middle",
    "center": "middle",
    "leftmost": "left",
    "rightmost": "right",
    "topmost": "top",
    "bottommost": "bottom",
    "biggest": "largest",
    "bigger": "largest",
    "larger": "largest",
    "smaller": "smallest",
    "taller": "tallest",
    "shorter": "shortest",
    "closer": "closest",
    "nearer": "closest",
    "farther": "farthest",
    "further": "farthest",
    "nearest": "closest",
    "furthest": "farthest",
    "1st": "first",
    "2nd": "second",
    "3rd": "third",
    "4th": "fourth",
    "5th": "fifth",
    "upper left": "top left",
    "upper right": "top right",
    "lower left": "bottom left",
    "lower right": "bottom right",
}
_ONE_OF = {"largest", "smallest", "tallest", "shortest", "closest", "farthest"}  # pick one, even of a plural
# What follows the noun but is context, not the target: "the cat on the table".
_RELATION = re.compile(
    r"\s+(?P<rel>(?:that|which|who)\s+(?:is|are)\s+.+|(?:sitting|standing|lying|parked|hanging|placed)\s+.+|"
    r"(?:on top of|in front of|next to|close to|to the (?:left|right) of|on|in|under|underneath|beneath|behind|"
    r"beside|near|by|above|below|over|with|without|holding|wearing|carrying|riding|inside|against|at|along|"
    r"from|between|among|amongst|within|out of|off)\s+.+)$"
)
_IRREGULAR = {
    "people": "person",
    "men": "man",
    "women": "woman",
    "children": "child",
    "kids": "kid",
    "mice": "mouse",
    "geese": "goose",
    "teeth": "tooth",
    "feet": "foot",
    "leaves": "leaf",
    "knives": "knife",
    "wolves": "wolf",
    "shelves": "shelf",
    "loaves": "loaf",
    "calves": "calf",
    "halves": "half",
    "oxen": "ox",
    "dice": "die",
    "cacti": "cactus",
    "fungi": "fungus",
}
_SAME = {
    "sheep",
    "fish",
    "deer",
    "glasses",
    "grass",
    "bus",
    "gas",
    "dress",
    "class",
    "glass",
    "cross",
    "moss",
    "jeans",
    "pants",
    "shorts",
    "trousers",
    "scissors",
    "clothes",
    "news",
    "series",
    "species",
    "lens",
    "canvas",
    "cactus",
    "octopus",
    "iris",
    "hummus",
    "bonus",
    "campus",
    "virus",
    "status",
    "walrus",
    "mattress",
    "princess",
    "actress",
    "waitress",
    "chess",
    "lotus",
    "tennis",
    "sunglasses",
    "goggles",
    "headphones",
    "earphones",
    "binoculars",
    "stairs",
    "hair",
    "furniture",
    "water",
    "sky",
}


@dataclass
class Target:
    noun: str
    qualifier: str | None = None
    relation: str | None = None
    select_all: bool = False


def singular(word: str) -> tuple[str, bool]:
    """(singular form, was plural) for an English noun; conservative where unsure."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w], True
    if w in _SAME or len(w) <= 3 or w.endswith(("ss", "us", "is", "ous")):
        return word, False
    if w.endswith("ies") and len(w) > 4:
        return word[:-3] + "y", True
    if w.endswith(("ches", "shes", "xes", "zes", "sses", "oes")):
        return word[:-2], True
    if w.endswith("s") and not w.endswith("'s"):
        return word[:-1], True
    return word, False


def _norm_qualifier(q: str) -> str:
    q = re.sub(r"\s+", " ", q.strip().lower())
    for k, v in _QUALIFIER_ALIASES.items():
        q = re.sub(rf"\b{re.escape(k)}\b", v, q)
    return q


def strip_determiners(phrase: str) -> str:
    return _DET.sub("", phrase.strip()).strip()


def split_target(phrase: str) -> Target:
    """Split a target phrase into the bare noun phrase, a spatial qualifier, a relation and plurality."""
    p = re.sub(r"\s+", " ", phrase.strip().lower()).strip(" ,.")
    select_all = False
    m = _ALL.match(p)
    if m:
        select_all, p = True, p[m.end() :]
    p = strip_determiners(p)
    # "the left one", "the one on the left": the noun is unknown; keep "object".
    p = re.sub(r"\bones?\b", "object", p) if re.fullmatch(r"(?:\w+\s+)?ones?(?:\s+.+)?", p) else p
    qualifier = None
    for pat in _POST_QUALIFIERS:
        m = re.search(pat, p)
        if m:
            qualifier, p = m.group("q"), p[: m.start()]
            break
    if qualifier is None:
        for pat, fmt in _PRE_QUALIFIERS:
            m = re.match(pat, p)
            if m:
                qualifier = fmt.format(**m.groupdict())
                p = m.group("rest")
                break
    if qualifier is None:  # "the person from the left" (no ordinal): the leftmost
        m = re.search(r"\s+from\s+the\s+(?P<q>left|right|top|bottom)$", p)
        if m:
            qualifier, p = m.group("q"), p[: m.start()]
    relation = None
    m = _RELATION.search(p)
    if m and m.start() > 0:
        relation, p = m.group("rel"), p[: m.start()]
    p = strip_determiners(p).strip()
    words = p.split()
    one_of = qualifier is not None and _norm_qualifier(qualifier) in _ONE_OF
    if words and not select_all and one_of:  # "the bigger of the dogs": one dog, the one that is bigger
        words[-1] = singular(words[-1])[0]
    elif words and not select_all:
        # "the cars" means every car; "the car" one.
        last, plural = singular(words[-1])
        if plural:
            words[-1], select_all = last, True
    elif words:
        words[-1] = singular(words[-1])[0]
    noun = " ".join(words) or "object"
    return Target(
        noun=noun, qualifier=_norm_qualifier(qualifier) if qualifier else None, relation=relation, select_all=select_all
    )


def clean_value(value: str | None) -> str | None:
    """A new colour / object / scene as the user wrote it, without a leading article or filler."""
    if value is None:
        return None
    v = re.sub(r"\s+", " ", value.strip().strip(" .,!?\"'")).strip()
    v = re.sub(r"^(?:a|an|the|some)\s+", "", v, flags=re.I)
    v = re.sub(r"\s+(?:instead|please|for me|thanks|thank you)$", "", v, flags=re.I)
    return v or None
