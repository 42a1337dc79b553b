"""The `remote` preset, for a machine without a GPU: a hosted VLM plans and gives the box, EdgeTAM
masks on the CPU, a hosted editor paints. Here both servers are fakes on loopback (the hosted
editor's fake drifts its whole answer) and EdgeTAM is tiny; the `openai` client, the HTTP layer,
the segmenter's loading and the composite are real."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ..conftest import serve_app
from ..fake_openai_images import Fake, running
from ..helpers import run_cli
from ..parse.test_remote import MODEL, Behaviour, openai_server

pytestmark = pytest.mark.e2e  # two OpenAI-shaped servers on loopback

COFFEE = "examples/coffee.png"
BOX = [30, 25, 70, 75]  # the fake VLM's box for the cup, in percent of the photo (loop.py's form)


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    from lasso_edit.testing.tiny import build_tiny_edgetam

    planner = Behaviour()
    planner.answer = json.dumps([["replace", "cup", "a green bowl", BOX]])
    url, stop = serve_app(openai_server(None, planner))  # a fixed answer: no model behind it
    painter = Fake()
    try:
        with running(painter) as images:
            yield f"{url}/v1", planner, images, painter, build_tiny_edgetam(tmp_path_factory.mktemp("edgetam"))
    finally:
        stop()


def remote_args(servers) -> list[str]:
    vlm, _, images, _, edgetam = servers
    return ["--preset", "remote", "--vlm", f"openai:{MODEL}@{vlm}", "--inpainter",
            f"openai:gpt-image-1.5@{images}", "--segmenter", str(edgetam)]


def test_the_remote_preset_plans_and_points_there_masks_here_from_that_box_and_paints_there(
    servers, tmp_path, monkeypatch
):
    """One call to each server; the segmenter is prompted with the VLM's own box (no detector is
    part of the preset); the painter is sent the edit's sentence, and its paint is in the file. (A
    random EdgeTAM masks the whole frame, so what is kept outside a real mask is the hosted
    painter's tests' to show: tests/edit/test_openai_painter.py.)"""
    _, planner, _, painter, _ = servers
    planner.requests.clear()
    painter.reset()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-remote")
    out, mask_out, plan_out = tmp_path / "o.png", tmp_path / "m.png", tmp_path / "plan.json"
    r = run_cli("edit", COFFEE, "replace the cup with a green bowl", *remote_args(servers), "--seed", "3",
                "-o", str(out), "--mask-out", str(mask_out), "--plan-out", str(plan_out))
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(planner.requests) == 1 and len(painter.requests) == 1  # one call each
    assert "green bowl" in painter.requests[0]["prompt"]
    original = np.asarray(Image.open(COFFEE).convert("RGB"))
    h, w = original.shape[:2]
    record = json.loads(plan_out.read_text())
    box = [BOX[0] * w / 100, BOX[1] * h / 100, BOX[2] * w / 100, BOX[3] * h / 100]
    assert record["groundings"][0]["source"] == "vlm" and record["groundings"][0]["boxes"] == [box]
    assert set(record["models"]) == {"vlm", "segmenter", "inpainter"}  # no detector, no local VLM
    assert record["models"]["inpainter"].startswith("openai:gpt-image-1.5@")
    edited = np.asarray(Image.open(out).convert("RGB"))
    painted = np.asarray(Image.open(mask_out).convert("L")) > 0
    assert painted.any() and (edited != original).any(axis=2)[painted].mean() > 0.5
    assert "sk-test-remote" not in r.stdout + r.stderr + plan_out.read_text()


def test_the_remote_preset_on_openais_api_without_a_key_is_bad_input_before_anything_loads(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    r = run_cli("edit", COFFEE, "make the cup red", "--preset", "remote", "-o", str(tmp_path / "o.png"))
    assert r.returncode == 2
    assert "OPENAI_API_KEY" in r.stderr and "--vlm-api-key" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o.png").exists()


# --------------------------------------------------------------------------- lite
def test_the_lite_preset_plans_by_rules_finds_with_owlvit_masks_with_edgetam_and_paints_with_turbo(
    turbo_dir, lama_dir, tmp_path
):
    """The lite preset's own classes through the loading path users hit, each stage tiny: no VLM is
    loaded (the rules plan), the detector is OWL-ViT, the segmenter EdgeTAM, the painter SD-Turbo's
    pipeline with TAESD's autoencoder, at its own 1 step and no guidance; the rest of the photo is kept."""
    out, mask_out, plan_out = tmp_path / "o.png", tmp_path / "m.png", tmp_path / "plan.json"
    r = run_cli("edit", COFFEE, "replace the cup with a green bowl", "--preset", "lite", "--device", "cpu",
                "--detector", "tiny:owlvit", "--segmenter", "tiny:edgetam", "--inpainter", f"turbo:{turbo_dir}",
                "--remover", f"lama:{lama_dir}", "--box-threshold", "0", "--seed", "1", "-o", str(out), "--mask-out", str(mask_out),
                "--plan-out", str(plan_out))
    assert r.returncode == 0, r.stderr[-2000:]
    record = json.loads(plan_out.read_text())
    assert record["source"] == "rules" and "vlm" not in record["models"]
    assert record["groundings"][0]["source"].startswith("detector")
    assert record["models"]["inpainter"] == f"turbo:{turbo_dir}"
    original = np.asarray(Image.open(COFFEE).convert("RGB"))
    edited = np.asarray(Image.open(out).convert("RGB"))
    kept = np.asarray(Image.open(mask_out).convert("L")) == 0
    assert int((edited != original).any(axis=2)[kept].sum()) == 0 and (edited != original).any()


def test_turbo_runs_at_its_own_steps_without_guidance_and_with_taesd(turbo_dir):
    from lasso_edit.edit.inpaint import Inpainter

    inp = Inpainter.from_pretrained(f"turbo:{turbo_dir}", default_steps=30, default_guidance=7.5)
    assert inp.kind == "turbo" and type(inp.pipe.vae).__name__ == "AutoencoderTiny"
    assert inp.own_settings == (1, 0.0)  # not the preset's 30 steps at guidance 7.5
    assert Inpainter.from_pretrained(str(turbo_dir)).kind == "sd"  # not named: SD's, as any text-to-image SD


def test_auto_is_the_lite_preset_on_a_machine_without_cuda_and_says_so_once(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA machine: auto is balanced there")
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")}
    r = run_cli("edit", COFFEE, "make the cup red", "-o", str(tmp_path / "o.png"), env=env)
    assert r.stderr.count("the lite preset") == 1 and "--preset balanced" in r.stderr
    assert r.returncode == 3 and "google/owlvit-base-patch32" in r.stderr  # lite's models, not balanced's
    named = run_cli("edit", COFFEE, "make the cup red", "--preset", "lite", "-o", str(tmp_path / "o.png"), env=env)
    assert named.returncode == 3 and "the lite preset" not in named.stderr  # asked for by name: nothing to explain


def _int8_layers(module) -> int:
    import torch

    return sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in module.modules())


def test_on_a_cpu_lite_runs_its_detector_and_turbos_text_encoder_in_int8_and_others_do_not(turbo_dir, lama_dir):
    """The runtime that wins 1.5x or more on the same model (bench/lite.py): dynamic int8 linears for
    OWL-ViT and SD-Turbo's text encoder, on a CPU; another preset's detector stays fp32."""
    from lasso_edit.core.config import EditorConfig
    from lasso_edit.pipeline.editor import Editor

    lite = Editor.from_config(EditorConfig.of(preset="lite", detector="tiny:owlvit", segmenter="tiny:edgetam",
                                              inpainter=f"turbo:{turbo_dir}", remover=f"lama:{lama_dir}",
                                              device="cpu"))
    assert _int8_layers(lite.stage("detector").model) > 0
    assert _int8_layers(lite.stage("inpainter").pipe.text_encoder) > 0
    tiny = Editor.from_config(EditorConfig.of(preset="tiny", detector="tiny:owlvit", grounder="detector", device="cpu"))
    assert _int8_layers(tiny.stage("detector").model) == 0


def test_turbo_reads_the_fp16_files_cast_to_fp32_and_never_the_checkpoints_own_vae(tmp_path, monkeypatch):
    """SD-Turbo's checkpoint as the Hub has it (a KL VAE, fp16 variant files): the painter reads the
    half-size files, runs them in fp32 on the CPU, and puts TAESD in place of the VAE, which is
    therefore never read (nor, from the Hub, downloaded)."""
    import shutil

    import diffusers
    import torch

    from lasso_edit.edit.inpaint import Inpainter
    from lasso_edit.edit.painters.sd import TurboPainter
    from lasso_edit.testing.tiny import _tiny_sd_parts

    parts = _tiny_sd_parts(in_channels=4, tiny_vae=False)
    scheduler = diffusers.EulerDiscreteScheduler(timestep_spacing="trailing", steps_offset=1)
    pipe = diffusers.StableDiffusionPipeline(**parts, scheduler=scheduler).to(torch.float16)
    pipe.save_pretrained(tmp_path / "turbo", variant="fp16")  # only the fp16 files
    shutil.rmtree(tmp_path / "turbo" / "vae")  # a VAE read would now fail
    (tmp_path / "turbo" / "vae").mkdir()
    taesd = _tiny_sd_parts(in_channels=4, tiny_vae=True)["vae"]
    taesd.save_pretrained(tmp_path / "taesd")
    monkeypatch.setattr(TurboPainter, "tiny_vae", str(tmp_path / "taesd"))  # the Hub's TAESD, a local copy
    inp = Inpainter.from_pretrained(f"turbo:{tmp_path / 'turbo'}", device="cpu", dtype=torch.float32)
    assert type(inp.pipe.vae).__name__ == "AutoencoderTiny" and inp.pipe.unet.dtype == torch.float32


def test_lite_loads_only_what_each_edit_paints_with(turbo_dir, lama_dir):
    """A model is downloaded when it is loaded, so what README says each kind of edit downloads is
    what it loads: a recolour OWL-ViT and EdgeTAM alone (no painter), a remove LaMa as well, and only
    a replace SD-Turbo."""
    from lasso_edit.core.config import EditorConfig
    from lasso_edit.core.presets import PRESETS
    from lasso_edit.pipeline.editor import Editor

    editor = Editor.from_config(EditorConfig.of(
        preset=PRESETS["lite"], detector="tiny:owlvit", segmenter="tiny:edgetam", inpainter=f"turbo:{turbo_dir}",
        remover=f"lama:{lama_dir}", device="cpu", box_threshold=0.0))
    photo = np.asarray(Image.open(COFFEE).convert("RGB"))
    editor(photo, "make the cup red", seed=1)
    assert sorted(editor.pool.loaded) == ["detector", "segmenter"]
    editor(photo, "remove the cup", seed=1)
    assert sorted(editor.pool.loaded) == ["detector", "remover", "segmenter"]
    editor(photo, "replace the cup with a green bowl", seed=1)
    assert sorted(editor.pool.loaded) == ["detector", "inpainter", "remover", "segmenter"]
