"""The cost of the two design pieces of issue 9, on full-size random-weight models (one GPU):

  attention  LLaVA-1.5-7B: the attention grounder's extra work (two prefill passes on the eager
             kernel, ground/attention.py) against the plan it follows (one prefill and 40 decoded
             tokens, LlavaParser.ask), in the same run; and the memory the eager pass adds.
  train      SD 1.5 inpainting at 512 px, batch 4, LoRA rank 8 on the attention layers (lasso train's
             defaults): seconds per optimizer step and peak GPU memory, without and with gradient
             checkpointing, and their ratio.

    python bench/design.py --out bench/results            # on a GPU (bench/gpu.sh's wheels apply)
    python bench/design.py --smoke --out /tmp/d           # tiny models on the CPU: runs every line

Writes design.json and design.md under --out. Compute does not depend on weight values, so these
are the real models' costs (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import build  # noqa: E402


def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t)
    return out


def _peak(device, fn) -> float | None:
    import torch

    if not str(device).startswith("cuda"):
        fn()
        return None
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    fn()
    return torch.cuda.max_memory_allocated() / 2**30


def attention(device, dtype, scale, runs: int) -> dict:
    import numpy as np

    from lasso_edit.ground.attention import heatmap
    from lasso_edit.parse.llava import LlavaParser

    model, proc = build.llava(device, dtype, scale)
    vlm = LlavaParser(model, proc, constrained=False, max_new_tokens=40, min_new_tokens=40)
    image = np.random.default_rng(0).integers(0, 255, (768, 1024, 3), dtype=np.uint8)
    ask = lambda: vlm.ask(image, "make the mug she is holding red")  # noqa: E731
    heat = lambda: heatmap(vlm, image, "mug she is holding")  # noqa: E731
    for fn in (ask, heat):  # warm-up
        fn()
    plan_s, heat_s = [], []
    for _ in range(runs):  # alternating, so drift hits both alike
        plan_s += _timed(ask, device, 1)
        heat_s += _timed(heat, device, 1)
    plan_gb, heat_gb = _peak(device, ask), _peak(device, heat)
    out = {"model": "llava-1.5-7b (random weights)" if scale == build.FULL else "tiny llava",
           "plan_ask_s": statistics.median(plan_s), "attention_pass_s": statistics.median(heat_s),
           "tokens_decoded": vlm.last_new_tokens, "runs": runs}
    out["attention_over_plan"] = out["attention_pass_s"] / out["plan_ask_s"]
    if plan_gb is not None:
        out.update(plan_peak_gb=plan_gb, attention_peak_gb=heat_gb)
    return out


def _pairs(folder: Path, n: int, side: int) -> Path:
    import numpy as np
    from PIL import Image

    rows = []
    for i in range(n):
        rng = np.random.default_rng(i)
        src = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
        mask = np.zeros((side, side), bool)
        mask[side // 4: 3 * side // 4, side // 5: 4 * side // 5] = True  # a large edit: the crop is the image
        target = src.copy()
        target[mask] = (200, 40, 40)
        for name, arr in (("s", src), ("m", mask.astype(np.uint8) * 255), ("t", target)):
            Image.fromarray(arr).save(folder / f"{name}{i}.png")
        rows.append({"image": f"s{i}.png", "mask": f"m{i}.png", "target": f"t{i}.png", "instruction": "make it red"})
    path = folder / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def train(device, dtype, scale, steps: int) -> dict:
    import torch

    from lasso_edit.train.trainer import TrainConfig, Trainer

    side = 512 if scale == build.FULL else 64
    out: dict = {"model": "SD 1.5 inpainting (random weights)" if scale == build.FULL else "tiny SD inpainting",
                 "resolution": side, "batch": 4, "rank": 8, "steps_timed": steps}
    with tempfile.TemporaryDirectory() as tmp:
        data = _pairs(Path(tmp), 4, side)
        for ckpt in (False, True):
            pipe = build.sd_inpaint(device, dtype, scale)
            mp = "no" if not str(device).startswith("cuda") else ("bf16" if dtype == torch.bfloat16 else "fp16")
            cfg = TrainConfig(data=data, output=Path(tmp) / f"lora-{ckpt}", steps=steps + 2, batch_size=4,
                              validation=0, checkpoint_every=0, gradient_checkpointing=ckpt, mixed_precision=mp,
                              device=str(device), resolution=side)
            times: list[float] = []
            t = Trainer(cfg, on_step=lambda e, n: times.append(e.seconds), pipe=pipe)
            t.setup()
            t.validate = lambda: None  # the validation sheet is not what is timed
            t.save_lora = lambda: None
            if str(device).startswith("cuda"):
                torch.cuda.reset_peak_memory_stats()
            t.train()
            key = "checkpointing" if ckpt else "plain"
            out[f"{key}_step_s"] = statistics.median(times[2:])  # two warm-up steps
            if str(device).startswith("cuda"):
                out[f"{key}_peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
            del t, pipe
            if str(device).startswith("cuda"):
                torch.cuda.empty_cache()
    out["checkpointing_time_ratio"] = out["checkpointing_step_s"] / out["plain_step_s"]
    if "plain_peak_gb" in out:
        out["checkpointing_memory_ratio"] = out["checkpointing_peak_gb"] / out["plain_peak_gb"]
    return out


def markdown(rep: dict) -> str:
    a, t = rep["sections"].get("attention", {}), rep["sections"].get("train", {})
    lines = [f"# Attention grounding and LoRA training ({rep['device']})", "",
             "Full-size architectures with random weights" if not rep["smoke"] else
             "Smoke run (tiny models on the CPU): no timing claims", ""]
    if "plan_ask_s" in a:
        lines += [f"## Attention grounding ({a['model']})", "", "| | median s | peak GB |", "|---|---|---|",
                  f"| plan: prefill + {a['tokens_decoded']} tokens | {a['plan_ask_s']:.3f} | {a.get('plan_peak_gb', '-')} |",
                  f"| attention pass: 2 eager prefills | {a['attention_pass_s']:.3f} | {a.get('attention_peak_gb', '-')} |",
                  "", f"The attention pass costs {a['attention_over_plan']:.2f}x the plan it follows.", ""]
    elif a:
        lines += [f"attention: {a}", ""]
    if "plain_step_s" in t:
        lines += [f"## LoRA training step ({t['model']}, {t['resolution']} px, batch 4, rank 8)", "",
                  "| | s / step | peak GB |", "|---|---|---|",
                  f"| plain | {t['plain_step_s']:.3f} | {t.get('plain_peak_gb', '-')} |",
                  f"| gradient checkpointing | {t['checkpointing_step_s']:.3f} | {t.get('checkpointing_peak_gb', '-')} |",
                  "", f"Checkpointing: {t['checkpointing_time_ratio']:.2f}x the time"
                  + (f", {t['checkpointing_memory_ratio']:.2f}x the memory." if "checkpointing_memory_ratio" in t
                     else "."), ""]
    elif t:
        lines += [f"train: {t}", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--skip", default="")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    scale = build.TINY if args.smoke else build.FULL
    dtype = torch.float32 if device == "cpu" else torch.float16
    name = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({platform.processor() or platform.machine()})"
    rep = {"device": name, "smoke": args.smoke, "torch": torch.__version__, "sections": {}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for section, fn in (("attention", lambda: attention(device, dtype, scale, args.runs)),
                        ("train", lambda: train(device, dtype, scale, args.steps))):
        if section in args.skip.split(","):
            continue
        try:
            rep["sections"][section] = fn()
        except Exception as e:  # noqa: BLE001 - one section's failure must not lose the other
            rep["sections"][section] = {"error": f"{type(e).__name__}: {e}"}
        (out / "design.json").write_text(json.dumps(rep, indent=2))
    (out / "design.md").write_text(markdown(rep))
    print(markdown(rep))
    return 0 if not any("error" in s for s in rep["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
