"""conversation.py: follow-ups read against the edit before them. The issue's own phrasings, each
kind's edges, and a held-back set (tests/_data/follow_ups_held_back.json) written before the
resolver and never used to tune it."""

import json
from pathlib import Path

import pytest

from lasso_edit.core.plan import Edit
from lasso_edit.parse.adjustments import parse_spec
from lasso_edit.parse.rules import parse_instruction
from lasso_edit.sessions.conversation import Context, resolve

HELD_BACK = json.loads((Path(__file__).parents[1] / "_data" / "follow_ups_held_back.json").read_text())
CAR = Context("make the car red", [Edit("recolor", "car", "red")], [(10.0, 20.0, 60.0, 70.0)], (200, 100))
BRIGHT = Context("brighten the photo", [Edit("adjust", None, "brightness +25%")], [None], (200, 100))
DOG = Context("remove the dog", [Edit("remove", "dog")], [(140.0, 30.0, 190.0, 90.0)], (200, 100))


def _context(name):
    if name is None:
        return None
    c = HELD_BACK["contexts"][name]
    return Context(c["instruction"], [Edit(**e) for e in c["edits"]], [tuple(b) if b else None for b in c["boxes"]],
                   tuple(c["size"]))


def _check(turn, context, expect) -> list[str]:
    """What differs between the turn and what the case expects (empty: it resolved right)."""
    wrong = []
    if turn.kind != expect["kind"]:
        return [f"kind {turn.kind} (said {turn.said or turn.question or turn.instruction!r})"]
    if turn.kind == "question":
        return [] if turn.question else ["no question"]
    if turn.kind == "undo":
        return []
    if turn.plan is not None:
        edit = turn.plan.edits[-1]
    else:
        edit = parse_instruction(turn.instruction)[0][-1]
    before = context.edits[-1] if context else None
    for key in ("action", "target", "value", "qualifier"):
        if key in expect:
            got = getattr(edit, key)
            got = got.value if key == "action" else got
            if got != expect[key]:
                wrong.append(f"{key} {got!r}, not {expect[key]!r}")
    if expect.get("avoid") and edit.avoid != tuple(context.boxes[-1]):
        wrong.append(f"avoid {edit.avoid}")
    if "amount" in expect:
        was, now = parse_spec(before.value)[1], parse_spec(edit.value)[1]
        if (now > was) != (expect["amount"] == "more"):
            wrong.append(f"amount {was} -> {now}")
    if "strength" in expect:
        if (edit.strength > before.strength) != (expect["strength"] == "more"):
            wrong.append(f"strength {before.strength} -> {edit.strength}")
    return wrong


def test_the_held_back_follow_ups_resolve_against_their_session():
    misses = {}
    for case in HELD_BACK["cases"]:
        context = _context(case["context"])
        wrong = _check(resolve(case["say"], context), context, case["expect"])
        if wrong:
            misses[case["say"]] = wrong
    assert not misses, f"{len(misses)} of {len(HELD_BACK['cases'])} resolved wrong: {misses}"


@pytest.mark.parametrize(("say", "kind", "action", "target", "value"), [
    ("make it darker", "revise", "recolor", "car", "dark red"),
    ("a bit more", "revise", "recolor", "car", "vivid red"),
    ("less", "revise", "recolor", "car", "muted red"),
    ("no, the other one", "revise", "recolor", "car", "red"),
    ("the one on the left instead", "revise", "recolor", "car", "red"),
    ("undo that and try green", "revise", "recolor", "car", "green"),
    ("and the bike too", "again", "recolor", "bike", "red"),
])
def test_the_issues_own_follow_ups(say, kind, action, target, value):
    turn = resolve(say, CAR)
    edit = turn.plan.edits[0]
    assert (turn.kind, edit.action.value, edit.target, edit.value) == (kind, action, target, value)


def test_the_other_one_avoids_the_box_edited_and_a_side_is_a_qualifier_not_a_hint():
    other = resolve("no, the other one", CAR).plan.edits[0]
    assert other.avoid == CAR.boxes[0] and other.box is None and other.qualifier is None
    left = resolve("the one on the left instead", CAR).plan.edits[0]
    assert left.qualifier == "left" and left.box is None and left.avoid is None


def test_the_other_one_after_several_targeted_edits_is_another_of_the_last_target():
    """ "the other one" leans on the LAST targeted edit (here the dog, not the car edited first, and
    not the whole-photo adjustment after it): the dog is set aside at its own box, a side qualifies
    the dog, and the other edits stay as they were."""
    car, dog = (10.0, 20.0, 60.0, 70.0), (140.0, 30.0, 190.0, 90.0)
    two = Context("make the car red and the dog blue, brighter",
                  [Edit("recolor", "car", "red"), Edit("recolor", "dog", "blue"), Edit("adjust", None, "brightness +25%")],
                  [car, dog, None], (200, 100))
    for say in ("no, the other one", "the other dog"):
        turn = resolve(say, two)
        assert turn.kind == "revise" and "another dog" in turn.said, say
        assert [(e.target, e.avoid) for e in turn.plan.edits] == [("car", None), ("dog", dog), (None, None)], say
    left = resolve("the one on the left instead", two).plan.edits
    assert [(e.target, e.qualifier) for e in left] == [("car", None), ("dog", "left"), (None, None)]
    assert resolve("the other car", two).kind == "new"  # not the last target: an instruction of its own


def test_a_revision_of_the_same_instance_is_aimed_at_its_box():
    assert resolve("make it darker", CAR).plan.edits[0].box == CAR.boxes[0]
    assert resolve("undo that and try green", CAR).plan.edits[0].box == CAR.boxes[0]


def test_amounts_scale_by_degree_and_direction_follows_the_words():
    def amount(say, context=BRIGHT):
        return parse_spec(resolve(say, context).plan.edits[0].value)[1]

    assert 25 < amount("a bit more") < amount("more") < amount("a lot more")
    assert 0 < amount("a lot less") < amount("less") < amount("a bit less") < 25
    assert amount("make it darker") < 25  # less of a brightening
    dark = Context("darken it", [Edit("adjust", None, "brightness -25%")], [None])
    assert amount("make it darker", dark) < -25 and -25 < amount("brighter", dark) < 0


def test_a_shade_undoes_its_opposite_and_a_style_strength_stays_in_range():
    dark = Context("x", [Edit("recolor", "car", "dark red")], [None])
    assert resolve("lighter", dark).plan.edits[0].value == "red"
    strong = Context("x", [Edit("style", None, "winter", strength=0.95)], [None])
    assert resolve("a lot more", strong).plan.edits[0].strength == 1.0
    weak = Context("x", [Edit("style", None, "winter", strength=0.2)], [None])
    assert resolve("a lot less", weak).plan.edits[0].strength == 0.1


def test_a_pronoun_is_the_last_target_unless_it_was_removed_or_means_the_photo():
    assert resolve("make it blue", CAR).instruction == "make the car blue"
    assert resolve("make it look like winter", CAR).instruction == "make it look like winter"
    assert resolve("remove it", DOG).kind == "question"  # the dog is gone: "it" is nothing
    assert resolve("make it blue", None).kind == "new"  # no conversation: "it" is the photo, as always


def test_more_of_an_edit_without_an_amount_is_a_question_and_darker_adds_an_adjustment():
    assert resolve("a bit more", DOG).kind == "question"
    turn = resolve("make it darker", Context("blur the car", [Edit("adjust", "car", "blur")], [(1.0, 2.0, 30.0, 40.0)]))
    assert turn.kind == "again" and turn.plan.edits[0].value == "brightness -25%"
    assert turn.plan.edits[0].target == "car" and turn.plan.edits[0].box == (1.0, 2.0, 30.0, 40.0)


@pytest.mark.parametrize("say", ["make the sky blue", "remove the person on the left", "blur the background",
                                 "replace the dog with a cat", "add a hat on the man", "make the car on the right red"])
def test_a_whole_instruction_stands_alone(say):
    turn = resolve(say, CAR)
    assert turn.kind == "new" and turn.instruction == say


@pytest.mark.parametrize("said", ["", "   ", b"make it darker", "and the " + "bike " * 1000 + "too"])
def test_words_no_edit_would_take_are_refused_before_any_pattern_reads_them(said):
    from lasso_edit.core.errors import InvalidInstructionError

    with pytest.raises(InvalidInstructionError):
        resolve(said, CAR)
