"""Benchmark of the `lite` preset's remover on this CPU: Big LaMa (bench/lama_arch.py, the authors'
architecture at its real size with random weights: compute does not depend on weight values)
exported to ONNX as Carve/LaMa-ONNX's lama_fp32.onnx is (`image` [1,3,512,512] in [0,1], `mask`
[1,1,512,512], the answer in [0,1]), then timed.

    python bench/lama.py                       # bench/results/lama.{md,json} (a few minutes)
    python bench/lama.py --smoke --out /tmp/l  # the same architecture, tiny (ngf 8, 2 blocks): no claim

1. **The network alone** at 512x512, a median of `--runs` after a warm-up, wall and CPU seconds,
   arms interleaved (bench/lite.py's measure): the ONNX graph in ONNX Runtime
   (CPUExecutionProvider, 2 threads, and 1 thread), the torch module eager in fp32 and under
   `torch.autocast("cpu", bfloat16)`.
2. **A whole remove edit of a 1224x816 photo** (warm): the editor built by `Editor.from_preset("lite",
   remover="lama:FOLDER")`, so the graph loads through the `lama` painter's own path; the lite
   detector (OWL-ViT B/32, int8 linears) and segmenter (EdgeTAM) at real size with random weights
   served in place of the Hub's (bench/lite.py's helpers: the detector answers the photo's box after
   it has run, EdgeTAM's mask kept inside it). The inpainter is the tiny one: a remove never calls it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import lama_arch  # noqa: E402  bench/lama_arch.py
import lite  # noqa: E402  bench/lite.py: measure, photo, the detector and segmenter stand-ins

ONNX_FILE = "lama_fp32.onnx"  # lasso_edit/edit/painters/lama.py: Carve/LaMa-ONNX's file name
SIDE = 512  # Carve/LaMa-ONNX's fixed input size


def _inputs(side: int = SIDE) -> tuple[Any, Any]:
    """An image in [0,1] and a mask with a 240x310-pixel hole scaled to `side` (lite.BOX's share)."""
    import torch

    image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, side, side)
    mask[..., side * 250 // 816: side * 560 // 816, side * 520 // 1224: side * 760 // 1224] = 1.0
    return image, mask


def export(smoke: bool, folder: Path) -> dict[str, Any]:
    """Export Big LaMa at opset 17 to folder/lama_fp32.onnx: first with torch.fft (the TorchScript
    exporter, then the dynamo one), else with the DFT as matrix products. Says which worked."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    tried: list[str] = []
    attempts = [("torch.fft, TorchScript exporter", "torch", False), ("torch.fft, dynamo exporter", "torch", True),
                ("DFT as matmul, TorchScript exporter", "matmul", False)]
    for name, fft, dynamo in attempts:
        model = lama_arch.big_lama(fft, smoke)
        t = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # a refusal prints the whole graph
                torch.onnx.export(model, _inputs(), str(folder / ONNX_FILE), input_names=["image", "mask"],
                                  output_names=["output"], opset_version=17, dynamo=dynamo)
        except Exception as e:  # noqa: BLE001 - an exporter's refusal is the finding
            tried.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
            (folder / ONNX_FILE).unlink(missing_ok=True)
            continue
        return {"exporter": name, "export_s": time.perf_counter() - t, "failed": tried,
                "onnx_mb": (folder / ONNX_FILE).stat().st_size / 1e6}
    raise RuntimeError("no export worked: " + "; ".join(tried))


def ort_session(path: Path, threads: int = 2) -> Any:
    """ONNX Runtime on the CPU provider with `threads` intra-op threads."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def network_arms(smoke: bool, folder: Path) -> tuple[dict[str, Callable[[], Any]], dict[str, float]]:
    """The arms of part 1, and how far ONNX Runtime's and torch's answers lie apart."""
    import torch

    model = lama_arch.big_lama("torch", smoke)
    session = ort_session(folder / ONNX_FILE)
    single = ort_session(folder / ONNX_FILE, threads=1)  # does the second thread help on this machine?
    image, mask = _inputs()
    feed = {"image": image.numpy(), "mask": mask.numpy()}

    def bf16() -> Any:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(image, mask)

    with torch.inference_mode():
        ref = model(image, mask).numpy()
        got = session.run(None, feed)[0]
        low = bf16().float().numpy()
    check = {"ort_vs_torch_max_abs": float(np.abs(got - ref).max()),
             "bf16_vs_fp32_max_abs": float(np.abs(low - ref).max()),
             "out_min": float(got.min()), "out_max": float(got.max())}
    arms = {"ONNX Runtime fp32 (CPU EP, 2 threads)": lambda: session.run(None, feed),
            "ONNX Runtime fp32 (CPU EP, 1 thread)": lambda: single.run(None, feed),
            "torch eager fp32": lambda: model(image, mask), "torch eager bf16 autocast": bf16}
    return arms, check


def remove_editor(smoke: bool, folder: Path) -> Any:
    """The lite editor with the remover loaded by its local folder through the preset, and the real
    size detector and segmenter (random weights) served as bench/lite.py serves them."""
    import remote  # bench/remote.py: EdgeTAM at its real size

    from lasso_edit.ground.detector import Detector
    from lasso_edit.pipeline.editor import Editor
    from lasso_edit.segment.sam import SamSegmenter

    editor = Editor.from_preset("lite", detector="tiny:detector", segmenter="tiny:segmenter",
                                inpainter="tiny:inpainter", remover=f"lama:{folder}", device="cpu",
                                box_threshold=0.0)
    det, proc = lite.owlvit(smoke)
    seg, _ = remote.edgetam(smoke)
    detector = lite._as_loaded(Detector(det, proc, model_id="owlvit-base-patch32 (random)"))
    editor.use("detector", lite._Found(detector))
    editor.use("segmenter", remote._WithinBox(SamSegmenter(seg, remote._processor(smoke), model_id="EdgeTAM")))
    return editor


def remove_edits(editor: Any, image: np.ndarray, runs: int) -> dict[str, Any]:
    """Warm remove edits (lite.edits' way: a warm-up, then `runs`, the segmenter's embedding cache
    emptied before each): median wall and CPU, the steps' seconds, the remover's load."""
    t = time.perf_counter()
    editor(image, lite.EDITS["remove"], seed=0)  # warm-up; loads the remover through the painter
    first = time.perf_counter() - t
    walls, cpus, last = [], [], None
    for _ in range(runs):
        editor.stage("segmenter").segmenter._cache.clear()
        t, c = time.perf_counter(), time.process_time()
        last = editor(image, lite.EDITS["remove"], seed=0)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    assert last is not None
    return {"wall": statistics.median(walls), "wall_min": min(walls), "cpu": statistics.median(cpus),
            "first_s": first, "load_s": editor.load_seconds, "mask": float(last.mask.mean()),
            "painter": type(editor.stage("remover").painter).__name__,
            "timings": {k: v for k, v in last.timings.items() if v >= 5e-4}}


# --------------------------------------------------------------------------- report
def report(r: dict[str, Any], smoke: bool) -> str:
    """The markdown of a run."""
    loads, net, edit = r["loads"], r["network"], r["remove_edit"]
    ex = r["export"]
    lines = [
        "# lama: the `lite` preset's remover (Big LaMa on ONNX Runtime) on this CPU"
        + (" (smoke run: a tiny LaMa, no claim)" if smoke else ""),
        "",
        f"{r['when']}; {platform.machine()}, {os.cpu_count()} cores"
        + (", busy (other processes ran beside it)" if max(loads) > 2.5 else "") + ", "
        f"load average (1 min) {min(loads):.1f} to {max(loads):.1f} (read at each step: {', '.join(f'{x:.1f}' for x in loads)}); "
        f"torch {r['torch']}, onnxruntime {r['onnxruntime']}; random weights at real size; median of {r['runs']} "
        "runs after a warm-up; CPU seconds (time.process_time) beside wall.",
        "",
        "Big LaMa's generator (bench/lama_arch.py, after advimman/lama's ffc.py and big-lama.yaml: ngf 64, "
        "3 downsamplings, 18 FFC resnet blocks at 512 channels, 75% global, no LFU, sigmoid"
        + ("; this smoke run's: ngf 8, 2 blocks" if smoke else "") + "): "
        f"**{r['params'] / 1e6:.2f} M parameters** (the paper's Big LaMa: 51M; its 27M is LaMa-Fourier, 9 blocks). "
        f"Exported at opset 17 by {ex['exporter']} ({ex['export_s']:.0f} s, {ex['onnx_mb']:.0f} MB; Carve's "
        f"lama_fp32.onnx is about 208 MB)." + ("" if not ex["failed"] else " Tried first, failed: " + "; ".join(ex["failed"]) + "."),
        f"ONNX Runtime's answer vs torch eager: max |diff| {r['check']['ort_vs_torch_max_abs']:.1e}; bf16 autocast "
        f"vs fp32: {r['check']['bf16_vs_fp32_max_abs']:.1e}; answer in [{r['check']['out_min']:.2f}, "
        f"{r['check']['out_max']:.2f}].",
        "",
        "## The network alone, 512x512",
        "",
        "| runtime | wall (s) | min wall (s) | CPU (s) |",
        "|---|---|---|---|",
        *(f"| {k} | {v['wall']:.2f} | {v['wall_min']:.2f} | {v['cpu']:.2f} |" for k, v in net.items()),
        "",
        "Where CPU seconds come near wall with 2 threads, the process had about one core of the two (the others' "
        "load): a pass costs the CPU seconds; an idle 2-core machine could at best halve the wall, if the two "
        "threads scale (not measured here).",
        "",
        f"## A whole remove edit of a {lite.SIZE[0]}x{lite.SIZE[1]} photo (warm; the editor's call)",
        "",
        "The editor: `Editor.from_preset(\"lite\", remover=\"lama:FOLDER\")` (the graph loaded by the lama painter, "
        f"{edit['painter']}, in {edit['load_s']:.1f} s); OWL-ViT B/32 (int8 linears) and EdgeTAM at real size, random "
        "weights, served as bench/lite.py serves them (the photo's box, EdgeTAM's mask kept inside it).",
        "",
        "| edit | wall (s) | min wall (s) | CPU (s) | target (s) | met | mask | steps (s) |",
        "|---|---|---|---|---|---|---|---|",
        f"| remove | {edit['wall']:.2f} | {edit['wall_min']:.2f} | {edit['cpu']:.2f} | 4 | "
        f"{'yes' if edit['wall'] <= 4 else 'no'} | {edit['mask']:.1%} | "
        + ", ".join(f"{k} {v:.2f}" for k, v in edit["timings"].items() if k != "total") + " |",
        "",
        f"Peak memory of this process (max RSS; two LaMa copies, torch's and ONNX Runtime's, and the models of the "
        f"edit): {r['peak_gb']:.2f} GB.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="a tiny LaMa, tiny detector and segmenter, a small photo")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--graph", type=Path, help="the folder to export lama_fp32.onnx to (default: a temporary one)")
    args = p.parse_args()
    import onnxruntime
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    folder = args.graph or Path(tempfile.mkdtemp(prefix="bench-lama-"))
    loads = [os.getloadavg()[0]]
    r: dict[str, Any] = {"when": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC", "runs": args.runs,
                         "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                         "params": lama_arch.n_params(lama_arch.big_lama("torch", args.smoke))}
    r["export"] = export(args.smoke, folder)
    loads.append(os.getloadavg()[0])
    arms, r["check"] = network_arms(args.smoke, folder)
    r["network"] = lite.measure(arms, args.runs)
    del arms
    loads.append(os.getloadavg()[0])
    r["remove_edit"] = remove_edits(remove_editor(args.smoke, folder), lite.photo(args.smoke), args.runs)
    loads.append(os.getloadavg()[0])
    r["loads"], r["peak_gb"] = loads, lite._maxrss_gb()
    text = report(r, args.smoke)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "lama.md").write_text(text)
    (args.out / "lama.json").write_text(json.dumps(r, indent=2))
    print(text)


if __name__ == "__main__":
    main()
