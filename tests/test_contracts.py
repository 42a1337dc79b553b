"""Every registered stage keeps its contract (issue 18): parametrised over the registries, so a
stage added to one is tested by being added. Real tiny models throughout (no stand-ins)."""

import numpy as np
import pytest

from lasso_edit.core.actions import spec
from lasso_edit.core.errors import TargetNotFoundError
from lasso_edit.core.plan import Action, Edit, EditPlan, Grounding, Segmentation
from lasso_edit.core.registry import EXECUTORS, GROUNDERS, PARSERS
from lasso_edit.edit.painters import PAINTERS, PaintRequest, painter_class

from .helpers import scene


@pytest.fixture(scope="module")
def editor(tiny_dir):
    from lasso_edit import Editor

    return Editor.from_preset("tiny", device="cpu", box_threshold=0.0, optional=("detector",))


@pytest.mark.parametrize("name", PARSERS.names())
def test_every_parser_answers_a_plan_that_says_where_it_came_from(editor, name):
    """(The editor checks the instruction before any parser sees it: inputs.check_inputs.)"""
    parser = PARSERS.get(name).create(editor.stage)
    plan = parser.parse(scene(), "remove the ball")
    assert isinstance(plan, EditPlan) and plan.edits and plan.source
    assert plan.instruction == "remove the ball"
    assert all(isinstance(e, Edit) and isinstance(e.action, Action) for e in plan.edits)


@pytest.fixture(scope="module")
def editors(editor, tiny_dir):
    """The tiny editor with the tiny models a stage declares it runs on (`tiny_models`: SAM 3's grounder)."""
    from lasso_edit import Editor

    made = {}

    def get(cls):
        wanted = getattr(cls, "tiny_models", None)
        if not wanted:
            return editor
        key = tuple(sorted(wanted.items()))
        if key not in made:
            made[key] = Editor.from_preset("tiny", device="cpu", box_threshold=0.0, optional=("detector",), **wanted)
        return made[key]

    return get


@pytest.mark.parametrize("name", GROUNDERS.names())
def test_every_grounder_answers_boxes_inside_the_image_or_not_found(editors, name):
    cls = GROUNDERS.get(name)
    grounder = cls.create(editors(cls).stage, 0.0)
    img = scene()
    h, w = img.shape[:2]
    try:
        g = grounder.ground(img, Edit(Action.REMOVE, "ball"))
    except TargetNotFoundError:
        return  # a clear "not there" is within the contract
    assert isinstance(g, Grounding) and g.boxes
    for x0, y0, x1, y1 in g.boxes:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h


@pytest.mark.parametrize("segmenter", ["tiny:segmenter", "tiny:sam3"])
def test_every_segmenter_answers_a_bool_mask_of_the_image(tiny_dir, segmenter):
    from lasso_edit import Editor

    editor = Editor.from_preset("tiny", device="cpu", segmenter=segmenter)
    img = scene()
    seg = editor.stage("segmenter").segment(img, Grounding([(10, 10, 80, 60)], [1.0], "contract"))
    assert isinstance(seg, Segmentation) and seg.mask.dtype == bool and seg.mask.shape == img.shape[:2]


@pytest.mark.parametrize("name", EXECUTORS.names())
def test_every_executor_returns_an_image_of_the_input_and_leaves_outside_its_box(editor, name):
    from lasso_edit.edit.base import ExecSettings

    cls = EXECUTORS.get(name)
    edit = cls.example  # each executor's own example of an edit it makes
    assert isinstance(edit, Edit) and spec(edit.action).executor(edit, "texture") == name  # routed to it
    img = scene()
    region = np.zeros(img.shape[:2], bool)
    region[30:60, 40:90] = True
    out = cls.create(editor.stage).execute(img, region, edit, ExecSettings(seed=1, steps=2))
    assert out.shape == img.shape and out.dtype == np.uint8 and (out[region] != img[region]).any()


# Every painter that loads a checkpoint; a hosted one (openai:) has none to build tiny, and its own
# tests (tests/edit/test_openai_painter.py) serve it a fake of its API on loopback.
@pytest.mark.parametrize("name", [n for n in PAINTERS.names() if PAINTERS.get(n).checkpoint is not None])
def test_every_painter_paints_its_crop_at_its_size(name, tmp_path):
    from lasso_edit.edit.inpaint import Inpainter

    cls = PAINTERS.get(name)
    folder = cls.tiny_checkpoint(tmp_path / "painter")  # each painter's own tiny checkpoint
    named = Inpainter.from_pretrained(f"{name}:{folder}").painter
    assert type(named) is cls  # named, every painter loads its own kind of checkpoint
    if not cls.reads and cls.pipeline:  # a diffusers painter that claims its checkpoints: by their model_index.json
        assert type(Inpainter.from_pretrained(str(folder)).painter) is cls and painter_class(cls.pipeline) is cls
    painter = named
    assert painter.prompting in ("caption", "instruction") and painter.guidance in ("cfg", "distilled")
    assert painter.native >= 64 and painter.max_steps() >= 1
    crop = scene()[:64, :96]
    mask = np.zeros(crop.shape[:2], bool)
    mask[10:40, 20:70] = True
    out = painter.paint(crop, mask, PaintRequest(prompt="a cat", negative="", instruction="add a cat", action="add",
                                                 steps=2, guidance=7.5, seed=1))
    assert out.shape == crop.shape and out.dtype == np.uint8
