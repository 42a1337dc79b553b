"""Grounding strategies on what a detector would have said, and where `add` puts a new object
relative to its anchor."""

from lasso_edit.core.plan import Action, Edit
from lasso_edit.ground.strategies import AutoGrounder, placement

from ..helpers import Detections, noise_image


def test_the_auto_grounder_falls_back_to_the_vlm_box_when_nothing_is_detected():
    grounder = AutoGrounder(Detections({"dog": ([(0, 0, 5, 5)], [0.05])}), threshold=0.3)
    g = grounder.ground(noise_image(40, 100), Edit(Action.REMOVE, "dog", box=(10, 5, 30, 25)))
    assert g.source == "vlm" and g.boxes == [(10, 5, 30, 25)]
    assert "used the VLM's box" in g.warnings[0]


# --------------------------------------------------------------------------- placement
MAN = (100.0, 50.0, 200.0, 350.0)  # a standing figure in a 400x400 image
SIZE = (400, 400)


def _center(b):
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def test_hat_goes_over_the_head_and_is_head_sized():
    b = placement(MAN, "on", SIZE, "hat")
    cx, cy = _center(b)
    assert 140 <= cx <= 160 and cy < 50 + 0.15 * 300
    assert b[2] - b[0] <= 0.6 * 100


def test_sunglasses_go_on_the_face():
    b = placement(MAN, "on", SIZE, "sunglasses")
    assert 50 < _center(b)[1] < 50 + 0.2 * 300


def test_beside_goes_to_the_side_with_room():
    right = placement((20.0, 100.0, 120.0, 300.0), "next to", SIZE, "lamp")
    left = placement((280.0, 100.0, 380.0, 300.0), "next to", SIZE, "lamp")
    assert right[0] >= 120 and left[2] <= 280


def test_under_above_and_inside_a_large_anchor():
    under = placement(MAN, "under", SIZE, "dog")
    assert under[1] == 350 and under[3] == 400  # below the feet, clipped to the image
    assert placement(MAN, "above", SIZE, "bird")[3] <= 50
    lake = (0.0, 200.0, 400.0, 400.0)
    b = placement(lake, "on", SIZE, "boat")
    assert lake[0] <= b[0] < b[2] <= lake[2] and lake[1] <= b[1] < b[3] <= lake[3]


def test_no_anchor_is_the_centre_and_boxes_stay_in_the_image():
    assert placement(None, None, SIZE) == (400 / 3, 400 / 3, 800 / 3, 800 / 3)
    top = placement((0.0, 0.0, 50.0, 60.0), "above", SIZE, "bird")
    assert all(0 <= v <= 400 for v in top)
