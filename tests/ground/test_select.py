"""Choosing among detections, on synthetic boxes: every qualifier, "all", the VLM's hint, scores."""

import pytest

from lasso_edit.core.errors import TargetNotFoundError
from lasso_edit.core.plan import Action, Edit
from lasso_edit.ground.select import apart, iou, nms, select
from lasso_edit.ground.strategies import DetectorGrounder

from ..helpers import Detections, noise_image

# Three "people" on a 300x200 image: small far-left high, big middle low, medium right.
BOXES = [(10, 20, 50, 80), (120, 60, 200, 195), (230, 40, 280, 150)]
SCORES = [0.5, 0.4, 0.9]
SIZE = (300, 200)


@pytest.mark.parametrize("qualifier,expected", [
    ("left", 0), ("right", 2), ("top", 0), ("bottom", 1), ("middle", 1), ("largest", 1), ("closest", 1),
    ("smallest", 0), ("farthest", 0), ("tallest", 1), ("shortest", 0), ("in the foreground", 1),
    ("in the background", 0), ("first from the left", 0), ("second from the left", 1), ("third from the left", 2),
    ("second from the right", 1), ("last from the right", 0), ("first from the top", 0), ("top left", 0),
    ("bottom right", 2), ("top right", 2), ("bottom left", 0),  # corners: the centre nearest the corner
])
def test_qualifiers(qualifier, expected):
    assert select(BOXES, SCORES, qualifier=qualifier, image_size=SIZE) == [expected]


def test_no_qualifier_takes_best_score():
    assert select(BOXES, SCORES) == [2]


def test_vlm_hint_breaks_ties_when_it_overlaps():
    assert select(BOXES, SCORES, hint=(115, 55, 205, 190)) == [1]
    assert select(BOXES, SCORES, hint=(0, 190, 5, 199)) == [2]  # no overlap: best score


def test_select_all_returns_every_instance_left_to_right():
    assert select(BOXES, SCORES, select_all=True) == [0, 1, 2]


def test_qualifier_beats_hint_and_unknown_qualifier_falls_back():
    assert select(BOXES, SCORES, qualifier="left", hint=BOXES[2]) == [0]
    assert select(BOXES, SCORES, qualifier="the shiny one") == [2]


def test_ordinal_past_the_end_takes_the_last():
    assert select(BOXES, SCORES, qualifier="fifth from the left") == [2]


def test_nms_and_iou():
    boxes = [(0, 0, 10, 10), (1, 1, 10, 10), (20, 20, 30, 30)]
    assert iou(boxes[0], boxes[0]) == 1.0 and iou(boxes[0], boxes[2]) == 0.0
    assert nms(boxes, [0.9, 0.8, 0.7]) == [0, 2]


def test_empty():
    assert select([], []) == []


def test_a_relation_picks_the_candidate_nearest_its_object():
    cats = ([(0, 0, 10, 10), (80, 0, 90, 10)], [0.9, 0.8])
    table = ([(75, 10, 100, 30)], [0.9])
    grounder = DetectorGrounder(Detections({"cat": cats, "table": table}), threshold=0.3)
    g = grounder.ground(noise_image(40, 100), Edit(Action.REMOVE, "cat", relation="on the table"))
    assert g.boxes == [(80, 0, 90, 10)]  # the second-best cat, the one on the table


def test_a_relation_whose_object_is_not_found_keeps_the_best_candidate():
    cats = ([(0, 0, 10, 10), (80, 0, 90, 10)], [0.9, 0.8])
    grounder = DetectorGrounder(Detections({"cat": cats}), threshold=0.3)
    g = grounder.ground(noise_image(40, 100), Edit(Action.REMOVE, "cat", relation="on the table"))
    assert g.boxes == [(0, 0, 10, 10)]


def test_the_other_one_sets_aside_the_instance_edited_before_and_none_left_is_said():
    people = (BOXES, SCORES)
    grounder = DetectorGrounder(Detections({"person": people}), threshold=0.3)
    img = noise_image(SIZE[1], SIZE[0])
    first = grounder.ground(img, Edit(Action.REMOVE, "person"))
    assert first.boxes == [BOXES[2]]  # the best score
    other = grounder.ground(img, Edit(Action.REMOVE, "person", avoid=BOXES[2]))
    assert other.boxes == [BOXES[0]] and BOXES[2] not in other.candidates  # the best of the rest
    left = grounder.ground(img, Edit(Action.REMOVE, "person", avoid=BOXES[0], qualifier="left"))
    assert left.boxes == [BOXES[1]]  # "the left one" among those not edited before
    alone = DetectorGrounder(Detections({"person": ([BOXES[2]], [0.9])}), threshold=0.3)
    with pytest.raises(TargetNotFoundError, match="no other instance than the one edited before"):
        alone.ground(img, Edit(Action.REMOVE, "person", avoid=(231, 41, 279, 149)))  # the same one, near enough


def test_apart_keeps_boxes_that_are_not_the_one_avoided():
    assert apart(BOXES, BOXES[1]) == [0, 2]
    assert apart(BOXES, (0, 0, 1, 1)) == [0, 1, 2]
