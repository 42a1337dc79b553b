"""Benchmark of the `lite` preset on this CPU: its models at their real size with random weights
(compute does not depend on weight values), alone and in whole edits of a 1 MP photo.

    python bench/lite.py                          # bench/results/lite.{md,json} (about ten minutes)
    python bench/lite.py --smoke --out /tmp/l     # tiny models: every line, no claim (tests/test_bench.py)

1. **Stages**, each a median of `--runs` after a warm-up, wall and CPU seconds, arms interleaved:
   OWL-ViT B/32 at 768x768 (the detector), EdgeTAM encode + one box (the segmenter), SD-Turbo's
   text encoder (OpenCLIP ViT-H's, 77 tokens), one UNet step at 512x512 (a 64x64 latent), TAESD's
   encode and decode at 512x512. Runtimes on the same model: torch fp32 (the baseline), dynamic
   int8 on the linear layers (`torch.ao.quantization.quantize_dynamic`), and bf16 for the UNet and
   TAESD, both as weights and inputs cast (`model.to(torch.bfloat16)`) and as
   `torch.autocast("cpu", bfloat16)` over the fp32 model. A runtime is worth taking where it wins
   by 1.5x or more. (channels_last, within noise of fp32 for both in the first round, is no longer
   run: its 3.5 GB copy of the UNet would take this process past 16 GB.)
2. **Whole edits of a 1224x816 photo** through the Editor with the lite preset's own stages, as
   they load on a CPU (OWL-ViT's and the text encoder's linears in int8, the UNet and TAESD in
   bf16 where the CPU has bf16 instructions: loading.cpu_bf16): the rules parse, OWL-ViT grounds,
   EdgeTAM masks, LaMa removes (Big LaMa's architecture, exported as bench/lama.py exports it, on
   ONNX Runtime through the `lama` painter: the preset's remover), and for replace SD-Turbo with
   TAESD paints at its own steps; recolour
   is the deterministic texture recolour. The detector's random boxes are replaced by the photo's own box after it has run (its cost is paid) and EdgeTAM's
   random mask is kept inside that box, as a trained model's would be: the cost of what follows
   (the crop painted, the composite) depends on the mask. Peak memory (max RSS) is the process's.
3. **First edit after start** (`--cold`, on by default): the models saved to disk (SD-Turbo as its
   fp16 variant files, as the Hub has them), then loaded through the preset in a fresh process and
   a first edit made (the models load lazily inside it; their load is timed), then a second:
   seconds more than a warm edit, counted from the process's spawn to the end of its first edit,
   and where they go. Twice, with a converted-weights cache of its own: the first process converts
   and keeps the weights (a first start), the second reads them (every later start).

Targets (issue 32), warm, 1 MP: recolour <= 2 s, remove <= 4 s, replace <= 8 s, the first edit
<= 10 s more than warm, peak memory <= 4 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = (1224, 816)  # 1 MP, 3:2
BOX = (520.0, 250.0, 760.0, 560.0)  # the photo's object (coffee.png's cup, scaled)
EDITS = {"recolour": "make the cup red", "remove": "remove the cup", "replace": "replace the cup with a green bowl"}
TARGETS = {"recolour": 2.0, "remove": 4.0, "replace": 8.0}


def _cpu() -> float:
    return time.process_time()


def _maxrss_gb() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec (getrusage's maxrss
    carries the forking parent's over an execve, so a child of a large process would report its
    parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


# --------------------------------------------------------------------------- the models, real size
def owlvit(smoke: bool) -> tuple[Any, Any]:
    """OWL-ViT B/32 (OwlViTConfig's defaults are its shapes) at its 768-pixel input."""
    import transformers

    if smoke:
        from lasso_edit.testing.tiny import build_tiny_owlvit

        folder = build_tiny_owlvit(Path(tempfile.mkdtemp(prefix="bench-owlvit-")))
        return transformers.OwlViTForObjectDetection.from_pretrained(folder).eval(), (
            transformers.OwlViTProcessor.from_pretrained(folder)
        )
    from lasso_edit.testing.tiny import clip_tokenizer

    model = transformers.OwlViTForObjectDetection(transformers.OwlViTConfig()).eval()
    image_processor = transformers.OwlViTImageProcessor()  # 768x768, as the checkpoint's
    return model, transformers.OwlViTProcessor(image_processor=image_processor, tokenizer=clip_tokenizer(16))


def sd_turbo(smoke: bool) -> Any:
    """SD-Turbo's pipeline as the turbo painter runs it: SD 2.1's UNet (4 channels, 64x64 latent),
    OpenCLIP ViT-H's text encoder, TAESD, Euler at trailing timesteps."""
    import diffusers

    if smoke:
        from lasso_edit.testing.tiny import build_tiny_sd_turbo

        folder = build_tiny_sd_turbo(Path(tempfile.mkdtemp(prefix="bench-turbo-")))
        return diffusers.StableDiffusionInpaintPipeline.from_pretrained(folder)
    from transformers import CLIPTextConfig, CLIPTextModel

    from lasso_edit.testing.tiny import clip_tokenizer

    unet = diffusers.UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, cross_attention_dim=1024, attention_head_dim=[5, 10, 20, 20],
        use_linear_projection=True, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
    )
    text = CLIPTextModel(CLIPTextConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                                        num_attention_heads=16, hidden_act="gelu", projection_dim=1024))
    scheduler = diffusers.EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                                 timestep_spacing="trailing", steps_offset=1)
    return diffusers.StableDiffusionInpaintPipeline(
        unet=unet.eval(), vae=diffusers.AutoencoderTiny().eval(), text_encoder=text.eval(), tokenizer=clip_tokenizer(),
        scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def stages(smoke: bool) -> dict[str, Any]:
    """The lite preset's stages over the real-size models: detector, segmenter, inpainter."""
    import remote  # bench/remote.py: EdgeTAM at its real size

    from lasso_edit.edit.inpaint import Inpainter
    from lasso_edit.edit.painters.sd import TurboPainter
    from lasso_edit.ground.detector import Detector
    from lasso_edit.segment.sam import SamSegmenter

    det, dproc = owlvit(smoke)
    seg, _ = remote.edgetam(smoke)
    return {
        "detector": Detector(det, dproc, model_id="owlvit-base-patch32 (random)"),
        "segmenter": SamSegmenter(seg, remote._processor(smoke), model_id="EdgeTAM (random)"),
        "inpainter": Inpainter(TurboPainter(sd_turbo(smoke)), model_id="sd-turbo + taesd (random)",
                               default_steps=TurboPainter.default_steps or 1, default_guidance=0.0),
    }


# --------------------------------------------------------------------------- 1. stages and runtimes
def _int8(module: Any) -> Any:
    """A copy with its linear layers in dynamic int8 (loading.int8_linears: quantize_dynamic's
    layers, the freed fp32 ones handed back to the system)."""
    import copy

    from lasso_edit.core.loading import int8_linears

    return int8_linears(copy.deepcopy(module))


def stage_arms(built: dict[str, Any], smoke: bool) -> dict[str, Callable[[], Any]]:
    """name -> one call, for every stage and runtime measured."""
    import torch

    det, seg, pipe = built["detector"], built["segmenter"], built["inpainter"].pipe
    image = np.asarray(np.random.default_rng(0).integers(0, 256, (816, 1224, 3)), dtype=np.uint8)
    det_inputs = det.processor(text=[["a photo of a cup"]], images=image, return_tensors="pt")
    det8 = _int8(det.model)
    side = 256 if smoke else 1024
    x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    box = torch.tensor([[[0.2 * side, 0.2 * side, 0.6 * side, 0.7 * side]]])
    ids = pipe.tokenizer(["a green bowl"], padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         return_tensors="pt").input_ids
    text8 = _int8(pipe.text_encoder)
    emb = pipe.text_encoder(ids)[0]
    latent = 64 if not smoke else 32
    lat = torch.randn(1, 4, latent, latent, generator=torch.Generator().manual_seed(0))
    unet8 = _int8(pipe.unet)
    img512 = torch.rand(1, 3, latent * 8, latent * 8) * 2 - 1
    t = torch.tensor([999])
    bf = torch.bfloat16
    unet16, vae16 = _bf16(built)

    def step(unet: Any, dtype: Any = torch.float32) -> Callable[[], Any]:
        return lambda: unet(lat.to(dtype), t, encoder_hidden_states=emb.to(dtype)).sample

    return {
        "OWL-ViT B/32 detect (fp32)": lambda: det.model(**det_inputs),
        "OWL-ViT B/32 detect (int8)": lambda: det8(**det_inputs),
        "EdgeTAM encode + box (fp32)": lambda: seg.model(image_embeddings=seg.model.get_image_embeddings(x),
                                                          input_boxes=box, multimask_output=True),
        "text encoder (fp32)": lambda: pipe.text_encoder(ids),
        "text encoder (int8)": lambda: text8(ids),
        "UNet step 512 (fp32)": step(pipe.unet),
        "UNet step 512 (int8)": step(unet8),
        "UNet step 512 (bf16)": step(unet16, bf),
        "UNet step 512 (bf16 autocast)": _autocast(step(pipe.unet)),
        "TAESD encode 512 (fp32)": lambda: pipe.vae.encode(img512),
        "TAESD encode 512 (bf16)": lambda: vae16.encode(img512.to(bf)),
        "TAESD encode 512 (bf16 autocast)": _autocast(lambda: pipe.vae.encode(img512)),
        "TAESD decode 512 (fp32)": lambda: pipe.vae.decode(torch.randn(1, 4, latent, latent)),
        "TAESD decode 512 (bf16)": lambda: vae16.decode(torch.randn(1, 4, latent, latent, dtype=bf)),
        "TAESD decode 512 (bf16 autocast)": _autocast(lambda: pipe.vae.decode(torch.randn(1, 4, latent, latent))),
    }


def _autocast(fn: Callable[[], Any]) -> Callable[[], Any]:
    """`fn` under torch.autocast("cpu", bfloat16): fp32 weights, bf16 matmuls and convolutions."""
    import torch

    def run() -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return fn()

    return run


def measure(
    arms: dict[str, Callable[[], Any]], runs: int, outputs: dict[str, Any] | None = None
) -> dict[str, dict[str, float]]:
    """Median and min wall and CPU seconds per arm, interleaved after one warm-up each (whose
    answer goes into `outputs` by the arm's name, when given)."""
    import torch

    walls: dict[str, list[float]] = {k: [] for k in arms}
    cpus: dict[str, list[float]] = {k: [] for k in arms}
    with torch.inference_mode():
        for name, fn in arms.items():
            answer = fn()
            if outputs is not None:
                outputs[name] = answer
        for i in range(runs):
            for name in list(arms) if i % 2 == 0 else list(arms)[::-1]:
                t, c = time.perf_counter(), _cpu()
                arms[name]()
                walls[name].append(time.perf_counter() - t)
                cpus[name].append(_cpu() - c)
    return {k: {"wall": statistics.median(walls[k]), "wall_min": min(walls[k]), "cpu": statistics.median(cpus[k])}
            for k in arms}


# --------------------------------------------------------------------------- 2. whole edits
class _Found:
    """The real detector (its cost paid), answering the photo's own box: a random OWL-ViT's boxes
    are noise, a trained one's the object."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector

    def __getattr__(self, name: str) -> Any:
        return getattr(self.detector, name)

    def detect(self, image: np.ndarray, phrase: str, run: Callable | None = None) -> tuple[list, list[float]]:
        (run or self.detector.detect)(image, phrase)
        h, w = image.shape[:2]
        sx, sy = w / SIZE[0], h / SIZE[1]
        return [(BOX[0] * sx, BOX[1] * sy, BOX[2] * sx, BOX[3] * sy)], [0.9]


def _as_loaded(detector: Any) -> Any:
    """The detector as the lite preset loads it on a CPU: its linear layers in int8 (a copy)."""
    import copy

    from lasso_edit.core.loading import int8_linears

    loaded = copy.copy(detector)
    loaded.model = int8_linears(copy.deepcopy(detector.model))
    return loaded


def _turbo_as_loaded(inpainter: Any) -> Any:
    """The turbo painter as it loads on this CPU (TurboPainter.from_pretrained): its text encoder in
    int8 (a copy), the UNet and TAESD in bf16 where the CPU has bf16 instructions (copies made
    without an fp32 one in between), else the fp32 ones shared."""
    import copy

    import diffusers
    import torch

    from lasso_edit.core.loading import cpu_bf16, int8_linears
    from lasso_edit.edit.inpaint import Inpainter
    from lasso_edit.edit.painters.sd import TurboPainter

    pipe = inpainter.pipe
    parts = {**pipe.components, "text_encoder": int8_linears(copy.deepcopy(pipe.text_encoder))}
    if cpu_bf16():
        parts.update(unet=_cast_copy(pipe.unet, torch.bfloat16), vae=_cast_copy(pipe.vae, torch.bfloat16))
    loaded = diffusers.StableDiffusionInpaintPipeline(**parts)
    return Inpainter(TurboPainter(loaded), model_id=inpainter.model_id, default_steps=inpainter.default_steps,
                     default_guidance=0.0)


def _cast_copy(model: Any, dtype: Any) -> Any:
    """A copy of a diffusers model in `dtype`, built on the meta device and given the cast weights:
    never a second copy in the model's own dtype (the UNet's is 3.5 GB in fp32)."""
    import torch

    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    with torch.device("meta"):
        clone = type(model).from_config(model.config)
    clone.load_state_dict(state, assign=True)
    return clone.eval()


def _bf16(built: dict[str, Any]) -> tuple[Any, Any]:
    """The UNet and TAESD in bf16: the lite editor's painter's where it runs them so, else copies."""
    import torch

    pipe = built["loaded"].pipe
    if pipe.unet.dtype == torch.bfloat16:
        return pipe.unet, pipe.vae
    return _cast_copy(pipe.unet, torch.bfloat16), _cast_copy(pipe.vae, torch.bfloat16)


def remover(smoke: bool) -> Any:
    """LaMa as the lite preset removes with it: Big LaMa's graph (bench/lama.py's export, into a
    temporary folder) loaded by the `lama` painter on ONNX Runtime."""
    import lama  # bench/lama.py

    from lasso_edit.edit.inpaint import Inpainter

    folder = Path(tempfile.mkdtemp(prefix="bench-lite-lama-"))
    lama.export(smoke, folder)
    return Inpainter.from_pretrained(f"lama:{folder}", device="cpu")


def lite_editor(built: dict[str, Any]) -> Any:
    import remote

    from lasso_edit.core.presets import PRESETS
    from lasso_edit.pipeline.editor import Editor

    p = PRESETS["lite"]
    wrapped = {"detector": _Found(_as_loaded(built["detector"])), "segmenter": remote._WithinBox(built["segmenter"]),
               "inpainter": built["loaded"], "remover": built["remover"]}
    return Editor({k: (lambda v=v: v) for k, v in wrapped.items()}, models={k: "random" for k in wrapped},
                  parser=p.parser, grounder=p.grounder, box_threshold=0.0, steps=p.steps, guidance=p.guidance,
                  device="cpu")


def photo(smoke: bool) -> np.ndarray:
    import cv2
    from PIL import Image

    small = np.asarray(Image.open(ROOT / "examples" / "coffee.png").convert("RGB"))
    size = (306, 204) if smoke else SIZE
    return cv2.resize(small, size, interpolation=cv2.INTER_AREA)


def edits(editor: Any, image: np.ndarray, runs: int) -> dict[str, dict[str, Any]]:
    """Warm whole edits (editor call + nothing written), median wall and CPU, and the steps' times.
    Warm models, but a photo the segmenter has not seen: its embedding cache is emptied before each
    edit, as for a user's next photo (a second edit of the same photo skips the encoder)."""
    out: dict[str, dict[str, Any]] = {}
    segmenter = editor.stage("segmenter").segmenter  # the real EdgeTAM inside _WithinBox
    for name, instruction in EDITS.items():
        editor(image, instruction, seed=0)  # warm-up
        walls, cpus, last = [], [], None
        for _ in range(runs):
            segmenter._cache.clear()
            t, c = time.perf_counter(), _cpu()
            last = editor(image, instruction, seed=0)
            walls.append(time.perf_counter() - t)
            cpus.append(_cpu() - c)
        assert last is not None
        out[name] = {"wall": statistics.median(walls), "cpu": statistics.median(cpus),
                     "mask": float(last.mask.mean()), "timings": {k: v for k, v in last.timings.items() if v >= 5e-4},
                     "action": last.plan.edits[0].action.value}
    return out


# --------------------------------------------------------------------------- 3. the first edit
def cold(built: dict[str, Any], smoke: bool) -> dict[str, float]:
    """Save the models, then time loading them through the lite preset and a first edit, in a fresh
    process. SD-Turbo is saved as the Hub has it for the painter to read: its fp16 variant files."""
    import torch

    folder = Path(tempfile.mkdtemp(prefix="bench-lite-models-"))
    det = built["detector"]
    det.model.save_pretrained(folder / "detector")
    det.processor.save_pretrained(folder / "detector")
    built["segmenter"].model.save_pretrained(folder / "segmenter")
    built["segmenter"].processor.save_pretrained(folder / "segmenter")
    built["inpainter"].pipe.to(torch.float16).save_pretrained(folder / "inpainter", variant="fp16")  # the last use
    child = [sys.executable, __file__, "--first-edit", str(folder)] + (["--smoke"] if smoke else [])
    # a converted-weights cache of its own (loading.converted_dir), empty: the first process converts
    # and keeps the weights, as a first start does; the second reads them, as every later start does
    cache = Path(tempfile.mkdtemp(prefix="bench-lite-cache-"))
    env = {**os.environ, "LASSO_CACHE": str(cache)}
    runs = []
    try:
        for _ in range(2):
            t = time.perf_counter()
            # the spawn's wall-clock time, for the child to count from (its own clocks start after Python's)
            r = subprocess.run(child + ["--spawned", repr(time.time())], capture_output=True, text=True, cwd=ROOT,
                               env=env)
            whole = time.perf_counter() - t
            if r.returncode != 0:
                raise RuntimeError(r.stderr[-2000:])
            runs.append({**json.loads(r.stdout.strip().splitlines()[-1]), "process": whole})
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
    return {**runs[1], "converting": runs[0]}


def first_edit(folder: Path, smoke: bool, spawned: float) -> None:
    """The child: build the lite editor from the saved models, then one edit (the models load in
    it, each timed) and a second; print the seconds and the peak memory. `spawned`: the parent's
    time.time() as it started this process, so that the seconds up to the end of the first edit
    are counted from there (Python's start and torch's import included; the second edit and the
    interpreter's exit not). The detector answers the photo's box after it has run, as in the warm
    edits (a random OWL-ViT may find nothing)."""
    started = time.time() - spawned  # Python, numpy and torch's import (main's), before Lasso's
    t0 = time.perf_counter()
    from dataclasses import replace

    from lasso_edit.core.config import EditorConfig
    from lasso_edit.core.presets import PRESETS
    from lasso_edit.ground.detector import Detector
    from lasso_edit.pipeline.editor import Editor

    found = _Found(None)
    real = Detector.detect
    Detector.detect = lambda self, image, phrase: found.detect(image, phrase, lambda i, p: real(self, i, p))
    lite = replace(PRESETS["lite"], remover=None)  # no LaMa graph can be built here; the first edit is a replace
    editor = Editor.from_config(EditorConfig.of(
        preset=lite, detector=str(folder / "detector"), segmenter=str(folder / "segmenter"),
        inpainter=f"turbo:{folder / 'inpainter'}", device="cpu", box_threshold=0.0))
    image = photo(smoke)
    t1 = time.perf_counter()
    first = editor(image, EDITS["replace"], seed=0)
    t2 = time.perf_counter()
    to_first = time.time() - spawned
    editor.stage("segmenter")._cache.clear()  # a new photo's embedding, as in the warm edits
    editor(image, EDITS["replace"], seed=0)
    t3 = time.perf_counter()
    print(json.dumps({"started": started, "imports_and_build": t1 - t0, "first_edit": t2 - t1,
                      "load": editor.load_seconds, "second_edit": t3 - t2, "first_timings": first.timings,
                      "to_first_edit": to_first, "peak_gb": _maxrss_gb()}))


# --------------------------------------------------------------------------- report
REMOVE_NOTE = ("The remove row is LaMa's, the lite preset's remover: Big LaMa's generator at its real size "
               "(bench/lama_arch.py, 51 M parameters), exported at opset 17 as bench/lama.py exports it, and "
               "run by the `lama` painter on ONNX Runtime (bench/results/lama.md compares its runtimes).")


def report(stage_t: dict, edit_t: dict, first: dict | None, loads: list[float], runs: int, smoke: bool,
           peak: float) -> str:
    import torch

    from lasso_edit.core.loading import cpu_bf16

    lines = [
        "# lite: the `lite` preset on this CPU" + (" (smoke run: tiny models, no claim)" if smoke else ""),
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {torch.get_num_threads()}; Python {platform.python_version()}; fp32 unless said; random "
        f"weights at real size; median of {runs} runs after a warm-up; load average (1 min) {min(loads):.1f} to "
        f"{max(loads):.1f}.",
        "",
        "## Stages and runtimes",
        "",
        "| stage (runtime) | wall (s) | min wall (s) | CPU (s) |",
        "|---|---|---|---|",
        *(f"| {k} | {v['wall']:.3f} | {v['wall_min']:.3f} | {v['cpu']:.3f} |" for k, v in stage_t.items()),
        "",
        f"## Whole edits of a {SIZE[0]}x{SIZE[1]} photo (warm; the editor's call, nothing written; SD-Turbo's "
        f"UNet and TAESD in {'bf16' if cpu_bf16() else 'fp32'}, as the lite preset loads them on this CPU)",
        "",
        "| edit | wall (s) | CPU (s) | target (s) | met | mask | steps (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in edit_t.items():
        steps = ", ".join(f"{k} {t:.2f}" for k, t in v["timings"].items() if k != "total")
        met = "yes" if v["wall"] <= TARGETS[name] else "no"
        lines.append(f"| {name} | {v['wall']:.2f} | {v['cpu']:.2f} | {TARGETS[name]:.0f} | {met} | {v['mask']:.1%} "
                     f"| {steps} |")
    lines += ["", REMOVE_NOTE]
    if first is not None:
        warm = edit_t["replace"]["wall"]
        own = first["first_edit"] - first["load"]
        lines += ["", "## First edit after start (models on disk, a fresh process)", "",
                  f"From the process's start to the end of its first replace edit (Python, imports, the editor "
                  f"built from the saved models, the edit): {first['to_first_edit']:.1f} s, "
                  f"{first['to_first_edit'] - warm:.1f} s more than a warm replace (target <= 10). Of it: the "
                  f"process's start and Python, numpy and torch's import {first['started']:.1f} s; "
                  f"Lasso's imports and the editor's build {first['imports_and_build']:.1f} s; "
                  f"the first edit {first['first_edit']:.1f} s, of which loading the models (lazily, in the edit) "
                  f"{first['load']:.1f} s and the edit itself {own:.1f} s; the same edit again in that process "
                  f"{first['second_edit']:.1f} s (first-call cost {own - first['second_edit']:.1f} s; the whole "
                  f"process, that second edit and its exit included, {first['process']:.1f} s). The first "
                  f"edit's steps: " + ", ".join(f"{k} {v:.2f}" for k, v in first["first_timings"].items()
                                                if v >= 0.005 and k != "total") + ".", "",
                  f"That is a start after the first: the first start converts what a CPU load converts (the "
                  f"UNet to bf16, OWL-ViT's and the text encoder's linears to int8) and keeps it in the "
                  f"converted-weights cache, which every later start reads (loading.converted_dir). The first "
                  f"start, the cache empty: {first['converting']['to_first_edit']:.1f} s to the end of its first "
                  f"edit, {first['converting']['to_first_edit'] - warm:.1f} s more than a warm replace; loading "
                  f"the models {first['converting']['load']:.1f} s, the cache written included.", "",
                  f"Peak memory of that process (max RSS: the lite preset's models and two replace edits): "
                  f"{first['peak_gb']:.2f} GB (target <= 4). (This benchmark's own process holds extra copies "
                  f"of the models for the runtime arms: {peak:.1f} GB.)"]
    else:
        lines += ["", f"Peak memory of this process (with the runtime arms' copies): {peak:.1f} GB."]
    return "\n".join(lines) + "\n"


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # quantize_dynamic's move to torchao
    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="tiny models and a small photo")
    p.add_argument("--no-cold", action="store_true", help="skip the first-edit measurement (saves the models)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--first-edit", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--spawned", type=float, help=argparse.SUPPRESS)  # the parent's time.time() at the child's start
    args = p.parse_args()
    import torch

    from lasso_edit.core.loading import release_freed_memory

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    if args.first_edit is not None:
        first_edit(args.first_edit, args.smoke, time.time() if args.spawned is None else args.spawned)
        return
    loads = [os.getloadavg()[0]]
    built = stages(args.smoke)
    built["loaded"] = _turbo_as_loaded(built["inpainter"])
    built["remover"] = remover(args.smoke)
    arms = stage_arms(built, args.smoke)
    __import__("gc").collect()
    release_freed_memory()  # the copies' transients (a deepcopy of the UNet before int8: 3.5 GB)
    stage_t = measure(arms, args.runs)
    loads.append(os.getloadavg()[0])
    edit_t = edits(lite_editor(built), photo(args.smoke), args.runs)
    loads.append(os.getloadavg()[0])
    peak = _maxrss_gb()
    first = None if args.no_cold else cold(built, args.smoke)
    text = report(stage_t, edit_t, first, loads, args.runs, args.smoke, peak)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lite.md").write_text(text)
    (args.out / "lite.json").write_text(json.dumps({"stages": stage_t, "edits": edit_t, "first": first,
                                                    "peak_gb": peak, "loads": loads,
                                                    "remover": type(built["remover"].painter).__name__}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
