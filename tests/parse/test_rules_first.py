"""parse/rules_first.py: the `fast` preset plans by the rules and asks the VLM only when it must."""

import numpy as np
import pytest

from lasso_edit.core.plan import EditPlan
from lasso_edit.parse.rules_first import SOURCE, RulesFirstParser, needs_picture


class CountingVlm:
    """The VLM stage as the parser sees it, counting the asks (a real one is used end to end below)."""

    def __init__(self):
        self.asked = []

    def parse(self, image, instruction):
        from lasso_edit.parse.rules import RulesParser

        self.asked.append(instruction)
        plan = RulesParser().parse(image, "remove the car")
        plan.source = "vlm"
        return plan


@pytest.mark.parametrize("instruction", ["remove the car", "make the shirt red", "blur the background",
                                         "replace the sky with a sunset", "make the dog black and white",
                                         "remove that lamp"])
def test_a_regular_instruction_is_planned_by_the_rules_without_the_vlm(instruction):
    vlm = CountingVlm()
    plan = RulesFirstParser(lambda: vlm).parse(np.zeros((8, 8, 3), np.uint8), instruction)
    assert vlm.asked == [] and plan.source == SOURCE and plan.edits


@pytest.mark.parametrize("instruction", ["remove it", "get rid of the distraction", "make that thing blue",
                                         "remove the ugly stuff", "xyzzy plugh", "can you fix whatever looks off",
                                         "make it red", "make this red", "remove them",
                                         "make this car blue"])  # the rules misread it as a style of the photo
def test_the_vlm_is_asked_when_the_rules_cannot_read_it_or_it_needs_the_picture(instruction):
    vlm = CountingVlm()
    plan = RulesFirstParser(lambda: vlm).parse(np.zeros((8, 8, 3), np.uint8), instruction)
    assert vlm.asked == [instruction] and plan.source == "vlm"


def test_needs_picture_reads_only_targets_that_name_no_kind_of_thing():
    assert needs_picture("it") and needs_picture("the main subject") and needs_picture("that thing")
    assert not needs_picture("car") and not needs_picture("the red car") and not needs_picture(None)


def test_the_fast_preset_plans_rules_first_and_records_it(tiny_dir):
    """The preset's parser is rules-first; a plan by rules loads no VLM and says so in its source."""
    from lasso_edit import Editor
    from lasso_edit.core.presets import PRESETS, get_preset

    assert PRESETS["fast"].parser == "rules-first" and PRESETS["balanced"].parser == "auto"
    fast_like = get_preset("tiny")
    import dataclasses

    editor = Editor.from_preset(dataclasses.replace(fast_like, parser="rules-first"), device="cpu")
    assert editor.parser_name == "rules-first"
    rgb = np.full((64, 64, 3), 120, np.uint8)
    res = editor(rgb, "make the car red", seed=1, dry_run=True)
    assert res.plan.source == SOURCE and "vlm" not in editor.loaded
    res = editor(rgb, "make it red", seed=1, dry_run=True)  # needs the picture: the tiny VLM is asked
    assert res.plan.source != SOURCE and "vlm" in editor.loaded
    assert isinstance(res.plan, EditPlan)


def test_a_clause_the_rules_left_out_sends_the_whole_instruction_to_the_vlm():
    """The rules read "make the shirt red" but leave "sing a song" out (`skipped`): a plan of half the
    instruction is not the rules' to give, so the VLM is asked for all of it."""
    from lasso_edit.parse.rules import parse_instruction

    instruction = "make the shirt red and sing a song"
    edits, skipped = parse_instruction(instruction)
    assert [e.target for e in edits] == ["shirt"] and skipped == ["sing a song"]  # what this test leans on
    vlm = CountingVlm()
    plan = RulesFirstParser(lambda: vlm).parse(np.zeros((8, 8, 3), np.uint8), instruction)
    assert vlm.asked == [instruction] and plan.source == "vlm"
