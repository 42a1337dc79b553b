"""The rules parser on a table of instructions as people type them.

Each row: instruction -> list of (action, target, value, qualifier, select_all[, extra]) where
extra checks relation / subject when present.
"""


import pytest

from lasso_edit.core.errors import InvalidInstructionError
from lasso_edit.parse.rules import RulesParser, parse_instruction

R, P, X, B, A, S, J = "recolor", "replace", "remove", "background", "add", "style", "adjust"

TABLE = [
    # --- recolour, many phrasings
    ("make the car red", [(R, "car", "red", None, False)]),
    ("Make the car red.", [(R, "car", "red", None, False)]),
    ("make the car red!", [(R, "car", "red", None, False)]),
    ("please make the car red", [(R, "car", "red", None, False)]),
    ("Could you please turn her dress navy blue?", [(R, "dress", "navy blue", None, False)]),
    ("can you make the sky purple please", [(R, "sky", "purple", None, False)]),
    ("turn the dress navy blue", [(R, "dress", "navy blue", None, False)]),
    ("paint the wall bright yellow", [(R, "wall", "bright yellow", None, False)]),
    ("paint the door in dark green", [(R, "door", "dark green", None, False)]),
    ("color the bike orange", [(R, "bike", "orange", None, False)]),
    ("recolor the umbrella to teal", [(R, "umbrella", "teal", None, False)]),
    ("change the color of the car to blue", [(R, "car", "blue", None, False)]),
    ("change the colour of the sofa to light grey", [(R, "sofa", "light grey", None, False)]),
    ("change the man's shirt color to green", [(R, "man's shirt", "green", None, False)]),
    ("set the car's color to silver", [(R, "car", "silver", None, False)]),
    ("make the shirt pink colored", [(R, "shirt", "pink", None, False)]),
    ("make the car bright red", [(R, "car", "bright red", None, False)]),
    # "sky blue" is a colour too: the longest colour is taken only when a noun is left
    ("make the sky blue", [(R, "sky", "blue", None, False)]),
    ("make the car red and the sky blue", [(R, "car", "red", None, False), (R, "sky", "blue", None, False)]),
    ("make the shirt sky blue", [(R, "shirt", "sky blue", None, False)]),
    ("the car should be green", [(R, "car", "green", None, False)]),
    ("i want the hat to be black", [(R, "hat", "black", None, False)]),
    ("make the sky darker", [(R, "sky", "darker", None, False)]),
    ("make the grass greener", [(R, "grass", "greener", None, False)]),
    ("make the flowers #ff8800", [(R, "flower", "#ff8800", None, True)]),
    ("mkae the car red", [(R, "car", "red", None, False)]),
    ("chnage the colour of the bus to yellow", [(R, "bus", "yellow", None, False)]),
    ("turn teh car red", [(R, "car", "red", None, False)]),
    ("MAKE THE CAR RED", [(R, "car", "red", None, False)]),
    ("hey, make the mug white please", [(R, "mug", "white", None, False)]),
    ("I'd like the jacket in maroon", [(R, "jacket", "maroon", None, False)]),
    # --- plurals and "all"
    ("make all the cars red", [(R, "car", "red", None, True)]),
    ("make the cars red", [(R, "car", "red", None, True)]),
    ("turn every balloon blue", [(R, "balloon", "blue", None, True)]),
    ("remove all people", [(X, "person", None, None, True)]),
    ("remove both dogs", [(X, "dog", None, None, True)]),
    ("paint all of the chairs white", [(R, "chair", "white", None, True)]),
    ("delete the glasses", [(X, "glasses", None, None, False)]),
    ("remove the boxes", [(X, "box", None, None, True)]),
    ("make the leaves orange", [(R, "leaf", "orange", None, True)]),
    # --- spatial qualifiers
    ("remove the person on the left", [(X, "person", None, "left", False)]),
    ("remove the person on the right side", [(X, "person", None, "right", False)]),
    ("make the left lion golden", [(R, "lion", "golden", "left", False)]),
    ("erase the second person from the left", [(X, "person", None, "second from the left", False)]),
    ("make the third car from the right blue", [(R, "car", "blue", "third from the right", False)]),
    ("delete the biggest tree", [(X, "tree", None, "largest", False)]),
    ("remove the smallest boat", [(X, "boat", None, "smallest", False)]),
    ("make the cup in the middle red", [(R, "cup", "red", "middle", False)]),
    ("remove the bird at the top", [(X, "bird", None, "top", False)]),
    ("remove the rightmost bottle", [(X, "bottle", None, "right", False)]),
    ("make the top left window yellow", [(R, "window", "yellow", "top left", False)]),
    ("remove the car in the top right corner", [(X, "car", None, "top right", False)]),
    ("remove the person in the foreground", [(X, "person", None, "in the foreground", False)]),
    ("remove the tallest building", [(X, "building", None, "tallest", False)]),
    ("remove the left one", [(X, "object", None, "left", False)]),
    # --- relations are not targets
    ("remove the cat on the table", [(X, "cat", None, None, False, {"relation": "on the table"})]),
    ("make the cat on the sofa black", [(R, "cat", "black", None, False, {"relation": "on the sofa"})]),
    ("remove the man holding the umbrella", [(X, "man", None, None, False, {"relation": "holding the umbrella"})]),
    ("make the woman wearing a hat blue", [(R, "woman", "blue", None, False, {"relation": "wearing a hat"})]),
    ("delete the dog next to the car", [(X, "dog", None, None, False, {"relation": "next to the car"})]),
    ("remove the lamp that is behind the sofa", [(X, "lamp", None, None, False, {"relation": "that is behind the sofa"})]),
    # --- remove
    ("remove the dog", [(X, "dog", None, None, False)]),
    ("remvoe the dog", [(X, "dog", None, None, False)]),
    ("get rid of the trash can", [(X, "trash can", None, None, False)]),
    ("delete the power lines from the photo", [(X, "power line", None, None, True)]),
    ("erase the watermark", [(X, "watermark", None, None, False)]),
    ("take out the car", [(X, "car", None, None, False)]),
    ("make the car disappear", [(X, "car", None, None, False)]),
    ("i don't want the bench in the picture", [(X, "bench", None, None, False)]),
    ("the trash bag should be removed", [(X, "trash bag", None, None, False)]),
    ("Could you remove the tourists please?", [(X, "tourist", None, None, True)]),
    # --- replace
    ("replace the dog with a cat", [(P, "dog", "cat", None, False)]),
    ("replace the apple with an orange", [(P, "apple", "orange", None, False)]),
    ("swap the apple for an orange", [(P, "apple", "orange", None, False)]),
    ("turn the car into a truck", [(P, "car", "truck", None, False)]),
    ("change the cake into a pizza", [(P, "cake", "pizza", None, False)]),
    ("put a cat instead of the dog", [(P, "dog", "cat", None, False)]),
    ("replace the left vase with a plant", [(P, "vase", "plant", "left", False)]),
    ("repalce the sky with fireworks", [(P, "sky", "fireworks", None, False)]),
    ("transform the horse into a zebra", [(P, "horse", "zebra", None, False)]),
    ("make the dog a lion", [(P, "dog", "lion", None, False)]),
    # --- background
    ("replace the background with a beach at sunset", [(B, "background", "beach at sunset", None, False)]),
    ("change the background to a snowy mountain", [(B, "background", "snowy mountain", None, False)]),
    ("make the background a city at night", [(B, "background", "city at night", None, False)]),
    ("swap the backdrop for a forest", [(B, "background", "forest", None, False)]),
    ("new background: outer space", [(B, "background", "outer space", None, False)]),
    ("put the dog on a beach", [(B, "background", "beach", None, False, {"subject": "dog"})]),
    ("replace the bakground with a studio backdrop", [(B, "background", "studio backdrop", None, False)]),
    # --- add
    ("put a hat on the man", [(A, "man", "hat", None, False, {"relation": "on"})]),
    ("add a boat on the lake", [(A, "lake", "boat", None, False, {"relation": "on"})]),
    ("add a bird above the tree", [(A, "tree", "bird", None, False, {"relation": "above"})]),
    ("place a lamp next to the sofa", [(A, "sofa", "lamp", None, False, {"relation": "next to"})]),
    ("give the man a hat", [(A, "man", "hat", None, False)]),
    ("add a rainbow", [(A, None, "rainbow", None, False)]),
    ("add sunglasses to the woman on the right", [(A, "woman", "sunglasses", "right", False)]),
    # --- style
    ("make it look like winter", [(S, None, "winter", None, False)]),
    ("make it a watercolor", [(S, None, "watercolor", None, False)]),
    ("make it black and white", [(J, None, "saturation -100%", None, False)]),
    ("turn the photo into an oil painting", [(S, None, "oil painting", None, False)]),
    ("make the image look like it was taken at night", [(S, None, "taken at night", None, False)]),
    ("apply a van gogh style", [(S, None, "van gogh", None, False)]),
    ("render it as a pencil sketch", [(S, None, "pencil sketch", None, False)]),
    ("make this photo look like a vintage polaroid", [(S, None, "vintage polaroid", None, False)]),
    ("change the season to autumn", [(S, None, "autumn", None, False)]),
    # --- adjust: deterministic filters
    ("blur the background", [(J, "background", "blur", None, False)]),
    ("blur the faces", [(J, "face", "blur", None, True)]),
    ("pixelate the license plate", [(J, "license plate", "pixelate", None, False)]),
    ("blur the face on the left", [(J, "face", "blur", "left", False)]),
    ("brighten the photo", [(J, None, "brightness +25%", None, False)]),
    ("darken the sky a bit", [(J, "sky", "brightness -12.5%", None, False)]),
    ("increase the contrast by 20%", [(J, None, "contrast +20%", None, False)]),
    ("lower the exposure by 1 stop", [(J, None, "exposure -1ev", None, False)]),
    ("make the background black and white", [(J, "background", "saturation -100%", None, False)]),
    ("desaturate the photo", [(J, None, "saturation -40%", None, False)]),
    ("convert it to grayscale", [(J, None, "saturation -100%", None, False)]),
    ("make the background blurry", [(J, "background", "blur", None, False)]),
    ("blur the background behind the dog", [(J, "background", "blur", None, False, {"subject": "dog"})]),
    # --- relations that stay outside the target, comparatives, "instead of"
    ("remove the food from the bowl", [(X, "food", None, None, False, {"relation": "from the bowl"})]),
    ("remove the cup between the plates", [(X, "cup", None, None, False, {"relation": "between the plates"})]),
    ("remove the bigger dog", [(X, "dog", None, "largest", False)]),
    ("make the smaller car red", [(R, "car", "red", "smallest", False)]),
    ("erase the taller of the two trees", [(X, "tree", None, "tallest", False)]),
    ("make the car blue instead of red", [(R, "car", "blue", None, False)]),
    ("paint the wall green, not yellow", [(R, "wall", "green", None, False)]),
    ("I want a cat instead of the dog", [(P, "dog", "cat", None, False)]),
    # --- pronouns, shorthand and other verbs
    ("the lamp is ugly, get rid of it", [(X, "lamp", None, None, False)]),
    ("there is a cat on the sofa. remove it", [(X, "cat", None, None, False)]),
    ("car -> red", [(R, "car", "red", None, False)]),
    ("let the sky be purple", [(R, "sky", "purple", None, False)]),
    ("convert the car to a truck", [(P, "car", "truck", None, False)]),
    # --- patterns and materials, "look" styles, a person put somewhere, one new object per group
    ("make the shirt striped", [(P, "shirt", "striped shirt", None, False)]),
    ("make the table wooden", [(P, "table", "wooden table", None, False)]),
    ("give it a vintage film look", [(S, None, "vintage film", None, False)]),
    ("put him in front of the Eiffel Tower",
     [(B, "background", "in front of the eiffel tower", None, False, {"subject": "man"})]),
    ("add a lamp next to the bags", [(A, "bag", "lamp", None, True, {"relation": "next to", "each": False})]),
    ("add a hat on each person", [(A, "person", "hat", None, True, {"relation": "on", "each": True})]),
    # --- several edits
    ("make the car red and remove the person on the left",
     [(R, "car", "red", None, False), (X, "person", None, "left", False)]),
    ("make the car red and the bike blue", [(R, "car", "red", None, False), (R, "bike", "blue", None, False)]),
    ("remove the dog and the cat", [(X, "dog", None, None, False), (X, "cat", None, None, False)]),
    ("make the shirt light pink, then remove the hat",
     [(R, "shirt", "light pink", None, False), (X, "hat", None, None, False)]),
    ("replace the sky with fireworks; make the grass greener",
     [(P, "sky", "fireworks", None, False), (R, "grass", "greener", None, False)]),
    ("remove the car, replace the background with a forest and make it look like autumn",
     [(X, "car", None, None, False), (B, "background", "forest", None, False), (S, None, "autumn", None, False)]),
    ("swap the red car with a bicycle and make the sky stormy grey",
     [(P, "red car", "bicycle", None, False), (R, "sky", "stormy grey", None, False)]),
    ("Hey Lasso, can you turn the yellow taxi on the right purple?", [(R, "yellow taxi", "purple", "right", False)]),
    ("make the 3rd window from the left dark blue", [(R, "window", "dark blue", "third from the left", False)]),
    ("first remove the sign then make the door blue", [(X, "sign", None, None, False), (R, "door", "blue", None, False)]),
]


@pytest.mark.parametrize("instruction,expected", TABLE, ids=[t[0][:50] for t in TABLE])
def test_rules_table(instruction, expected):
    edits, skipped = parse_instruction(instruction)
    got = [(e.action.value, e.target, e.value, e.qualifier, e.select_all) for e in edits]
    assert got == [tuple(x[:5]) for x in expected], f"{instruction!r}: {got}"
    assert skipped == []
    for e, x in zip(edits, expected):
        for k, v in (x[5] if len(x) > 5 else {}).items():
            assert getattr(e, k) == v, f"{instruction!r}: {k}={getattr(e, k)!r}"


@pytest.mark.parametrize("text", ["", "   ", "hello there", "asdf qwer", "what is this?"])
def test_nonsense_and_empty_raise_a_clear_error(text):
    with pytest.raises(InvalidInstructionError):
        parse_instruction(text)


def test_partially_understood_instruction_is_refused_unless_the_rest_is_asked_for():
    """Issue 28 #15: a part not understood stops the instruction, naming it; asked, the rest is made."""
    from lasso_edit.core.errors import UnsupportedEditError

    with pytest.raises(UnsupportedEditError, match="did not understand 'sing a song'.*--skip-unknown") as e:
        RulesParser().parse(None, "make the car red and sing a song")
    assert e.value.parts == ["sing a song"]
    plan = RulesParser().parse(None, "make the car red and sing a song", skip_unknown=True)
    assert [e.action.value for e in plan.edits] == ["recolor"]
    assert plan.source == "rules"


# --- The same table through the VLM-answer parser, fed answers in the styles LLaVA writes them.
def _target_phrase(action, target, qualifier, select_all, extra):
    """How a VLM names the target in free text: qualifier and relation inside the noun phrase."""
    if target is None or action == B:
        return extra.get("subject") or ("background" if action == B else None)
    phrase = f"all the {target}s" if select_all else target
    if qualifier:
        if " from the " in qualifier:
            ordinal, side = qualifier.split(" from the ")
            phrase = f"{ordinal} {phrase} from the {side}"
        elif qualifier in ("left", "right", "top", "bottom"):
            phrase = f"{phrase} on the {qualifier}"
        elif qualifier == "middle":
            phrase = f"{phrase} in the middle"
        elif qualifier.startswith("in the "):
            phrase = f"{phrase} {qualifier}"
        elif qualifier in ("top left", "top right", "bottom left", "bottom right"):
            phrase = f"{phrase} in the {qualifier} corner"
        else:
            phrase = f"{qualifier} {phrase}"
    if extra.get("relation") and action != A:
        phrase = f"{phrase} {extra['relation']}"
    return phrase


def _answer(expected, style):
    import json

    items = []
    for x in expected:
        action, target, value, qualifier, select_all = x[:5]
        extra = x[5] if len(x) > 5 else {}
        d = {"action": action, "target": _target_phrase(action, target, qualifier, select_all, extra), "value": value}
        if action == A and extra.get("relation"):
            d["relation"] = extra["relation"]
        items.append(d)
    body = json.dumps({"edits": items})
    if style == "clean":
        return body
    return f"Sure! Here is the plan for your edit:\n```json\n{body}\n```\nLet me know if you need anything else."


_VLM_ROWS = [(i, e) for i, e in TABLE if not (len(e) == 1 and e[0][0] == A and e[0][1] is None)]


@pytest.mark.parametrize("style", ["clean", "prose", "sentence"])
@pytest.mark.parametrize("instruction,expected", _VLM_ROWS, ids=[t[0][:40] for t in _VLM_ROWS])
def test_vlm_answers_give_the_same_plan(instruction, expected, style):
    from lasso_edit.imaging.geometry import VisionFrame
    from lasso_edit.parse.answer import edits_from_answer

    said = instruction.rstrip(".!?")
    if style == "sentence" and said.startswith(("the lamp", "there is")):
        pytest.skip("a pronoun's antecedent in an earlier sentence: the VLM's sentences are read one by one")
    text = _answer(expected, style) if style != "sentence" else f"Sure. I will {said}."
    edits = edits_from_answer(text, VisionFrame.identity(100, 100))
    got = [(e.action.value, e.target, e.value, e.qualifier, e.select_all) for e in edits]
    assert got == [tuple(x[:5]) for x in expected], text


def test_long_instructions_and_many_edits_are_refused_with_the_limit():
    from lasso_edit.core.errors import InvalidInstructionError
    from lasso_edit.parse.limits import MAX_EDITS, MAX_INSTRUCTION_CHARS
    from lasso_edit.parse.rules import parse_instruction

    with pytest.raises(InvalidInstructionError, match=f"at most {MAX_INSTRUCTION_CHARS:,}") as e:
        parse_instruction("make the car red" + ", " * 50_000)
    assert len(str(e.value)) < 250  # an excerpt, not the whole instruction
    many = " and ".join(f"remove the {w}" for w in ["dog", "cat", "car", "bike", "tree", "sign", "lamp", "cup", "hat"])
    with pytest.raises(InvalidInstructionError, match=f"at most {MAX_EDITS}"):
        parse_instruction(many)
    assert len(parse_instruction(" and ".join(many.split(" and ")[:MAX_EDITS]))[0]) == MAX_EDITS
    with pytest.raises(InvalidInstructionError) as e:
        parse_instruction("blah " * 300)
    assert len(str(e.value)) < 250


def test_a_line_break_separates_edits():
    from lasso_edit.parse.rules import parse_instruction

    edits, _ = parse_instruction("make the car red\nremove the dog\r\n  replace the background with a beach")
    assert [e.action.value for e in edits] == ["recolor", "remove", "background"]


# Issue 16 #19: the classes of real-user phrasing a held-back MagicBrush-style set found the rules
# parser reading wrong 20% of the time; these phrasings are our own, a few for each class.
# (instruction, [(action, target, value, qualifier)]); None where a field is not checked.
_PHRASING_CLASSES = {
    "hypothetical": [
        ("what if the train was green", [("recolor", "train", "green", None)]),
        ("imagine the horse were a zebra", [("replace", "horse", "zebra", None)]),
        ("what if there was a bird on the fence", [("add", "fence", "bird", None)]),
        ("suppose the door were painted red", [("recolor", "door", "red", None)]),
        ("what if the girl had a red scarf", [("add", "girl", "red scarf", None)]),
        ("wouldn't it be cool if the boat was a pirate ship", [("replace", "boat", "pirate ship", None)]),
    ],
    "needs": [
        ("the cat needs a bow tie", [("add", "cat", "bow tie", None)]),
        ("the shelf could use some books", [("add", "shelf", "books", None)]),
        ("the wall is missing a clock", [("add", "wall", "clock", None)]),
        ("the snowman needs a carrot nose", [("add", "snowman", "carrot nose", None)]),
        ("the bed wants a pillow", [("add", "bed", "pillow", None)]),
    ],
    "no more": [
        ("no more birds", [("remove", "bird", None, None)]),
        ("no more cars on the street", [("remove", "car", None, None)]),
        ("no people", [("remove", "person", None, None)]),
        ("without the umbrella", [("remove", "umbrella", None, None)]),
        ("enough of the graffiti", [("remove", "graffiti", None, None)]),
    ],
    "preference": [
        ("i'd prefer the walls in grey", [("recolor", "wall", "grey", None)]),
        ("i would rather have the bike orange", [("recolor", "bike", "orange", None)]),
        ("i'd like the towel to be pink", [("recolor", "towel", "pink", None)]),
        ("i'd love a rainbow in the sky", [("add", "sky", "rainbow", None)]),
        ("we'd prefer the roof brown", [("recolor", "roof", "brown", None)]),
        ("i want a cat on the sofa", [("add", "sofa", "cat", None)]),
    ],
    "modal": [
        ("the lamp ought to be a candle", [("replace", "lamp", "candle", None)]),
        ("the fence has to be white", [("recolor", "fence", "white", None)]),
        ("the chair would look better in yellow", [("recolor", "chair", "yellow", None)]),
        ("the clock should become a mirror", [("replace", "clock", "mirror", None)]),
        ("the truck must be blue", [("recolor", "truck", "blue", None)]),
        ("the bear could be a panda", [("replace", "bear", "panda", None)]),
    ],
    "possessive after a spatial word": [
        ("make the woman on the left's dress purple", [("recolor", "woman's dress", "purple", "left")]),
        ("remove the man in the middle's hat", [("remove", "man's hat", None, "middle")]),
        ("turn the dog on the right's collar gold", [("recolor", "dog's collar", "gold", "right")]),
        ("make the boy on the far left's shirt white", [("recolor", "boy's shirt", "white", "left")]),
    ],
    "verbless follow-on": [
        ("and make the street wet", [("replace", "street", "wet street", None)]),
        ("then the car silver", [("recolor", "car", "silver", None)]),
        ("and the sky orange", [("recolor", "sky", "orange", None)]),
        ("make the field snowy and the trees white", [("replace", "field", "snowy field", None),
                                                     ("recolor", "tree", "white", None)]),
        ("also the door red", [("recolor", "door", "red", None)]),
    ],
}


def _reads_as(instruction, expected) -> bool:
    try:
        edits, _ = parse_instruction(instruction)
    except Exception:  # noqa: BLE001 - not understood counts as read wrong
        return False
    if len(edits) != len(expected):
        return False
    for e, (action, target, value, qualifier) in zip(edits, expected):
        if e.action.value != action or e.target != target:
            return False
        if value is not None and e.value != value:
            return False
        if qualifier is not None and e.qualifier != qualifier:
            return False
    return True


@pytest.mark.parametrize("cls", list(_PHRASING_CLASSES))
def test_each_class_of_real_user_phrasing_is_read(cls):
    wrong = [t for t, expected in _PHRASING_CLASSES[cls] if not _reads_as(t, expected)]
    assert not wrong, f"{cls}: read wrong: {wrong}"


def test_the_new_readings_do_not_steal_phrasings_that_mean_something_else():
    assert parse_instruction("the lamp is ugly, get rid of it")[0][0].action.value == "remove"
    assert parse_instruction("make it black and white")[0][0].action.value == "adjust"
    with pytest.raises(Exception, match="could not understand"):
        parse_instruction("the cat on the table")  # a description, no edit
    for said in ("no idea what to do", "no json here", "no way"):  # "no" before what is no thing in the picture
        with pytest.raises(Exception, match="could not understand"):
            parse_instruction(said)


@pytest.mark.parametrize("words,qualifier", [("remove the leftmost person", "left"), ("remove the rightmost person", "right"),
                                             ("remove the topmost lamp", "top"), ("remove the bottommost lamp", "bottom")])
def test_most_words_keep_their_side(words, qualifier):
    """Issue 18's surviving mutation: `leftmost` aliased to `right`."""
    edits, _ = parse_instruction(words)
    assert edits[0].qualifier == qualifier


def test_the_instruction_limit_takes_exactly_the_limit_and_refuses_one_more():
    """Issue 18's surviving mutation: the limit's `>` changed to `>=`."""
    from lasso_edit.parse.limits import MAX_INSTRUCTION_CHARS, check_instruction

    words = "remove the dog " * MAX_INSTRUCTION_CHARS
    at = words[:MAX_INSTRUCTION_CHARS]
    assert check_instruction(at) == at
    with pytest.raises(InvalidInstructionError, match="at most"):
        check_instruction(words[:MAX_INSTRUCTION_CHARS + 1])


def test_the_rules_parser_warns_about_what_it_left_out():
    from lasso_edit.parse.rules import RulesParser

    plan = RulesParser().parse(None, "make the car red and sing a song", skip_unknown=True)
    assert [e.target for e in plan.edits] == ["car"]
    assert plan.warnings == ["did not understand 'sing a song'; it was left out of the plan"]


def test_an_instruction_with_a_lone_surrogate_is_refused_in_words():
    """JSON's "\\ud800" reaches Lasso as a str no tokenizer or file can take: one line, not a TypeError."""
    import pytest

    from lasso_edit.core.errors import InvalidInstructionError
    from lasso_edit.parse.limits import check_instruction

    with pytest.raises(InvalidInstructionError, match="lone UTF-16 surrogate"):
        check_instruction("make the car \ud800 red")
    assert check_instruction("make the car red ✓") == "make the car red ✓"
