"""edit/painters/: the painter family behind the `inpaint` executor (issue 18)."""

import json
import shutil

import numpy as np
import pytest
import torch

from lasso_edit.core.errors import InvalidInputError, ModelUnavailableError
from lasso_edit.core.plan import Action, Edit
from lasso_edit.edit.base import ExecSettings
from lasso_edit.edit.painters import PAINTERS, Painter, PaintRequest, painter_class

from ..helpers import scene


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


def test_with_several_edits_each_painter_call_is_told_its_own_edit(tiny_dir):
    from lasso_edit import Editor

    ed = Editor.from_preset("tiny", device="cpu", parser="rules")
    recorder = Recorder()
    ed.stage("inpainter").painter = recorder
    ed(scene(), "replace the ball with a cat and remove the box", seed=3, grounder="vlm")
    assert [r.instruction for r in recorder.requests] == ["replace the ball with cat", "remove the box"]


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
    PAINTERS by name; a checkpoint whose model_index.json names its pipeline class is its, and so
    is --inpainter mine:CHECKPOINT; the executor, presets and surfaces pick it up."""
    import sys
    import types

    from lasso_edit.edit.inpaint import Inpainter

    module = types.ModuleType("lasso_test_painter")

    class TestPainter(Recorder):
        name = "mine"
        pipeline = "MyEditPipeline"

        @classmethod
        def from_pretrained(cls, model_id, device="cpu", dtype=None, **options):
            return cls()

    module.TestPainter = TestPainter
    monkeypatch.setitem(sys.modules, "lasso_test_painter", module)
    monkeypatch.setattr(PAINTERS, "_items", {**PAINTERS._items})  # the registry as it was, after the test
    PAINTERS.register("mine", "lasso_test_painter:TestPainter")
    folder = tiny_dir.parent / "my-painter"
    folder.mkdir(exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "MyEditPipeline"}))
    inp = Inpainter.from_pretrained(str(folder))
    assert isinstance(inp.painter, TestPainter) and inp.native == 64
    assert isinstance(Inpainter.from_pretrained(f"mine:{folder}").painter, TestPainter)
    from lasso_edit.core.plan import Action, Edit
    from lasso_edit.edit.base import ExecSettings

    img = scene()
    region = np.zeros(img.shape[:2], bool)
    region[30:60, 40:90] = True
    out = inp.execute(img, region, Edit(Action.REMOVE, "ball"), ExecSettings(seed=1, instruction="remove the ball"))
    assert inp.painter.requests[0].instruction == "remove the ball"
    assert (out[30:60, 40:90] == 255).all()


@pytest.fixture(scope="module")
def inpainter(tiny_dir):
    from lasso_edit.edit.inpaint import Inpainter

    return Inpainter.from_pretrained(str(tiny_dir / "inpainter"), default_steps=4)


def _unet_batches(inp, **settings):
    sizes = []
    hook = inp.pipe.unet.register_forward_hook(lambda mod, args, out: sizes.append(args[0].shape[0]))
    try:
        img = scene()
        region = np.zeros(img.shape[:2], bool)
        region[30:90, 20:80] = True
        inp.execute(img, region, Edit(Action.REPLACE, "ball", "cat"), ExecSettings(seed=1, **settings))
    finally:
        hook.remove()
    return sizes


def _paint(inp, **settings):
    img = scene()
    region = np.zeros(img.shape[:2], bool)
    region[30:90, 20:80] = True
    return inp.execute(img, region, Edit(Action.REPLACE, "ball", "cat"), ExecSettings(seed=1, **settings))


def test_guidance_stops_after_guidance_end(inpainter, monkeypatch):
    assert _unet_batches(inpainter, steps=4, guidance=7.5) == [2, 2, 2, 2]
    monkeypatch.setattr(inpainter.painter, "guidance_end", 0.5)  # the SD painter's guidance cut
    assert _unet_batches(inpainter, steps=4, guidance=7.5) == [2, 2, 1, 1]
    assert _unet_batches(inpainter, steps=4, guidance=1.0) == [1, 1, 1, 1]


def test_deepcache_reuses_deep_features_between_full_steps(tiny_dir):
    from lasso_edit.edit.inpaint import Inpainter

    path = str(tiny_dir / "inpainter")
    plain = _paint(Inpainter.from_pretrained(path), steps=4, guidance=7.5)
    every = Inpainter.from_pretrained(path, deepcache=1)  # every step a full step: the same picture
    assert (_paint(every, steps=4, guidance=7.5) == plain).all() and every.deepcache.skipped == 0
    cached = Inpainter.from_pretrained(path, deepcache=2)
    out = _paint(cached, steps=4, guidance=7.5)
    assert cached.deepcache.skipped > 0 and not (out == plain).all()
    # guidance stopping part-way halves the batch: cached features of the old batch are not reused
    cut = Inpainter.from_pretrained(path, deepcache=3, guidance_end=0.5)
    _paint(cut, steps=4, guidance=7.5)
    assert cut.deepcache.skipped > 0


def test_scheduler_is_chosen_by_name(tiny_dir):
    from lasso_edit.edit.inpaint import Inpainter
    from lasso_edit.edit.painters.sd import set_scheduler

    inp = Inpainter.from_pretrained(str(tiny_dir / "inpainter"), scheduler="dpm++2m")
    assert type(inp.pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert inp.pipe.scheduler.config.algorithm_type == "dpmsolver++"
    with pytest.raises(InvalidInputError, match="unknown scheduler"):
        set_scheduler(inp.pipe, "fastest")


def test_fp16_variant_is_loaded_when_there_is_one(tiny_dir, tmp_path):
    from diffusers import StableDiffusionInpaintPipeline

    from lasso_edit.edit.inpaint import Inpainter

    folder = tmp_path / "sd"
    shutil.copytree(tiny_dir / "inpainter", folder)
    pipe = StableDiffusionInpaintPipeline.from_pretrained(folder)
    torch.nn.init.zeros_(pipe.unet.conv_in.weight)  # mark the variant's weights
    pipe.to(torch.float16).save_pretrained(folder, variant="fp16")
    got = Inpainter.from_pretrained(str(folder), dtype=torch.float16)
    assert got.pipe.unet.dtype == torch.float16 and not got.pipe.unet.conv_in.weight.any()
    full = Inpainter.from_pretrained(str(tiny_dir / "inpainter"), dtype=torch.float16)  # no variant: no error
    assert full.pipe.unet.conv_in.weight.any()


def test_lora_is_fused_into_the_unet(tiny_dir, tmp_path):
    from diffusers import StableDiffusionInpaintPipeline
    from peft import LoraConfig, get_peft_model_state_dict

    from lasso_edit.edit.inpaint import Inpainter

    base = StableDiffusionInpaintPipeline.from_pretrained(tiny_dir / "inpainter")
    unet = base.unet
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=["to_q", "to_v"]))
    state = get_peft_model_state_dict(unet)
    for v in state.values():  # peft starts B at zero (a no-op adapter): make it a real one
        torch.nn.init.normal_(v)
    StableDiffusionInpaintPipeline.save_lora_weights(tmp_path / "lora", unet_lora_layers=state)
    plain = Inpainter.from_pretrained(str(tiny_dir / "inpainter"))
    fused = Inpainter.from_pretrained(str(tiny_dir / "inpainter"), lora=str(tmp_path / "lora"))
    names = [n for n, _ in fused.pipe.unet.named_parameters()]
    assert not any("lora" in n for n in names)  # fused, adapters unloaded: no per-step cost
    a = dict(plain.pipe.unet.named_parameters())
    changed = [n for n, p in fused.pipe.unet.named_parameters() if not torch.equal(p, a[n])]
    assert changed and all(("to_q" in n or "to_v" in n) for n in changed)


def test_fast_preset_is_a_few_step_lora():
    from lasso_edit.core.presets import PRESETS

    p = PRESETS["fast"]
    assert p.steps <= 8 and p.lora and p.scheduler == "tcd" and p.guidance <= 1.0
    assert "lora" in p.models()


def test_an_inpainter_value_names_a_painter_a_painter_on_a_checkpoint_or_a_checkpoint(tmp_path):
    from lasso_edit.core.errors import InvalidInputError
    from lasso_edit.edit.painters import painter_spec

    assert painter_spec("flux2-klein") == ("flux2-klein", "black-forest-labs/FLUX.2-klein-4B")
    assert painter_spec("sdxl:/models/mine") == ("sdxl", "/models/mine")
    assert painter_spec("stabilityai/stable-diffusion-2-inpainting") == (None, "stabilityai/stable-diffusion-2-inpainting")
    assert painter_spec("tiny:flux2-klein") == (None, "tiny:flux2-klein")  # built locally, then read by its index
    odd = tmp_path / "sd"  # a folder that exists is a folder, whatever its name
    odd.mkdir()
    assert painter_spec(str(odd)) == (None, str(odd))
    with pytest.raises(InvalidInputError, match="give a checkpoint after 'sd:'"):
        painter_spec("sd:")
    for name in PAINTERS.names():  # every painter with a checkpoint names a default one
        cls = PAINTERS.get(name)
        assert cls.name == name and (cls.checkpoint is None or "/" in cls.checkpoint)


def test_a_painter_named_on_a_checkpoint_of_another_kind_is_refused(tiny_dir):
    from lasso_edit.core.errors import InvalidInputError
    from lasso_edit.edit.inpaint import Inpainter

    with pytest.raises(InvalidInputError, match=r"is a sd checkpoint .*not sdxl's; say --inpainter sd:"):
        Inpainter.from_pretrained(f"sdxl:{tiny_dir / 'inpainter'}")
    assert Inpainter.from_pretrained(f"sd:{tiny_dir / 'inpainter'}").kind == "sd"


def test_a_painter_by_name_is_checked_by_its_checkpoint_before_anything_loads(tiny_dir):
    from lasso_edit import Editor

    with pytest.raises(ModelUnavailableError, match="black-forest-labs/FLUX.2-klein-4B"):
        Editor.from_preset("tiny", device="cpu", inpainter="flux2-klein")  # offline, not cached: named at once
