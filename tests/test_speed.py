"""The speed work (issue 10): each optimization gives what the slow way gave, or is what its name says."""

import shutil

import numpy as np
import pytest
import torch

from lasso_edit.edit.base import ExecSettings
from lasso_edit.errors import InvalidInputError, ModelUnavailableError
from lasso_edit.arrays import composite, mask_bbox
from lasso_edit.imaging import restore, load_image
from lasso_edit.parse.answer import compact_to_dict, edits_from_answer, extract_json
from lasso_edit.plan import Action, Edit
from lasso_edit.refine import RefineSettings, _refine, dilate, refine

from .helpers import noise_image, run_cli, save, scene


@pytest.fixture(scope="module")
def vlm(tiny_dir):
    from lasso_edit.parse.llava import LlavaParser

    return LlavaParser.from_pretrained(str(tiny_dir / "vlm"))


# --------------------------------------------------------------------------- the VLM's answer
def test_compact_answer_with_percent_box_maps_to_pixels(vlm):
    img = noise_image(60, 120)
    frame = vlm.frame(img)
    edits = edits_from_answer('[["remove","dog",null,[25,0,75,100]]]', frame)
    assert [(e.action, e.target, e.value) for e in edits] == [(Action.REMOVE, "dog", None)]
    assert edits[0].box == pytest.approx(frame.to_pixels((0.25, 0.0, 0.75, 1.0)))
    assert compact_to_dict(["recolor", "car", "red", None]) == {"action": "recolor", "target": "car",
                                                                 "value": "red", "box": None}
    # one edit, not nested in a list
    assert [e.target for e in edits_from_answer('["recolor","car","red",null]')] == ["car"]


def test_constrained_decoding_follows_the_schema(vlm):
    from lasso_edit.parse.loop import ANSWER_SCHEMA

    assert vlm.constrained, "xgrammar is a dependency: the tiny VLM must decode constrained"
    vlm.max_new_tokens = 400
    try:
        text = vlm.ask(scene(), "make the car red")
    finally:
        vlm.max_new_tokens = 96
    data = extract_json(text)  # a random model, and still valid JSON of the schema
    assert isinstance(data, list) and 1 <= len(data) <= 4
    actions = ANSWER_SCHEMA["items"]["prefixItems"][0]["enum"]
    for action, target, value, box in data:
        assert action in actions and (target is None or 1 <= len(target) <= 48)  # None: the whole photo
        assert value is None or isinstance(value, str)
        assert box is None or (len(box) == 4 and all(isinstance(v, int) and 0 <= v <= 99 for v in box))
    unconstrained = vlm.ask(scene(), "make the car red", constrained=False)
    assert unconstrained != text


def test_constrained_parser_asks_once_then_falls_back(vlm, monkeypatch):
    calls = []
    monkeypatch.setattr(vlm, "ask", lambda image, text: calls.append(text) or "garbage")
    monkeypatch.setattr(vlm, "constrained", True)
    plan = vlm.parse(scene(), "make the car red")
    assert len(calls) == 1 and plan.source == "rules (fallback)"
    assert "unusable (" in plan.warnings[0] and "twice" not in plan.warnings[0]


def test_a_plan_naming_nothing_from_the_instruction_is_not_trusted(vlm, monkeypatch):
    monkeypatch.setattr(vlm, "constrained", True)
    monkeypatch.setattr(vlm, "ask", lambda image, text: '[["style","qzx wvk",null,null]]')
    plan = vlm.parse(scene(), "make the ball red")
    assert plan.source == "rules (fallback)" and "names nothing" in plan.warnings[0]
    monkeypatch.setattr(vlm, "ask", lambda image, text: '[["remove","balls",null,null]]')
    assert vlm.parse(scene(), "remove the ball").source == "vlm"  # plural and singular match
    # an instruction in another language, whose words an English plan cannot share: the VLM's plan, warned
    monkeypatch.setattr(vlm, "ask", lambda image, text: '[["remove","dog",null,null]]')
    plan = vlm.parse(scene(), "entferne den Hund")
    assert plan.source == "vlm" and plan.edits[0].target == "dog" and "names nothing" in plan.warnings[-1]


@pytest.mark.parametrize("instruction,words", [
    ("sharpen the photo", "'sharpen' is not an edit Lasso makes"),
    ("do something cool with the photo", "could not understand"),
])
def test_an_unusable_vlm_plan_that_the_rules_parser_refuses_too_is_refused_not_painted(vlm, monkeypatch, instruction,
                                                                                        words):
    """Issue 16 #10: an English instruction whose VLM plan names nothing said, and which the rules
    parser refuses, exits 2 with the rules parser's words; it used to paint a whole-image restyle."""
    from lasso_edit.errors import InvalidInstructionError

    monkeypatch.setattr(vlm, "constrained", True)
    monkeypatch.setattr(vlm, "ask", lambda image, text: '[["style","qzx wvk",null,null]]')
    with pytest.raises(InvalidInstructionError, match=words) as e:
        vlm.parse(scene(), instruction)
    assert "the VLM's plan was unusable" in str(e.value)


def test_processors_get_a_preshrunk_copy(vlm, monkeypatch, tiny_dir):
    from lasso_edit.ground.detector import Detector

    seen = []
    real = vlm.processor.__class__.__call__
    monkeypatch.setattr(vlm.processor.__class__, "__call__",
                        lambda self, *a, **k: seen.append(k["images"].size) or real(self, *a, **k))
    vlm.ask(noise_image(900, 1500), "hi")
    assert max(seen[-1]) < 1500 and seen[-1][0] / seen[-1][1] == pytest.approx(1500 / 900, rel=0.02)
    det = Detector.from_pretrained(str(tiny_dir / "detector"))
    big = noise_image(700, 1000)
    assert max(det._shrink(big).shape[:2]) <= 32  # the tiny OWLv2 resizes to 32 px
    for x0, y0, x1, y1 in det.detect(big, "car")[0]:  # boxes still in the original's pixels
        assert 0 <= x0 < x1 <= 1000 and 0 <= y0 < y1 <= 700


# --------------------------------------------------------------------------- SAM
@pytest.mark.parametrize("h,w", [(37, 910), (512, 512), (899, 61), (1000, 1500)])
def test_sam_window_upsampling_equals_post_process_masks(h, w):
    import torch.nn.functional as F
    from transformers import SamImageProcessor

    from lasso_edit.segment.sam import upsample_window

    ip = SamImageProcessor()
    low = F.avg_pool2d(torch.randn(1, 1, 256, 256, generator=torch.Generator().manual_seed(h)), 9, 1, 4) * 5 - 0.3
    scale = 1024 / max(h, w)
    rh, rw = int(h * scale + 0.5), int(w * scale + 0.5)
    ref = ip.post_process_masks(low[None].clone(), [[h, w]], [[rh, rw]])[0][0, 0].numpy()
    framed = F.interpolate(low, (1024, 1024), mode="bilinear", align_corners=False)[0, 0]
    got = upsample_window(framed[:rh, :rw], (h, w))
    assert ref.any() and not ref.all()
    assert (got == ref).all()
    # SAM 2's single resize
    ref2 = F.interpolate(low, (h, w), mode="bilinear", align_corners=False)[0, 0] > 0
    assert (upsample_window(low[0, 0], (h, w)) == ref2.numpy()).all()


def test_sam_candidates_are_computed_when_read(tiny_dir):
    from lasso_edit.plan import Grounding
    from lasso_edit.segment.sam import SamSegmenter

    seg = SamSegmenter.from_pretrained(str(tiny_dir / "segmenter"))
    calls = []
    full = seg._full_size
    seg._full_size = lambda *a: calls.append(1) or full(*a)
    s = seg.segment(scene(), Grounding([(10, 10, 80, 100)], [1.0], "test"))
    assert len(calls) == 1  # only the chosen candidate
    assert len(s.candidates) == 3 and s.candidates[2].shape == (120, 160) and len(calls) == 2
    assert s.candidates[2] is s.candidates[-1] and len(calls) == 2  # computed once


# --------------------------------------------------------------------------- masks and pixels
def _scenes(n=25, seed=3):
    import cv2

    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = int(rng.integers(40, 500)), int(rng.integers(40, 500))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        m = np.zeros((h, w), np.uint8)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.ellipse(m, (cx, cy), (int(rng.integers(2, w // 3 + 3)), int(rng.integers(2, h // 3 + 3))), 0, 0, 360, 1, -1)
        cv2.circle(m, (cx, cy), int(rng.integers(0, 6)), 0, -1)  # a hole
        m[rng.random((h, w)) < 0.001] = 1  # specks
        img[cy:cy + 30] //= 3  # a dark band under the object: a shadow to find
        yield img, m.astype(bool)


@pytest.mark.parametrize("action", [Action.REMOVE, Action.REPLACE, Action.RECOLOR, Action.ADD, Action.BACKGROUND])
def test_refine_on_a_crop_equals_the_whole_frame(action):
    s = RefineSettings()
    for img, m in _scenes():
        fw = max(1, int(round(s.feather * max(m.shape) / 1024)))
        r1, a1 = refine(m, action, s, img)
        r2, a2 = _refine(m, action, s, img, fw)
        assert (r1 == r2).all() and (a1 == a2).all()


def test_dilate_is_the_euclidean_disc():
    m = np.zeros((41, 41), bool)
    m[20, 20] = True
    yy, xx = np.mgrid[:41, :41]
    for r in (1, 3, 7, 15):
        assert (dilate(m, r) == ((yy - 20) ** 2 + (xx - 20) ** 2 <= r * r)).all()


def _blend_reference(o, e, a):  # the whole-frame formula the editor used before the windowed one
    a3 = a[:, :, None].astype(np.float32)
    out = np.clip(np.round(o.astype(np.float32) * (1 - a3) + e.astype(np.float32) * a3), 0, 255).astype(np.uint8)
    return np.where(a3 > 0, out, o)


def test_composite_in_the_window_equals_the_whole_frame_blend():
    for img, m in _scenes(10, seed=5):
        _, alpha = refine(m, Action.REMOVE, RefineSettings(feather=6), img)
        edited = img[::-1, ::-1].copy()
        got = composite(img, edited, alpha)
        assert (got == _blend_reference(img, edited, alpha)).all()
        assert (got == composite(img, edited, alpha, mask_bbox(alpha > 0))).all()


def test_mask_bbox():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = np.zeros((50, 70), bool)
        m[rng.integers(0, 50, 5), rng.integers(0, 70, 5)] = True
        ys, xs = np.nonzero(m)
        assert mask_bbox(m) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert mask_bbox(np.zeros((4, 4), bool)) is None


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "I;16"])
def test_restore_copies_the_input_wherever_nothing_changed(tmp_path, mode):
    arr = noise_image(40, 60, 4 if mode == "RGBA" else 3)
    from PIL import Image

    img = Image.fromarray(arr[..., :3] if mode != "RGBA" else arr, "RGBA" if mode == "RGBA" else "RGB")
    if mode in ("L", "I;16"):
        img = img.convert("L") if mode == "L" else Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257)
    loaded = load_image(save(np.asarray(img), tmp_path / "in.png") if mode != "I;16" else img)
    yy, xx = np.mgrid[:40, :60]
    changed = (yy - 20) ** 2 + (xx - 30) ** 2 < 12 ** 2  # not a rectangle: its box holds unchanged pixels
    out = np.asarray(restore(loaded, 255 - loaded.rgb, changed))  # differs everywhere, inside and out
    orig = np.asarray(loaded.original)
    assert (out[~changed] == orig[~changed]).all()
    assert not (out[changed] == orig[changed]).all()


# --------------------------------------------------------------------------- diffusion
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


def test_guidance_stops_after_guidance_end(inpainter, monkeypatch):
    assert _unet_batches(inpainter, steps=4, guidance=7.5) == [2, 2, 2, 2]
    monkeypatch.setattr(inpainter.painter, "guidance_end", 0.5)  # the SD painter's guidance cut
    assert _unet_batches(inpainter, steps=4, guidance=7.5) == [2, 2, 1, 1]
    assert _unet_batches(inpainter, steps=4, guidance=1.0) == [1, 1, 1, 1]


def _paint(inp, **settings):
    img = scene()
    region = np.zeros(img.shape[:2], bool)
    region[30:90, 20:80] = True
    return inp.execute(img, region, Edit(Action.REPLACE, "ball", "cat"), ExecSettings(seed=1, **settings))


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
    from lasso_edit.edit.inpaint import Inpainter, set_scheduler

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
    from lasso_edit.presets import PRESETS

    p = PRESETS["fast"]
    assert p.steps <= 8 and p.lora and p.scheduler == "tcd" and p.guidance <= 1.0
    assert "lora" in p.models()


# --------------------------------------------------------------------------- the editor
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


def test_low_vram_needs_cuda_and_names_bitsandbytes(tiny_dir, monkeypatch):
    import importlib.util

    from lasso_edit import Editor
    from lasso_edit.parse.llava import bnb_4bit_config

    with pytest.raises(InvalidInputError, match="CUDA"):
        Editor.from_preset("tiny", device="cpu", low_vram=True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a))
    with pytest.raises(ModelUnavailableError, match="bitsandbytes"):
        bnb_4bit_config(torch.float16)


def test_detector_heads_run_in_float32(tiny_dir):
    from lasso_edit.ground.detector import Detector

    det = Detector.from_pretrained(str(tiny_dir / "detector"), autocast=True)
    head = det.model.class_head
    feats = torch.randn(1, 16, det.model.config.vision_config.hidden_size).bfloat16()
    queries = torch.randn(1, 1, det.model.config.text_config.projection_dim if hasattr(
        det.model.config.text_config, "projection_dim") else det.model.config.projection_dim).bfloat16()
    logits = head(feats, queries, torch.ones(1, 1))[0]
    assert logits.dtype == torch.float32


# --------------------------------------------------------------------------- CLI
def test_png_compress_option(tiny_dir, tmp_path):
    src = save(scene(), tmp_path / "in.png")
    sizes = {}
    for level in ("0", "9"):
        out = tmp_path / f"out{level}.png"
        r = run_cli("edit", str(src), "remove the ball", "--preset", "tiny", "-o", str(out), "--seed", "1",
                    "--png-compress", level, "--quiet")
        assert r.returncode == 0, r.stderr
        sizes[level] = out.stat().st_size
    assert sizes["0"] > sizes["9"]
    r = run_cli("edit", str(src), "remove the ball", "--preset", "tiny", "-o", str(tmp_path / "x.png"),
                "--png-compress", "10")
    assert r.returncode == 2 and "Traceback" not in r.stderr
