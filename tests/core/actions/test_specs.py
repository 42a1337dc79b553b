"""actions/: one spec per action, which the plan, refine, the editor, the executor and the schema read."""

import pytest

from lasso_edit.core.actions import REFINE_POLICIES, SPECS, spec
from lasso_edit.core.plan import Action, Edit
from lasso_edit.core.registry import EXECUTORS
from lasso_edit.edit.inpaint import prompts


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
    from lasso_edit.core.actions import ActionSpec

    with pytest.raises(ValueError, match="refine must be one of"):
        ActionSpec("smudge", needs_target=True, needs_value=False, refine="smudged",
                   caption=lambda e: ("", ""), sentence=lambda e, w, v: "")


def test_the_vlm_prompt_and_answer_schema_name_every_spec():
    from lasso_edit.parse.answer import ACTION_SYNONYMS
    from lasso_edit.parse.loop import ANSWER_SCHEMA, PROMPT

    names = list(SPECS)  # "action: recolor, replace, remove, background, add, style or adjust."
    assert f"action: {', '.join(names[:-1])} or {names[-1]}." in PROMPT
    assert ANSWER_SCHEMA["items"]["prefixItems"][0]["enum"] == list(SPECS)
    for name, s in SPECS.items():
        assert all(ACTION_SYNONYMS[w] is Action(name) for w in (name, *s.words))


def test_the_mask_an_edit_takes_is_its_specs():
    assert Edit(Action.ADJUST, None, "blur").mask_action is Action.STYLE
    assert Edit(Action.ADJUST, "background", "blur").mask_action is Action.BACKGROUND
    assert Edit(Action.ADJUST, "face", "blur").mask_action is Action.RECOLOR
    assert Edit(Action.ADJUST, None, "blur").region == "whole"
    assert Edit(Action.BACKGROUND, "background", "a beach").region == "inverse"
    assert Edit(Action.ADD, "table", "vase").anchored and not Edit(Action.REPLACE, "dog", "cat").anchored


# A child process: the parsers read the specs when they are imported, as they would a new action's.
_SPEC_WORDS = r'''
from dataclasses import replace
from lasso_edit.core.actions import specs
specs.SPECS["remove"] = replace(
    specs.SPECS["remove"], verbs=("obliterate",), phrases=(r"^obliterate\s+(?P<t>.+)$",),
    words=specs.SPECS["remove"].words + ("obliterate",), list_continues=None,
)
from lasso_edit.parse.answer import edits_from_answer
from lasso_edit.parse.rules import parse_instruction
edits, skipped = parse_instruction("obliterate the old car and make the sky blue")
print([(e.action.value, e.target, e.value) for e in edits], skipped)
print([(e.action.value, e.target) for e in edits_from_answer('[["obliterate","lamp",null,null]]', None)])
edits, skipped = parse_instruction("remove the dog and the cat")
print([(e.action.value, e.target) for e in edits], skipped)
'''


def test_the_parsers_read_an_actions_verbs_phrases_and_words_from_its_spec():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SPEC_WORDS], capture_output=True, text=True, timeout=None, check=True)
    lines = out.stdout.splitlines()
    assert lines[0].startswith("[('remove', 'old car', None), ('recolor', ")  # its phrase; its verb splits
    assert lines[1] == "[('remove', 'lamp')]"  # a VLM's word for it
    assert lines[2] != "[('remove', 'dog'), ('remove', 'cat')] []"  # no list follow-on without list_continues
