"""Turning a VLM's text into edits: realistic LLaVA-style answers in several styles, and junk."""

import pytest

from lasso_edit.imaging.geometry import VisionFrame
from lasso_edit.parse.answer import PlanParseError, edits_from_answer, extract_json

FRAME = VisionFrame.identity(200, 100)  # fractions of a 200x100 image

# (answer text, expected [(action, target, value, qualifier, select_all)], expected first box or None)
ANSWERS = [
    # clean JSON, as asked
    ('{"edits":[{"action":"recolor","target":"car","value":"red","box":[0.1,0.2,0.5,0.8]}]}',
     [("recolor", "car", "red", None, False)], (20.0, 20.0, 100.0, 80.0)),
    # LLaVA-1.5 often wraps in a fence and adds a sentence
    ('```json\n{"edits": [{"action": "remove", "target": "dog", "value": null, "box": [0.55, 0.3, 0.9, 0.95]}]}\n```\n'
     "This removes the dog from the image.",
     [("remove", "dog", None, None, False)], (110.0, 30.0, 180.0, 95.0)),
    # JSON in prose
    ('Sure! Here is the plan: {"edits": [{"action": "replace", "target": "the dog", "value": "a cat"}]} Let me know.',
     [("replace", "dog", "cat", None, False)], None),
    # single quotes and Python literals
    ("{'edits': [{'action': 'background', 'target': 'background', 'value': 'a beach at sunset', 'box': None}]}",
     [("background", "background", "beach at sunset", None, False)], None),
    # trailing commas, bare keys
    ('{edits: [{action: "recolor", target: "dress", value: "navy blue",},],}',
     [("recolor", "dress", "navy blue", None, False)], None),
    # cut off mid-answer (max_new_tokens reached)
    ('{"edits":[{"action":"recolor","target":"car","value":"red"},{"action":"remove","target":"person on the left","val',
     [("recolor", "car", "red", None, False), ("remove", "person", None, "left", False)], None),
    # a bare list, synonyms for actions, a spatial phrase inside the target
    ('[{"action": "delete", "target": "second person from the left"}, {"action": "colour", "object": "cars", "color": "blue"}]',
     [("remove", "person", None, "second from the left", False), ("recolor", "car", "blue", None, True)], None),
    # a single edit object, not wrapped
    ('{"action": "style", "value": "watercolor painting"}', [("style", None, "watercolor painting", None, False)], None),
    # per-mille boxes (some VLMs answer 0-1000)
    ('{"edits":[{"action":"remove","target":"sign","box":[100,200,500,800]}]}',
     [("remove", "sign", None, None, False)], (20.0, 20.0, 100.0, 80.0)),
    # a plain sentence, no JSON
    ("The user wants to change the color of the car to red.", [("recolor", "car", "red", None, False)], None),
    ("Sure, I will remove the dog on the right.", [("remove", "dog", None, "right", False)], None),
    # box given as a string; explicit qualifier and all
    ('{"edits":[{"action":"recolor","target":"cup","value":"green","qualifier":"left","all":false,"bbox":"[0.0, 0.0, 0.5, 0.5]"}]}',
     [("recolor", "cup", "green", "left", False)], (0.0, 0.0, 100.0, 50.0)),
]


@pytest.mark.parametrize("text,expected,box", ANSWERS, ids=[a[0][:40] for a in ANSWERS])
def test_realistic_answers(text, expected, box):
    edits = edits_from_answer(text, FRAME)
    assert [(e.action.value, e.target, e.value, e.qualifier, e.select_all) for e in edits] == expected
    if box is not None:
        assert edits[0].box == pytest.approx(box)


JUNK = [
    "", "   ", "\ufffd\ufffd of cat 6\n f\ufffd", "I cannot help with that.", "{}", '{"edits": []}',
    '{"edits": [{"action": "explode", "target": "car"}]}', '{"edits": [{"action": "recolor", "value": "red"}]}',
    '{"edits": [{"action": "replace", "target": "dog"}]}', "[[[[", "{'a': 1", '"just a string"', "12345",
]


@pytest.mark.parametrize("text", JUNK)
def test_junk_raises_plan_parse_error_only(text):
    with pytest.raises(PlanParseError):
        edits_from_answer(text, FRAME)


def test_random_bytes_never_crash():
    import random

    rng = random.Random(0)
    alphabet = '{}[]",:\'abc actionrecolortargetvalue 0.5\n`'
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80)))
        try:
            edits_from_answer(text, FRAME)
        except PlanParseError:
            pass


def test_bad_boxes_are_dropped_not_fatal():
    for box in ("[0.5, 0.5, 0.5, 0.9]", "[1, 2, 3]", '"left side"', "[-5000, 0, 2, 3]"):
        edits = edits_from_answer('{"edits":[{"action":"remove","target":"car","box":%s}]}' % box, FRAME)
        assert edits[0].box is None


def test_box_is_mapped_through_the_processor_frame():
    from transformers import CLIPImageProcessor

    proc = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
    frame = VisionFrame.from_image_processor(proc, 800, 400)  # centre crop shows x in [200, 600]
    edits = edits_from_answer('{"edits":[{"action":"remove","target":"car","box":[0,0,0.5,1]}]}', frame)
    x0, y0, x1, y1 = edits[0].box
    assert abs(x0 - 200) < 2 and abs(x1 - 400) < 2 and y0 == 0 and abs(y1 - 400) < 2


def test_extract_json_prefers_the_fenced_block():
    assert extract_json('noise {"a": 1} ```json\n{"b": 2}\n```') == {"b": 2}
