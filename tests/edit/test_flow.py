"""The flow-matching painters (edit/painters/flow.py) on tiny random checkpoints of each: picked from
the checkpoint, run at their own steps and guidance, and never a pixel outside the mask changed."""

import numpy as np
import pytest

from lasso_edit.edit.painters import PAINTERS, PaintRequest, painter_class
from lasso_edit.edit.painters.flow import FlowPainter, Flux2KleinPainter

from ..helpers import noise_image, scene

FLOW = ["sd3", "flux-fill", "flux-kontext", "flux2-klein"]


@pytest.fixture(scope="module")
def editors(tiny_dir):
    """One tiny editor per flow painter, its checkpoint named as a user names it: `tiny:<name>`
    (built beside the session's tiny models: conftest points LASSO_TINY_DIR there)."""
    from lasso_edit import Editor

    return {name: Editor.from_preset("tiny", device="cpu", inpainter=f"tiny:{name}") for name in FLOW}


@pytest.mark.parametrize("name", FLOW)
def test_each_flow_painter_is_picked_from_its_checkpoint_and_keeps_every_pixel_outside(editors, name):
    editor = editors[name]
    painter = editor.stage("inpainter").painter
    assert isinstance(painter, FlowPainter) and painter.name == name
    assert isinstance(painter, painter_class(type(painter.pipe).__name__))
    img = scene()
    said = []
    r = editor(img, "replace the red disc with a cat", parser="rules", grounder="vlm", seed=4, progress=said.append)
    assert r.mask.any() and (r.rgb[~r.mask] == img[~r.mask]).all()
    assert (r.rgb[r.mask] != img[r.mask]).any()
    n = painter.default_steps  # its own step count, not the tiny preset's 3
    assert any(s.endswith(f"step {n}/{n}") for s in said) and not any(s.endswith("/3") for s in said)


def test_a_distilled_painter_runs_its_own_steps_and_the_users_steps_win(editors):
    editor = editors["flux2-klein"]
    said = []
    editor(scene(), "replace the red disc with a cat", parser="rules", grounder="vlm", seed=1, progress=said.append)
    assert any(s.endswith("step 4/4") for s in said) and not any("/30" in s for s in said)
    said.clear()
    editor(scene(), "replace the red disc with a cat", parser="rules", grounder="vlm", seed=1, steps=2,
           progress=said.append)
    assert any(s.endswith("step 2/2") for s in said)


@pytest.mark.parametrize("h,w", [(40, 72), (33, 51), (64, 64)])
def test_a_crop_of_any_size_comes_back_at_its_size_the_padding_never_painted(editors, h, w):
    painter = editors["flux-fill"].stage("inpainter").painter
    img = noise_image(h, w, seed=h)
    mask = np.zeros((h, w), bool)
    mask[5:20, 10:30] = True
    request = PaintRequest("a cat", "", "add a cat", "add", steps=2, guidance=30.0, seed=1)
    out = painter.paint(img, mask, request)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_klein_reads_three_layers_of_a_36_layer_encoder_and_fewer_of_a_small_one(editors):
    painter = editors["flux2-klein"].stage("inpainter").painter
    assert painter.text_layers() == (1,)  # the tiny transformer's text width is one layer of 16
    cfg, tcfg = painter.pipe.text_encoder.config, painter.pipe.transformer.config
    old = (cfg.num_hidden_layers, cfg.hidden_size, tcfg.joint_attention_dim)
    try:
        cfg.num_hidden_layers, cfg.hidden_size = 36, 2560  # Qwen3-4B
        tcfg.joint_attention_dim = 7680
        assert painter.text_layers() == (9, 18, 27)  # the model card's
    finally:
        cfg.num_hidden_layers, cfg.hidden_size, tcfg.joint_attention_dim = old


def test_every_flow_pipeline_is_registered_and_a_base_checkpoint_loads_as_its_inpainting_pipeline():
    for pipeline in ("StableDiffusion3InpaintPipeline", "FluxFillPipeline", "FluxKontextInpaintPipeline",
                     "Flux2KleinInpaintPipeline"):
        assert painter_class(pipeline).pipeline == pipeline and painter_class(pipeline).name in PAINTERS.names()
    assert painter_class("Flux2KleinPipeline") is Flux2KleinPainter  # klein's own model_index names this


def test_qwen_image_edit_reads_the_instruction_paints_at_its_own_size_and_comes_back_at_the_crops(tiny_dir):
    """Its pipeline paints at about 1 MP whatever it is asked (the tiny one too: one step here)."""
    from lasso_edit import Editor
    from lasso_edit.edit.painters.flow import QwenImageEditPainter

    editor = Editor.from_preset("tiny", device="cpu", inpainter="tiny:qwen-image-edit")
    painter = editor.stage("inpainter").painter
    assert isinstance(painter, QwenImageEditPainter) and painter.prompting == "instruction"
    seen = []
    encode = painter.pipe.encode_prompt

    def spy(*args, **kwargs):  # what the pipeline is asked to read
        seen.append(kwargs.get("prompt", args[0] if args else None))
        return encode(*args, **kwargs)

    painter.pipe.encode_prompt = spy
    img = scene()
    r = editor(img, "replace the red disc with a cat", parser="rules", grounder="vlm", seed=1, steps=1)
    assert seen and seen[0] == "replace the red disc with a cat"  # the user's words, not a caption
    assert r.rgb.shape == img.shape and (r.rgb[~r.mask] == img[~r.mask]).all() and r.mask.any()
