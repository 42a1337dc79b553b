"""edit/painters/: the painter family behind the `inpaint` executor (issue 18)."""

import json

import numpy as np
import pytest

from lasso_edit.edit.painters import PAINTERS, Painter, PaintRequest, painter_class
from lasso_edit.errors import ModelUnavailableError

from .helpers import scene


class Recorder(Painter):
    """A painter that paints every pixel of its crop white and records what it was asked."""

    name = "recorder"
    prompting = "instruction"
    guidance = "distilled"
    native = 64

    def __init__(self, *args, **kwargs):
        self.requests: list[PaintRequest] = []
        self.shapes: list[tuple] = []

    def paint(self, image, mask, request):
        self.requests.append(request)
        self.shapes.append((image.shape, mask.shape))
        return np.full_like(image, 255)


def test_the_painter_is_picked_from_the_checkpoints_pipeline_class(tiny_dir):
    from lasso_edit.edit.inpaint import Inpainter

    name = json.loads((tiny_dir / "inpainter" / "model_index.json").read_text())["_class_name"]
    assert painter_class(name).name == "sd"
    assert painter_class("StableDiffusionXLInpaintPipeline").name == "sdxl"
    assert Inpainter.from_pretrained(str(tiny_dir / "inpainter")).kind == "sd"
    with pytest.raises(ModelUnavailableError, match="no painter runs FluxPriorReduxPipeline"):
        painter_class("FluxPriorReduxPipeline")


def test_the_instruction_reaches_the_painter_and_nothing_outside_the_mask_changes(tiny_dir):
    """Whatever a painter paints over its whole crop, the editor's composite keeps every pixel
    outside the mask: the guarantee lives outside the painter."""
    from lasso_edit import Editor

    ed = Editor.from_preset("tiny", device="cpu", parser="rules")
    recorder = Recorder()
    ed.stage("inpainter").painter = recorder
    img = scene()
    res = ed(img, "replace the ball with a cat", seed=3)
    (req,) = recorder.requests
    assert req.instruction == "replace the ball with a cat" and req.action == "replace"
    assert "cat" in req.prompt and req.seed == 3
    (image_shape, mask_shape), = recorder.shapes
    assert image_shape[:2] == mask_shape and max(mask_shape) <= 2 * Recorder.native  # the native-size crop
    outside = ~res.mask
    assert (res.rgb[outside] == img[outside]).all()
    assert (res.rgb[res.mask] != img[res.mask]).any()


def test_a_new_painter_is_one_class_and_one_registry_line(tiny_dir, monkeypatch):
    """The recipe in CONTRIBUTING.md: a Painter subclass with from_pretrained and paint, named in
    PAINTERS by its checkpoint's pipeline class; the executor, presets and surfaces pick it up."""
    import sys
    import types

    from lasso_edit.edit.inpaint import Inpainter

    module = types.ModuleType("lasso_test_painter")

    class TestPainter(Recorder):
        @classmethod
        def from_pretrained(cls, model_id, device="cpu", dtype=None, **options):
            return cls()

    module.TestPainter = TestPainter
    monkeypatch.setitem(sys.modules, "lasso_test_painter", module)
    monkeypatch.setitem(PAINTERS, "MyEditPipeline", "lasso_test_painter:TestPainter")
    folder = tiny_dir.parent / "my-painter"
    folder.mkdir(exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "MyEditPipeline"}))
    inp = Inpainter.from_pretrained(str(folder))
    assert isinstance(inp.painter, TestPainter) and inp.native == 64
    from lasso_edit.edit.base import ExecSettings
    from lasso_edit.plan import Action, Edit

    img = scene()
    region = np.zeros(img.shape[:2], bool)
    region[30:60, 40:90] = True
    out = inp.execute(img, region, Edit(Action.REMOVE, "ball"), ExecSettings(seed=1, instruction="remove the ball"))
    assert inp.painter.requests[0].instruction == "remove the ball"
    assert (out[30:60, 40:90] == 255).all()
