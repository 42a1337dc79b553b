"""The editor's model pool: overlap, unload and reload, a stage out of memory loaded again alone."""

import numpy as np

from ..helpers import scene


def test_overlap_gives_the_same_edit(tiny_dir):
    from lasso_edit import Editor

    img = scene()
    results = []
    for overlap in (False, True):
        ed = Editor.from_preset("tiny", device="cpu", grounder="auto", box_threshold=0.0, overlap=overlap)
        results.append(ed(img, "remove the ball", seed=3))
    a, b = results
    assert a.plan.to_dict() == b.plan.to_dict()
    assert (a.mask == b.mask).all() and (np.asarray(a.image) == np.asarray(b.image)).all()
    assert "overlap" in b.timings and "overlap" not in a.timings


def test_unload_frees_the_models_and_they_come_back(tiny_editor):
    tiny_editor(scene(), "remove the ball", seed=1)
    assert set(tiny_editor.loaded) >= {"segmenter", "inpainter"}
    tiny_editor.unload()
    assert tiny_editor.loaded == []
    res = tiny_editor(scene(), "remove the ball", seed=1)
    assert res.image is not None and "segmenter" in tiny_editor.loaded


def test_a_stage_that_runs_out_of_memory_is_loaded_again_alone():
    from lasso_edit import Editor

    tries = []

    def big():
        tries.append(ed.loaded)
        if len(tries) == 1:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "big model"

    ed = Editor({"small": lambda: "small model", "big": big}, models={}, parser="rules", grounder="vlm")
    ed.stage("small")
    assert ed.stage("big") == "big model"
    assert tries == [["small"], []]  # the second try had the GPU to itself
    assert ed.loaded == ["big"]
