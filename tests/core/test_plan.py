"""The plan's types: what a step says of itself."""



def test_step_summaries_read_as_sentences():
    from lasso_edit.core.plan import Action, Edit

    assert Edit(Action.BACKGROUND, "background", "a snowy forest").describe() == \
        "replace the background with a snowy forest"
    assert Edit(Action.BACKGROUND, "background", "a beach", subject="dog").describe() == \
        "replace the background behind the dog with a beach"
    assert Edit(Action.REMOVE, "wheel", select_all=True).describe() == "remove all the wheels"
    assert Edit(Action.RECOLOR, "car", "red", qualifier="left").describe() == "make the car (left) red"
    assert Edit(Action.REPLACE, "dog", "a cat").describe() == "replace the dog with a cat"
    assert Edit(Action.ADD, "man", "a hat", relation="on").describe() == "add a hat on the man"
    assert Edit(Action.STYLE, None, "winter").describe() == "restyle the image: winter"


def test_a_plan_from_outside_takes_a_strength_in_0_exclusive_to_1_inclusive():
    """The schema's strength bound is (0, 1]: 0 would paint nothing and report an edit; a plan from
    the API, a file or the VLM with it is refused naming the field."""
    import json

    import pytest

    from lasso_edit.core.errors import InvalidInputError
    from lasso_edit.parse.schema import plan_from_json

    def plan(strength):
        return json.dumps({"edits": [{"action": "style", "target": None, "value": "winter", "strength": strength}]})

    assert plan_from_json(plan(1)).edits[0].strength == 1.0
    assert plan_from_json(plan(0.01)).edits[0].strength == 0.01
    for bad in (0, 0.0, -0.5, 1.01, "0.5", True, float("nan")):
        with pytest.raises(InvalidInputError, match="strength"):
            plan_from_json(plan(bad))
