"""bench/compare.py's ablation, memory (one subprocess per arm) and --compile sections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import arms
import build
import numpy as np
from stats import stats, sync


def timeit(fn, warmup: int, runs: int, inputs=None) -> dict:
    """Median, p10, p90 of `fn(x)` over `runs` after `warmup` (x from `inputs`, cycled, or None)."""
    xs = []
    for i in range(warmup + runs):
        x = inputs[i % len(inputs)] if inputs else None
        sync()
        t = time.perf_counter()
        fn(x)
        sync()
        if i >= warmup:
            xs.append(time.perf_counter() - t)
    return stats(xs)


def run(b) -> dict:
    """Each optimization on and off, stage by stage, at 512x512 (24 MP where it is about size)."""
    from lasso_edit.core.plan import Grounding
    from lasso_edit.edit.base import ExecSettings
    from lasso_edit.edit.inpaint import Inpainter
    from lasso_edit.edit.painters.sd import set_scheduler
    from lasso_edit.imaging.arrays import composite
    from lasso_edit.parse.loop import PROMPT
    from lasso_edit.parse.rules import RulesParser
    from lasso_edit.pipeline.refine import RefineSettings, _refine, refine
    from lasso_edit.segment.sam import SamSegmenter

    small = (64, 64) if b.args.smoke else (512, 512)
    big = (300, 450) if b.args.smoke else (4000, 6000)
    w, r = (1, 2) if b.args.smoke else (3, b.args.ablation_runs)  # issue 17: >= 10 measured runs per row
    rows: list[dict] = []
    section = {"rows": rows}

    def add(stage, variant, time, base=None):
        row = {"stage": stage, "variant": variant, "time": time}
        if base is not None:
            row["speedup"] = base["median"] / time["median"]
            # the spreads overlap: the difference is not shown to be more than run-to-run noise
            row["within_noise"] = not (time["p90"] < base["p10"] or time["p10"] > base["p90"])
        rows.append(row)
        b.report["sections"]["ablation"] = section
        b.save()
        return time

    case = arms.make_case(*small, "remove", 0.25)
    vlm = b.stages["vlm"]
    q = PROMPT.format(instruction=case.instruction)

    # VLM: one constrained compact ask against the two free-form asks of 40 tokens it replaces.
    def asks(n_tokens, n_asks, constrained):
        def f(_):
            vlm.max_new_tokens = vlm.min_new_tokens = n_tokens
            for _ in range(n_asks):
                vlm.ask(case.image, q, constrained=constrained)
        return f

    before = add("vlm", "2 free-form asks x 40 tokens (before)", timeit(asks(40, 2, False), w, r))
    add("vlm", f"1 constrained compact ask x {b.tokens} tokens", timeit(asks(b.tokens, 1, True), w, r), before)
    free = add("vlm", f"1 free-form ask x {b.tokens} tokens (grammar off)", timeit(asks(b.tokens, 1, False), w, r))
    add("vlm", f"1 constrained ask x {b.tokens} tokens (grammar cost)", timeit(asks(b.tokens, 1, True), w, r), free)
    # Decode speed alone: a long answer less a short one (the prefill and the image cancel out).
    long_n = 16 if b.args.smoke else 72
    per_token = []
    for _ in range(w + r):
        t_long = timeit(asks(long_n, 1, False), 0, 1)["median"]
        t_short = timeit(asks(8, 1, False), 0, 1)["median"]
        per_token.append(1000.0 * (t_long - t_short) / (long_n - 8))
    section["vlm_decode_ms_per_token"] = stats(per_token[w:])
    section["vlm_decode_tokens"] = long_n
    vlm.max_new_tokens = vlm.min_new_tokens = b.tokens

    # Overlap of SAM encoding and detection with the VLM's decoding, end to end.
    b.editor.overlap = False
    off = add("editor", "no overlap", timeit(lambda _: b.run_lasso(case), w, r))
    b.editor.overlap = True
    add("editor", "SAM + detector overlapped with the VLM (opt-in)", timeit(lambda _: b.run_lasso(case), w, r), off)
    b.editor.overlap = False

    # Detector: bf16 autocast with fp32 heads; pre-shrunk input at 24 MP.
    det = b.stages["detector"]
    big_case = arms.make_case(*big, "remove", 0.05)
    auto = det.autocast
    det.autocast = False
    fp32 = add("detector", "fp32", timeit(lambda _: det.detect(case.image, "car"), w, r))
    det.autocast = auto
    add("detector", f"autocast bf16 + fp32 heads ({'on' if auto else 'off: CPU'})",
        timeit(lambda _: det.detect(case.image, "car"), w, r), fp32)
    shrink = det._shrink
    det._shrink = lambda im: im
    full = add("detector", "24 MP handed to the processor", timeit(lambda _: det.detect(big_case.image, "car"), w, r))
    det._shrink = shrink
    add("detector", "24 MP pre-shrunk to the processor's size", timeit(lambda _: det.detect(big_case.image, "car"), w, r),
        full)

    # SAM: bf16 against fp32, each call on a new image (encode + decode).
    imgs = [arms.make_case(*small, "remove", 0.05, seed=200 + i) for i in range(w + r)]
    g = Grounding([imgs[0].box], [1.0], "bench")
    seg32 = SamSegmenter(b.baseline.sam, b.baseline.sam_processor)
    seg16 = b.stages["segmenter"]
    base = add("segmenter", "fp32", timeit(lambda c: (seg32._cache.clear(), seg32.segment(c.image, g)), w, r, imgs))
    add("segmenter", "bf16 (SDPA in both)", timeit(lambda c: (seg16._cache.clear(), seg16.segment(c.image, g)), w, r,
                                                 imgs), base)
    # SAM post-processing at 24 MP: post_process_masks of all 3 candidates against the chosen one in its window.
    import torch

    emb, orig, resized = seg16.set_image(big_case.image)
    sc = torch.tensor([resized[1] / big[1], resized[0] / big[0]] * 2)
    boxes = (torch.tensor([[list(big_case.box)]]) * sc).to(seg16.model.device, seg16.model.dtype)
    with torch.inference_mode():
        out = seg16.model(image_embeddings=emb, input_boxes=boxes, multimask_output=True)
    ip = seg16.processor.image_processor
    pp = add("segmenter", "post_process_masks, 3 candidates, 24 MP",
             timeit(lambda _: ip.post_process_masks(out.pred_masks.float().cpu(), [list(orig)], [list(resized)]), w, r))
    add("segmenter", "chosen candidate only, in its window, on the device",
        timeit(lambda _: seg16._full_size(out.pred_masks[0, 0, 0], orig, resized), w, r), pp)

    # Diffusion at 512x512: the checkpoint's defaults, then each change in turn.
    region = case.mask.copy()
    edit = RulesParser().parse(case.image, case.instruction).edits[0]
    plain = build.clone_pipe(b.baseline.pipe)  # unfused, channels-first: what from_pretrained gives
    lasso_inp = b.stages["inpainter"]

    def paint(inp, steps):
        return lambda _: inp.execute(case.image, region, edit, ExecSettings(seed=1, steps=steps, guidance=7.5))

    base = add("diffusion", "PNDM 50 steps, guidance on every step (checkpoint defaults)",
               timeit(paint(Inpainter(plain), 50), w, r))
    set_scheduler(plain, "dpm++2m")
    add("diffusion", "DPM++ 2M 25 steps", timeit(paint(Inpainter(plain), 25), w, r), base)
    add("diffusion", "+ guidance off after 80% of the steps",
        timeit(paint(Inpainter(plain, guidance_end=0.8), 25), w, r), base)
    dc = Inpainter(plain, guidance_end=0.8, deepcache=3)
    add("diffusion", "+ DeepCache, a full step every 3 (opt-in, approximate)", timeit(paint(dc, 25), w, r), base)
    dc.deepcache.disable()
    add("diffusion", "+ channels_last + fused QKV (balanced preset)", timeit(paint(lasso_inp, 25), w, r), base)
    fast = getattr(b, "fast_stages", {}).get("inpainter")
    if fast is not None:
        add("diffusion", "TCD-LoRA 4 steps, no guidance (fast preset; few-step)",
            timeit(lambda _: fast.execute(case.image, region, edit, ExecSettings(seed=1, steps=4, guidance=1.0)),
                   w, r), base)
    del plain, dc

    # CPU side at 24 MP: refine and composite on a crop around the mask against the whole frame.
    m = big_case.mask
    rs = RefineSettings()
    fw = max(1, int(round(rs.feather * max(big) / 1024)))
    whole = add("cpu", "refine (remove) on the whole frame, 24 MP",
                timeit(lambda _: _refine(m, arms_action("remove"), rs, big_case.image, fw), w, r))
    add("cpu", "refine (remove) on a crop around the mask", timeit(
        lambda _: refine(m, arms_action("remove"), rs, big_case.image), w, r), whole)
    reg, alpha = refine(m, arms_action("remove"), rs, big_case.image)
    edited = big_case.image[::-1].copy()
    h, wd = big
    full = add("cpu", "composite on the whole frame, 24 MP",
               timeit(lambda _: composite(big_case.image, edited, alpha, (0, 0, wd, h)), w, r))
    add("cpu", "composite inside the mask's box", timeit(lambda _: composite(big_case.image, edited, alpha), w, r), full)
    return section


def arms_action(name: str):
    from lasso_edit.core.plan import Action

    return Action(name)


# --------------------------------------------------------------------------- memory, one process per arm
def _save_models(b, folder: Path) -> dict[str, str]:
    """The balanced models as fp16 safetensors (SAM and the detector in fp32, as published)."""
    paths = {k: folder / k for k in ("vlm", "segmenter", "detector", "inpainter")}
    if all((p / ".done").exists() for p in paths.values()):
        return {k: str(v) for k, v in paths.items()}
    m = b.baseline
    m.vlm.save_pretrained(paths["vlm"])
    m.vlm_processor.save_pretrained(paths["vlm"])
    m.sam.save_pretrained(paths["segmenter"])
    m.sam_processor.save_pretrained(paths["segmenter"])
    det = b.stages["detector"]
    det.model.save_pretrained(paths["detector"])
    det.processor.save_pretrained(paths["detector"])
    m.pipe.save_pretrained(paths["inpainter"])
    for p in paths.values():
        (p / ".done").write_text("ok")
    return {k: str(v) for k, v in paths.items()}


def memory(b) -> dict:
    t = time.perf_counter()
    paths = _save_models(b, b.scratch / "models")
    out: dict = {"save_s": round(time.perf_counter() - t, 1)}
    for arm in ("lasso", "baseline", "lasso-low-vram"):
        if arm == "lasso-low-vram" and not b.cuda:
            out[arm] = {"skipped": "--low-vram needs CUDA"}
            continue
        if b.left() < 45:
            out[arm] = {"skipped": "time budget"}
            continue
        cmd = [sys.executable, str(Path(__file__).with_name("compare.py")), "--child", arm,
               "--models", json.dumps(paths), "--tokens", str(b.tokens)] + (["--smoke"] if b.args.smoke else [])
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(30, min(240, b.left() - 10)))
            last = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
            out[arm] = json.loads(last[-1]) if last else {"error": (p.stderr or p.stdout)[-600:]}
        except subprocess.TimeoutExpired:
            out[arm] = {"error": "timed out"}
        print(f"[memory] {arm}: {out[arm]}", flush=True)
        b.report["sections"]["memory"] = out
        b.save()
    return out


def child_main(args) -> int:
    """One arm in a fresh process: cold start from saved files, first call, warm calls, peak memory."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    cuda = torch.cuda.is_available() and not args.smoke
    dev = "cuda" if cuda else "cpu"
    paths = json.loads(args.models)
    size = (64, 64) if args.smoke else (512, 512)
    case = arms.make_case(*size, "remove", 0.05)
    clock = arms.Clock(cuda)
    t = time.perf_counter()
    if args.child == "baseline":
        from diffusers import StableDiffusionInpaintPipeline
        from transformers import AutoProcessor, LlavaForConditionalGeneration, SamModel, SamProcessor

        half = torch.float16 if cuda else torch.float32
        vlm = LlavaForConditionalGeneration.from_pretrained(paths["vlm"], dtype=half).to(dev)
        m = arms.BaselineModels(vlm, AutoProcessor.from_pretrained(paths["vlm"]),
                                SamModel.from_pretrained(paths["segmenter"]).to(dev),
                                SamProcessor.from_pretrained(paths["segmenter"]),
                                StableDiffusionInpaintPipeline.from_pretrained(paths["inpainter"], torch_dtype=half).to(dev),
                                dev)
        m.pipe.set_progress_bar_config(disable=True)

        def once():
            arms.baseline_edit(m, case, args.tokens, 1, clock)
    else:
        from lasso_edit import Editor

        editor = Editor.from_preset("balanced", device=dev, vlm=paths["vlm"], segmenter=paths["segmenter"],
                                    inpainter=paths["inpainter"], detector=paths["detector"],
                                    low_vram=args.child == "lasso-low-vram")
        for s in ("vlm", "detector", "segmenter", "inpainter"):
            editor.stage(s)
        vlm = editor.stage("vlm")
        vlm.max_new_tokens = vlm.min_new_tokens = args.tokens
        oracle = arms.Oracle()
        oracle.case = case
        editor.use("vlm", arms.OracleParser(vlm, oracle, clock))
        editor.use("detector", arms.OracleDetector(editor.stage("detector"), oracle, clock))
        editor.use("segmenter", arms.OracleSegmenter(editor.stage("segmenter"), oracle, clock))

        def once():
            editor(case.image, case.instruction, seed=1)
    sync()
    cold = time.perf_counter() - t
    t = time.perf_counter()
    once()
    sync()
    first = time.perf_counter() - t
    warm = []
    for _ in range(2):
        t = time.perf_counter()
        once()
        sync()
        warm.append(time.perf_counter() - t)
    res = {"cold_start_s": cold, "first_call_s": first, "warm_s": float(np.median(warm)), "peak_gib": 0.0,
           "nvml_gib": None}
    if cuda:
        res["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        res["reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
        try:
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(0)
            mine = [p.usedGpuMemory for p in pynvml.nvmlDeviceGetComputeRunningProcesses(h) if p.pid == os.getpid()]
            res["nvml_gib"] = round(mine[0] / 2**30, 2) if mine and mine[0] else None
        except Exception as e:  # noqa: BLE001
            res["nvml_error"] = str(e)[:200]
    print(json.dumps(res), flush=True)
    return 0


# --------------------------------------------------------------------------- --compile
def compile_run(b) -> dict:
    """--compile's cost and gain: UNet, VAE decoder and SAM encoder compiled, then warm runs."""
    case = arms.make_case(*((64, 64) if b.args.smoke else (512, 512)), "remove", 0.05)
    b.stages["inpainter"].compile()
    b.stages["segmenter"].compile()
    sync()
    t = time.perf_counter()
    b.run_lasso(case)
    first = time.perf_counter() - t
    t = time.perf_counter()
    b.run_lasso(case)
    second = time.perf_counter() - t
    warm = timeit(lambda _: b.run_lasso(case), 1, 3 if b.args.smoke else 8)
    from report import find_case

    eager = find_case(b.report, case.name)
    eager_med = eager["arms"]["lasso"]["e2e"]["median"] if eager else None
    return {"first_call_with_compile_s": first, "second_call_s": second, "warm": warm,
            "eager_lasso_median_s": eager_med,
            "speedup_vs_eager": (eager_med / warm["median"]) if eager_med else None,
            "compiled": ["unet", "vae.decoder", "sam.vision_encoder"],
            "note": "VLM static cache + compile not measured here (its warm-up alone exceeds the budget)"}
