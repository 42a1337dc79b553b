"""The auto parser: the VLM's plan enriched by the rules parser's details, the model's text replaced."""

import pytest

from lasso_edit.core.plan import Action
from lasso_edit.parse.auto import AutoParser

from ..helpers import noise_image


@pytest.fixture(scope="module")
def vlm(tiny_dir):
    from lasso_edit.parse.llava import LlavaParser

    return LlavaParser.from_pretrained(str(tiny_dir / "vlm"))


def _answering(vlm, monkeypatch, answer: str):
    """The real LlavaParser (prompting, answer parsing, frame mapping), the model's text replaced."""
    monkeypatch.setattr(vlm, "ask", lambda image, text: answer)
    monkeypatch.setattr(vlm, "constrained", False)
    return AutoParser(vlm)


def test_auto_parser_adds_the_rules_details_the_vlm_left_out(vlm, monkeypatch):
    parser = _answering(vlm, monkeypatch, '{"edits": [{"action": "recolor", "target": "car", "value": "red"}, '
                                          '{"action": "remove", "target": "cat"}]}')
    plan = parser.parse(noise_image(64, 64), "make the second car from the left red and remove all the cats "
                                             "on the sofa")
    assert plan.source == "vlm"
    car, cat = plan.edits
    assert (car.target, car.value, car.qualifier) == ("car", "red", "second from the left")
    assert cat.select_all and cat.relation == "on the sofa"


def test_auto_parser_keeps_what_the_vlm_said(vlm, monkeypatch):
    parser = _answering(vlm, monkeypatch, '{"edits": [{"action": "recolor", "target": "car", "value": "red", '
                                          '"qualifier": "rightmost"}]}')
    plan = parser.parse(noise_image(64, 64), "make the left car red")
    assert plan.edits[0].qualifier == "rightmost"


def test_auto_parser_merges_nothing_when_the_plans_disagree(vlm, monkeypatch):
    parser = _answering(vlm, monkeypatch, '{"edits": [{"action": "remove", "target": "car"}]}')
    plan = parser.parse(noise_image(64, 64), "make the left car red")  # the rules read a recolour
    assert plan.edits[0].action is Action.REMOVE and plan.edits[0].qualifier is None
