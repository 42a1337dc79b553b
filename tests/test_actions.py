"""actions/: one spec per action, which the plan, refine, the editor, the executor and the schema read."""

import pytest

from lasso_edit.actions import REFINE_POLICIES, SPECS, spec
from lasso_edit.edit.inpaint import prompts
from lasso_edit.plan import Action, Edit
from lasso_edit.registry import EXECUTORS


def test_every_action_has_a_spec_and_every_spec_an_action():
    assert set(SPECS) == {a.value for a in Action}
    for a in Action:
        s = spec(a)
        assert s is spec(a.value) and s.refine in REFINE_POLICIES
        for mode in ("texture", "inpaint"):
            assert s.executor(Edit(a, "car", "red"), mode) in EXECUTORS.names()


@pytest.mark.parametrize("edit,sentence", [
    (Edit(Action.RECOLOR, "car", "red", qualifier="left"), "make the car (left) red"),
    (Edit(Action.REMOVE, "wheel", select_all=True), "remove all the wheels"),
    (Edit(Action.REPLACE, "dog", "cat"), "replace the dog with cat"),
    (Edit(Action.BACKGROUND, None, "a beach", subject="dog"), "replace the background behind the dog with a beach"),
    (Edit(Action.ADD, "table", "vase", relation="on"), "add vase on the table"),
    (Edit(Action.STYLE, None, "watercolor"), "restyle the image: watercolor"),
    (Edit(Action.ADJUST, "background", "saturation -100%"), "black and white: the background"),
])
def test_the_plan_reads_its_sentence_from_the_spec(edit, sentence):
    assert edit.describe() == sentence


def test_captions_and_policies_are_the_specs():
    assert prompts(Edit(Action.RECOLOR, "car", "red"))[0] == "a red car, photo, natural lighting"
    assert "car" in prompts(Edit(Action.REMOVE, "car"))[1]  # what is removed is what to avoid
    assert prompts(Edit(Action.REPLACE, "dog", "cat", prompt="mine"))[0] == "mine"  # a plan's own prompt wins
    assert spec(Action.REMOVE).shadow and spec(Action.REMOVE).refine == "grown"
    assert spec(Action.BACKGROUND).refine == "inverse" and spec(Action.BACKGROUND).whole_crop
    assert spec(Action.STYLE).uses_strength and not spec(Action.REPLACE).uses_strength
    assert not Action.REMOVE.needs_value and Action.RECOLOR.needs_value
    assert spec(Action.ADJUST).executor(Edit(Action.ADJUST, None, "blur"), "texture") == "adjust"
    assert spec(Action.RECOLOR).executor(Edit(Action.RECOLOR, "car", "red"), "inpaint") == "inpaint"


def test_a_bad_refine_policy_is_refused_when_a_spec_is_written():
    from lasso_edit.actions import ActionSpec

    with pytest.raises(ValueError, match="refine must be one of"):
        ActionSpec("smudge", needs_target=True, needs_value=False, refine="smudged",
                   caption=lambda e: ("", ""), sentence=lambda e, w, v: "")
