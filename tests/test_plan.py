"""The plan's types: what a step says of itself."""



def test_step_summaries_read_as_sentences():
    from lasso_edit.plan import Action, Edit

    assert Edit(Action.BACKGROUND, "background", "a snowy forest").describe() == \
        "replace the background with a snowy forest"
    assert Edit(Action.BACKGROUND, "background", "a beach", subject="dog").describe() == \
        "replace the background behind the dog with a beach"
    assert Edit(Action.REMOVE, "wheel", select_all=True).describe() == "remove all the wheels"
    assert Edit(Action.RECOLOR, "car", "red", qualifier="left").describe() == "make the car (left) red"
    assert Edit(Action.REPLACE, "dog", "a cat").describe() == "replace the dog with a cat"
    assert Edit(Action.ADD, "man", "a hat", relation="on").describe() == "add a hat on the man"
    assert Edit(Action.STYLE, None, "winter").describe() == "restyle the image: winter"
