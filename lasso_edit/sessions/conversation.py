"""Follow-ups: an instruction that leans on the edit before it, read against that edit.

A session's current step is the context (what was edited, how, and which instance). `resolve`
reads what the person said next and returns a `Turn`:

    "make it darker" / "a bit more" / "less"    revise: the same edits, stronger or weaker
    "no, the other one" / "the left one"        revise: the same edits on another instance
    "undo that and try green" / "try a cat"     revise: the same edits with the new value
    "and the bike too" / "same for the door"    again:  the last action on a new target, on top
    "undo" / "take that back"                   undo
    "now remove it"                             new:    "it" read as the last target
    anything else                               new:    the instruction as it stands
    a reference with nothing to lean on         question: what Lasso needs to know, nothing done

A revision is made from the picture before the last step, so "a bit more" after "brighten it" is
one stronger brightening, not two stacked, and "less" can go below the first; it is the step after
the last one in the history (session.py: its `base` is the picture it was made from), so Undo goes
back to the step it revised. Resolution is words only (no model), so a preview and the
edit that follows resolve the same way. Every parser gets the context the same way: a `new` or
`again` turn hands it a standalone instruction ("make the bike red"), a revision a plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.plan import Action, Box, Edit, EditPlan
from ..parse.adjustments import DEFAULT_AMOUNT, parse_spec, spec

MORE, LESS = "more", "less"


@dataclass
class Context:
    """What the step being followed up did: its words, its edits and the box each edit's target was
    found at (XYXY pixels, None where none), on an image of `size` (w, h)."""

    instruction: str
    edits: list[Edit]
    boxes: list[Box | None] = field(default_factory=list)
    size: tuple[int, int] | None = None

    def line(self) -> str:
        """The last edit in one line, for a VLM's prompt: 'the person said "make the car red": make the car red'."""
        done = "; ".join(e.describe() for e in self.edits)
        return f'the person said "{self.instruction}" and Lasso did: {done}'

    @property
    def target_phrase(self) -> str | None:
        """The last edit's target as a phrase a pronoun stands for ("the car", "all the cup")."""
        e = self.edits[-1] if self.edits else None
        if e is None or not e.target:
            return None
        return f"{'all the' if e.select_all else 'the'} {e.target}"


@dataclass
class Turn:
    """What a follow-up means. `kind`: new, again, revise, undo or question. `instruction`: what the
    parsers get (new, again); `plan`: the edits to run (revise); `said`: one line for the
    conversation ("the same edit, darker: make the car dark red"); `question`: what to ask back."""

    kind: str
    instruction: str = ""
    plan: EditPlan | None = None
    said: str = ""
    question: str | None = None
    context: str | None = None  # a new edit's: the last edit in one line, for a VLM parser (Context.line)

    @property
    def replaces_last(self) -> bool:
        """A revision is made from the picture before the current step, and becomes the step after it."""
        return self.kind == "revise"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "instruction": self.instruction,
            "said": self.said,
            "question": self.question,
            "plan": self.plan.to_dict() if self.plan else None,
        }


# ---------------------------------------------------------------------- words
_FILLER = re.compile(
    r"^(?:(?:ok(?:ay)?|hmm+|um+|uh+|oh|well|wait|great|nice|cool|thanks|thank you|good|perfect|hm|alright|right|"
    r"so|now|please|pls|then|yes|yeah|and then)\b[\s,.!]*)+"
)
_ASK = re.compile(r"^(?:(?:can|could|would|will) you|i(?:'d| would) like (?:you )?to|let'?s|please)\s+")
# Every pattern here reads in time linear in the text (tests/test_patterns.py): no two repeats
# that could share a run of one character, and a search's leading run guarded by a lookbehind, so it
# is scanned from its first character only. (`_TAIL` was `[\s,.!?]*(?:please|...)?[\s,.!?]*$`: every
# split of a run of commas, from every start, cubic; 2,000 commas took 22 s.) `_clean` leaves single
# spaces, so the patterns that read its text say " " where a run is no longer possible.
_TAIL = re.compile(r"(?<![\s,.!?])[\s,.!?]*(?:\b(?:please|pls|thanks|thank you|for me)\b[\s,.!?]*)?$")
_NO = r"(?:no+|nope|nah|not quite|actually|oops|sorry|i meant|i mean|rather)"
_UNDO = r"(?:undo(?: (?:that|it|this|the last(?: one| edit| step| change)?))?|revert(?: (?:that|it|this))?|go back|scratch that|take (?:that|it) back|roll (?:that |it )?back)"
_SOFT = r"(?:a (?:bit|little|little bit|touch|tad|smidge)|slightly|somewhat|just a (?:bit|little|touch))"
_HARD = r"(?:a lot|much|way|far|lots|even more|a great deal|significantly|really|very)"
_STRONGER = r"(?:more|stronger|harder|heavier|intenser|more intense|further|up)"
_WEAKER = r"(?:less|weaker|softer|lighter-handed|gentler|subtler|down)"
_BRIGHTNESS = {"darker": LESS, "dimmer": LESS, "brighter": MORE, "lighter": MORE}
_QUALIFIER_WORDS = {
    "bigger": "largest",
    "larger": "largest",
    "biggest": "largest",
    "largest": "largest",
    "smaller": "smallest",
    "smallest": "smallest",
    "taller": "tallest",
    "shorter": "shortest",
    "front": "in the foreground",
    "closer": "in the foreground",
    "nearer": "in the foreground",
    "back": "in the background",
    "behind": "in the background",
    "farther": "in the background",
    "further back": "in the background",
}
_SIDES = ("top left", "top right", "bottom left", "bottom right", "left", "right", "top", "bottom", "middle", "center")


def _clean(text: str) -> str:
    t = re.sub(r"\s+", " ", text.strip().lower().replace("\u2019", "'"))
    for _ in range(3):
        t = _FILLER.sub("", t)
        t = _ASK.sub("", t)
    return _TAIL.sub("", t).strip(" ,.")


def _degree(text: str) -> float:
    """How much stronger or weaker: 1 for plain words, 0.5 for "a bit", 2 for "a lot"."""
    if re.search(rf"\b{_SOFT}\b", text):
        return 0.5
    if re.search(rf"\b{_HARD}\b", text):
        return 2.0
    return 1.0


# ---------------------------------------------------------------------- resolving
def resolve(text: str, context: Context | None) -> Turn:
    """What `text` means after `context` (None: nothing to lean on, the original photo). Raises
    InvalidInstructionError for what no edit would take (empty, bytes, past the length limit), before
    any pattern reads it."""
    from ..parse.limits import check_instruction

    check_instruction(text)
    t = _clean(text)
    for reader in (_plain_undo, _other_instance, _intensity, _undo_and_value, _also, _pronoun):
        turn = reader(t, context)
        if turn is not None:
            break
    else:
        turn = Turn("new", instruction=text.strip())
    if turn.kind == "new" and context is not None and context.edits:
        turn.context = context.line()  # what the words may still lean on, for a VLM parser
    return turn


def _nothing_before(what: str) -> Turn:
    return Turn(
        "question",
        question=f"{what}: there is no earlier edit in this session to go on. Say what to change, "
        'e.g. "make the car red" or "remove the dog".',
    )


def _revise(edits: list[Edit], said: str) -> Turn:
    plan = EditPlan(edits=edits, instruction="; ".join(e.describe() for e in edits), source="follow-up")
    return Turn("revise", instruction=plan.instruction, plan=plan, said=f"{said}: {plan.instruction}")


def _same_instance(context: Context, i: int, edit: Edit) -> Edit:
    """The edit aimed where the last one landed: its box as the grounders' hint."""
    box = context.boxes[i] if i < len(context.boxes) else None
    return replace(edit, box=box if box is not None and not edit.select_all else edit.box, prompt=None)


def _undo_and_value(t: str, context: Context | None) -> Turn | None:
    """ "undo that and try green", "no, try a cat instead", "what about purple?", "actually, green instead"."""
    undo = re.match(rf"^(?:{_NO}[\s,]+)?{_UNDO}\b[\s,]*(?:(?:and|then)\s+)*", t)
    rest = t[undo.end() :] if undo else t
    no = re.match(rf"^{_NO}\b[\s,]*", rest)
    rest = rest[no.end() :] if no else rest
    tried = re.match(r"^(?:try|use|go with|how about|what about|maybe|make (?:it|them))\s+", rest)
    rest = rest[tried.end() :] if tried else rest
    instead = re.search(r"(?<![\s,])[\s,]*\binstead$", rest)
    rest = rest[: instead.start()] if instead else rest
    value = _strip_article(rest)
    if not value or not (undo or no or instead or (tried and not tried.group(0).startswith("make"))):
        return None  # "make it green" alone: an instruction of its own ("make the car green", on top)
    if _looks_like_instruction(value) or _is_other_instance(value) or _intensity_words(value):
        return None
    if context is None or not context.edits:
        return _nothing_before(f"{value!r} instead of what")
    last = context.edits[-1]
    if not _takes_value(last):
        return Turn(
            "question",
            question=f"The last edit ({context.instruction}) has no value to swap for {value!r}; say the whole edit.",
        )
    edits = list(context.edits[:-1]) + [_same_instance(context, len(context.edits) - 1, replace(last, value=value))]
    return _revise(edits, f"{'undone, and ' if undo else ''}{value} instead")


def _takes_value(edit: Edit) -> bool:
    return edit.action in (Action.RECOLOR, Action.REPLACE, Action.BACKGROUND, Action.ADD, Action.STYLE)


def _strip_article(v: str) -> str:
    return re.sub(r"^(?:a|an|the|some)\s+", "", v.strip(" ,.!?")).strip()


def _plain_undo(t: str, context: Context | None) -> Turn | None:
    if not re.fullmatch(rf"(?:{_NO}[\s,]*)?{_UNDO}", t):
        return None
    if context is None:
        return _nothing_before("Nothing to undo")
    return Turn("undo", said="undid the last edit")


def _is_other_instance(t: str) -> bool:
    return _other_words(t) is not None


def _other_words(t: str) -> tuple[str | None, str | None] | None:
    """("other", noun) or (qualifier, noun) when `t` points at another instance; else None."""
    t = re.sub(rf"^(?:{_NO}[\s,]+)*", "", t)
    t = re.sub(r"^not (?:that|this|the) (?:one|\w+)[\s,]+", "", t)
    t = re.sub(r"^(?:i meant|i mean|i said)\s+", "", t)
    t = re.sub(r"(?<!\s)\s+instead$", "", t)
    m = re.fullmatch(
        r"(?:the )?(?:other|another|wrong)(?: (?P<noun>\w+))?(?: one)?|(?:the )?(?P<noun2>\w+),? wrong one|not (?:that|this) one",
        t,
    )
    if m:
        return "other", m.group("noun") if m.group("noun") not in (None, "one") else None
    m = re.fullmatch(r"wrong (?P<noun>\w+)", t)
    if m:
        return "other", m.group("noun")
    m = re.fullmatch(r"(?:the )?(?:(?P<noun>\w+)|one) (?:on|at|in|to) (?:the )?(?P<where>.+)", t)
    if m:
        where = m.group("where").strip()
        q = _where(where)
        if q:
            return q, m.group("noun")
    m = re.fullmatch(r"the (?P<where>[\w ]+?) (?:one|(?P<noun>\w+))", t)
    if m:
        q = _where(m.group("where"))
        if q:
            return q, m.group("noun")
    return None


def _where(words: str) -> str | None:
    w = words.strip()
    if w in _SIDES:
        return "middle" if w == "center" else w
    if w in _QUALIFIER_WORDS:
        return _QUALIFIER_WORDS[w]
    m = re.fullmatch(r"(?:very )?(left|right|top|bottom)(?:most)?(?: side)?", w)
    if m:
        return m.group(1)
    return None


def _other_instance(t: str, context: Context | None) -> Turn | None:
    found = _other_words(t)
    if found is None:
        return None
    qualifier, noun = found
    assert qualifier is not None
    if context is None or not context.edits:
        return _nothing_before("Which one")
    i = next((k for k in range(len(context.edits) - 1, -1, -1) if context.edits[k].target), None)
    if i is None:
        return Turn("question", question="The last edit had no object to choose among; say which object to edit.")
    last = context.edits[i]
    if noun and noun not in (last.target or "").split() and noun not in ("one", "thing"):
        return None  # "the left car" after editing a dog: not this kind of follow-up
    if qualifier == "other":
        box = context.boxes[i] if i < len(context.boxes) else None
        if box is None:
            return Turn(
                "question",
                question=f'Which {last.target}? Say where it is ("the {last.target} on the left") or click it on the page.',
            )
        changed = replace(last, qualifier=None, select_all=False, box=None, avoid=box, prompt=None)
        said = f"another {last.target}, not the one edited"
    else:
        changed = replace(last, qualifier=qualifier, select_all=False, box=None, avoid=None, prompt=None)
        said = f"the {last.target} {qualifier if qualifier.startswith('in ') else f'on the {qualifier}'} instead"
    edits = list(context.edits)
    edits[i] = changed
    return _revise(edits, said)


_LEAD = re.compile(
    rf"^(?:{_NO}[\s,]+|make (?:it|them|that|this)\s+|try\s+|go\s+|do it\s+|even\s+|just\s+|still\s+|(?:a )?(?:little|bit) )+"
)
_TOO_MUCH = (
    r"too (?:much|strong|far|heavy|intense|obvious|strongly|extreme)|(?:tone|dial|turn) it down|overdone|over the top"
)
_NOT_ENOUGH = (
    r"not enough|too (?:little|weak|subtle|faint)|(?:turn|crank|dial) it up|more of (?:that|it)|again|once more"
)
_TOO = {"too dark": "brighter", "too bright": "darker", "too light": "darker"}


def _intensity_words(t: str) -> tuple[str, float, str | None] | None:
    """(more|less, degree, a brightness word or None) when `t` asks for more or less of the last edit."""
    degree = _degree(t)
    whole = _LEAD.sub("", t).strip(" ,")  # "too much" before "much" is read as a degree
    core = _LEAD.sub("", re.sub(rf"\b(?:{_SOFT}|{_HARD})\b", "", t).strip(" ,"))
    core = re.sub(r"(?<!\s)\s+(?:please|again|than that|than before|then|still)$", "", core).strip(" ,")
    for said in (whole, core):
        if said in _TOO:
            word = _TOO[said]
            return (MORE if word == "brighter" else LESS), degree, word
        if re.fullmatch(_TOO_MUCH, said):
            return LESS, 1.0, None
        if re.fullmatch(_NOT_ENOUGH, said):
            return MORE, 1.0, None
    if core in _BRIGHTNESS:
        return _BRIGHTNESS[core], degree, core
    if re.fullmatch(_STRONGER, core) or (core == "" and degree != 1.0):
        return MORE, degree, None
    if re.fullmatch(_WEAKER, core):
        return LESS, degree, None
    return None


def _intensity(t: str, context: Context | None) -> Turn | None:
    found = _intensity_words(t)
    if found is None:
        return None
    direction, degree, word = found
    if context is None or not context.edits:
        return _nothing_before(f"{t.capitalize()} than what")
    edits, changed = [], False
    for i, e in enumerate(context.edits):
        new = _stronger(e, direction, degree, word)
        changed |= new is not None
        edits.append(_same_instance(context, i, new or e))
    if not changed:
        last = context.edits[-1]
        if word in ("darker", "dimmer", "brighter", "lighter"):  # a new adjustment on the same region
            amount = DEFAULT_AMOUNT["brightness"] * degree * (-1 if word in ("darker", "dimmer") else 1)
            target = last.target if last.region != "whole" else None  # the same region: an object, a background
            adjust = Edit(Action.ADJUST, target, spec("brightness", amount), qualifier=last.qualifier)
            adjust = _same_instance(context, len(context.edits) - 1, adjust) if target else adjust
            plan = EditPlan(edits=[adjust], instruction=adjust.describe(), source="follow-up")
            return Turn("again", instruction=plan.instruction, plan=plan, said=f"{word} on top: {plan.instruction}")
        return Turn(
            "question",
            question=f"{t.capitalize()} of what? The last edit ({context.instruction}) has no amount to change; "
            "say what to change instead.",
        )
    return _revise(
        edits,
        f"the same {'edit' if len(edits) == 1 else 'edits'}, {word or ('stronger' if direction == MORE else 'weaker')}",
    )


def _stronger(e: Edit, direction: str, degree: float, word: str | None) -> Edit | None:
    """`e` with more or less of what it does, or None when it has no amount to change."""
    up = direction == MORE
    if e.action is Action.ADJUST:
        kind, amount = parse_spec(e.value)
        if word in ("darker", "dimmer", "brighter", "lighter"):
            if kind not in ("brightness", "exposure"):
                return None
            # "darker" after brightening: less of it; after darkening: more of it
            up = (word in ("brighter", "lighter")) == ((amount if amount is not None else 1) >= 0)
        if amount is None:
            amount = DEFAULT_AMOUNT.get(kind)
        if amount is None:  # blur / pixelate: the executor's own default; name one to scale
            amount = {"blur": 8.0, "pixelate": 16.0}[kind]
        factor = (1 + 0.5 * degree) if up else 1 / (1 + 0.5 * degree)
        new = amount * factor
        if kind in ("saturation", "brightness", "contrast"):
            new = max(-100.0, min(new, 300.0))
        return replace(e, value=spec(kind, round(new, 1)), prompt=None)
    if e.action is Action.STYLE:
        s = e.strength if e.strength is not None else 0.65
        step = 0.15 * degree
        return replace(e, strength=round(min(1.0, s + step) if up else max(0.1, s - step), 2), prompt=None)
    if e.action is Action.RECOLOR and e.value:
        return replace(e, value=_shade(e.value, direction, word), prompt=None)
    return None


_OPPOSITE = {"dark": "light", "light": "dark", "vivid": "muted", "muted": "vivid"}


def _shade(colour: str, direction: str, word: str | None) -> str:
    """ "red" made darker, lighter, stronger or weaker, in the colour words colors.py reads."""
    if word in ("darker", "dimmer"):
        modifier = "dark"
    elif word in ("brighter", "lighter"):
        modifier = "light"
    else:
        modifier = "vivid" if direction == MORE else "muted"
    words = colour.split()
    if words and words[0] == _OPPOSITE[modifier]:  # "dark red", lighter: back to "red"
        return " ".join(words[1:]) or colour
    return f"{modifier} {colour}"


def _also(t: str, context: Context | None) -> Turn | None:
    """ "and the bike too", "the truck as well", "same for the door", "also the cat"."""
    m = re.fullmatch(
        r"(?:(?:and|also|plus)(?: also)?|(?:do )?(?:the )?same (?:for|with|to|on)|(?:and )?(?:do )?(?:that|this|it) (?:for|with|to|on)|do the same (?:for|with|to|on)|now) (?P<target>.+?)(?: (?:too|as well|also))?",
        t,
    ) or re.fullmatch(r"(?:and )?(?P<target>.+?) (?:too|as well|also)", t)
    if m is None:
        return None
    phrase = m.group("target").strip(" ,")
    if _looks_like_instruction(phrase) or phrase in ("it", "them", "that", "this"):
        return None
    if context is None or not context.edits:
        return _nothing_before(f"The same for {phrase}")
    from ..parse.phrases import split_target

    target = split_target(phrase)
    if target.noun == "object":
        return None
    last = context.edits[-1]
    if not last.target:
        return Turn("question", question=f"The last edit changed the whole photo; say what to do to {phrase}.")
    new = Edit(
        last.action,
        target.noun,
        last.value,
        qualifier=target.qualifier,
        relation=target.relation,
        select_all=target.select_all,
        strength=last.strength,
        subject=last.subject,
    )
    plan = EditPlan(edits=[new], instruction=new.describe(), source="follow-up")
    return Turn("again", instruction=plan.instruction, plan=plan, said=f"the same for {phrase}: {plan.instruction}")


_PRONOUNS = re.compile(r"\b(?:it|them|that one|this one)\b")
_PHOTO_IDIOM = re.compile(r"\b(?:looks?|feels?|seem|seems) like\b|\bas if\b|\bin the style\b|\bstyle\b")


def _pronoun(t: str, context: Context | None) -> Turn | None:
    """ "now remove it", "make it blue": an instruction whose object is a pronoun, read as the last
    edit's target (not the photo: that is the reading without a conversation). A removed target is
    no referent, and "make it look like winter" means the photo."""
    word = _PRONOUNS.search(t)
    if word is None or _PHOTO_IDIOM.search(t):
        return None
    from ..parse.rules import parse_instruction

    try:
        edits, _ = parse_instruction(t)
    except Exception:  # noqa: BLE001 - not an instruction the rules read: the parsers will say
        return None
    last = context.edits[-1] if context is not None and context.edits else None
    if last is None or context is None or context.target_phrase is None or last.action is Action.REMOVE:
        if any((e.target or "") in ("it", "them", "that one", "this one") for e in edits):
            return Turn("question", question=f'What should {word.group(0)!r} be? Name it, e.g. "remove the dog".')
        return None
    instruction = t[: word.start()] + context.target_phrase + t[word.end() :]
    return Turn(
        "new", instruction=instruction, said=f"{word.group(0)!r} read as {context.target_phrase}: {instruction}"
    )


def _looks_like_instruction(t: str) -> bool:
    """Whether the rules parser reads `t` as an edit of its own (a verb and an object)."""
    from ..parse.rules import parse_clause

    try:
        return parse_clause(t) is not None
    except Exception:  # noqa: BLE001
        return False
