"""Benchmark of the `remote` preset's local part on this CPU: which segmenter it masks with, and
what one edit costs here while the hosted models do the rest.

    python bench/remote.py                          # bench/results/remote.md (a few minutes)
    python bench/remote.py --smoke --out /tmp/r     # tiny models, a small photo: every line, no claim

1. **Segmenters**, the real architectures with random weights (compute does not depend on weight
   values): EdgeTAM (`EdgeTamModel`, RepViT-M1 through timm), SAM 2.1 hiera-tiny (`Sam2Model`'s
   default config) and SlimSAM-77 (`SamModel` at its pruned widths). Each encodes a 1024x1024 frame
   and decodes one box; arms alternate, median of `--runs`.
2. **One remote edit of a 12 MP photo** (4240x2827 PNG with sensor-like grain), through the
   preset as a user runs it: the planner and the painter are OpenAI-shaped fakes on loopback, in a
   child process, so this process's CPU-seconds are the local part alone (decode, EdgeTAM from the
   planner's box, the mask at full size, the crop sent and the answer aligned, the composite, the
   PNG written and proved); its wall time includes the fakes' few milliseconds and no network.
   A random EdgeTAM masks the whole frame; its mask is kept inside the planner's box, where a
   trained one's lies, since the local cost follows the mask's size.
   Target: under 3 s.

Wall seconds, CPU seconds (user + system, this process, all threads) and the load average are
reported: on a shared machine the load says how far the wall seconds can be trusted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BOX = [55, 25, 80, 70]  # the fake planner's box (percent of the photo), around the cup of coffee.png
PLAN = json.dumps([["replace", "cup", "a green bowl", BOX]])


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --------------------------------------------------------------------------- 1. segmenters
def edgetam(smoke: bool):
    """EdgeTAM at its real size (the checkpoint's config: RepViT-M1, 1024-px frame); smoke: the tests' tiny one."""
    from transformers import EdgeTamConfig, EdgeTamModel, TimmWrapperConfig

    if smoke:
        from lasso_edit.testing.tiny import build_tiny_edgetam

        folder = build_tiny_edgetam(Path(tempfile.mkdtemp(prefix="bench-edgetam-")))
        return EdgeTamModel.from_pretrained(folder).eval(), 256
    cfg = EdgeTamConfig()
    assert isinstance(cfg.vision_config.backbone_config, TimmWrapperConfig)
    cfg.vision_config.backbone_config.architecture = "repvit_m1.dist_in1k"  # the default names resnet50
    return EdgeTamModel(cfg).eval(), 1024


def sam2_tiny(smoke: bool):
    """SAM 2.1 hiera-tiny: Sam2Config's defaults are its shapes (a 1024-px frame)."""
    from transformers import Sam2Config, Sam2Model

    return Sam2Model(Sam2Config()).eval(), 1024


def slimsam(smoke: bool):
    """SlimSAM-77 (bench/build.py's shapes); smoke: the test SAM."""
    import build  # bench/build.py

    model, _ = build.sam("cpu", None, "slimsam-77", scale=build.TINY if smoke else build.FULL)
    return model, 64 if smoke else 1024


SEGMENTERS: dict[str, Callable] = {"EdgeTAM": edgetam, "SAM 2.1 hiera-tiny": sam2_tiny, "SlimSAM-77": slimsam}


def segmenters(runs: int, smoke: bool) -> dict:
    """Encoder and one-box decode seconds per segmenter: wall and CPU medians, interleaved."""
    import torch

    built = {name: make(smoke) for name, make in SEGMENTERS.items()}
    box = torch.tensor([[[200.0, 150.0, 700.0, 800.0]]])
    rows: dict[str, dict[str, list[float]]] = {n: {"enc": [], "enc_cpu": [], "dec": [], "dec_cpu": []} for n in built}

    def once(name: str, record: bool) -> None:
        model, side = built[name]
        x = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
        with torch.inference_mode():
            t, c = time.perf_counter(), _cpu()
            emb = model.get_image_embeddings(x)
            enc, enc_cpu = time.perf_counter() - t, _cpu() - c
            t, c = time.perf_counter(), _cpu()
            model(image_embeddings=emb, input_boxes=box * side / 1024, multimask_output=True)
            dec, dec_cpu = time.perf_counter() - t, _cpu() - c
        if record:
            for k, v in (("enc", enc), ("enc_cpu", enc_cpu), ("dec", dec), ("dec_cpu", dec_cpu)):
                rows[name][k].append(v)

    for name in built:  # warm-up
        once(name, record=False)
    for i in range(runs):
        for name in list(built) if i % 2 == 0 else list(built)[::-1]:
            once(name, record=True)
    return {
        name: {
            "params_m": sum(p.numel() for p in built[name][0].parameters()) / 1e6,
            **{k: statistics.median(v) for k, v in r.items()},
        }
        for name, r in rows.items()
    }


# --------------------------------------------------------------------------- 2. one remote edit
def serve_fakes(port_file: Path) -> None:
    """The child process: the planner's /v1/models and /v1/chat/completions (a fixed plan with its
    box) and the painter's /v1/images/edits (tests/fake_openai_images.py: it answers at its own size,
    drifted), on one loopback port written to `port_file`."""
    import socket

    import uvicorn

    from tests.fake_openai_images import Fake, images_server

    app = images_server(Fake())

    @app.get("/v1/models")
    def models() -> dict:
        return {"object": "list", "data": [{"id": "planner", "object": "model", "created": 0, "owned_by": "bench"}]}

    @app.post("/v1/chat/completions")
    def chat() -> dict:
        message = {"role": "assistant", "content": PLAN}
        return {"id": "c", "object": "chat.completion", "created": 0, "model": "planner",
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}]}

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    port_file.write_text(str(port))  # the parent waits until the port answers
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def photo(w: int, h: int, work: Path) -> Path:
    """coffee.png (CC0) upscaled to `w` x `h` with sensor-like grain, as PNG."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(0)
    small = np.asarray(Image.open(ROOT / "examples" / "coffee.png").convert("RGB"))
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for y in range(0, h, 512):
        rows = big[y : y + 512].astype(np.int16) + rng.normal(0, 3, big[y : y + 512].shape).astype(np.int16)
        big[y : y + 512] = np.clip(rows, 0, 255).astype(np.uint8)
    path = work / "photo.png"
    Image.fromarray(big).save(path, compress_level=1)
    return path


def one_edit(size: tuple[int, int], runs: int, smoke: bool) -> dict:
    """The local part of a remote edit: wall and CPU medians of `runs` edits after a first one."""
    from lasso_edit.core.config import EditorConfig
    from lasso_edit.imaging import load_image
    from lasso_edit.pipeline.editor import Editor
    from lasso_edit.pipeline.outputs import write_and_prove

    work = Path(tempfile.mkdtemp(prefix="bench-remote-"))
    model, _ = edgetam(smoke)
    model.save_pretrained(work / "edgetam")  # loaded back through the preset's own loading path
    _processor(smoke).save_pretrained(work / "edgetam")
    path = photo(*size, work)
    port_file = work / "port"
    child = subprocess.Popen([sys.executable, __file__, "--serve-fakes", str(port_file)], cwd=ROOT)
    try:
        base = f"http://127.0.0.1:{_listening(child, port_file)}/v1"
        os.environ.setdefault("OPENAI_API_KEY", "bench")
        editor = Editor.from_config(EditorConfig.of(
            preset="remote", vlm=f"openai:planner@{base}", inpainter=f"openai:gpt-image-2@{base}",
            segmenter=str(work / "edgetam"), device="cpu"))
        t, c = time.perf_counter(), _cpu()
        editor.use("segmenter", _WithinBox(editor.stage("segmenter")))  # loads EdgeTAM
        load = (time.perf_counter() - t, _cpu() - c)
        walls, cpus, last = [], [], None
        for i in range(runs + 1):  # the first edit is reported apart
            t, c = time.perf_counter(), _cpu()
            result = editor(load_image(path), "replace the cup with a green bowl", seed=0)
            write_and_prove(result, work / f"out{i}.png")
            wall, cpu = time.perf_counter() - t, _cpu() - c
            if i == 0:
                first = (wall, cpu)
            else:
                walls.append(wall)
                cpus.append(cpu)
            last = result
    finally:
        child.terminate()
        child.wait()
    assert last is not None
    return {
        "size": list(size), "load_wall": load[0], "load_cpu": load[1], "first_wall": first[0], "first_cpu": first[1],
        "wall": statistics.median(walls), "cpu": statistics.median(cpus),
        "mask_share": float(last.mask.mean()), "identical_outside": (last.preservation or {}).get("identical_outside"),
        "timings": {k: v for k, v in last.timings.items() if v >= 0.0005}, "warnings": list(last.warnings),
    }


class _WithinBox:
    """The real EdgeTAM (all its compute), its mask kept inside the box it was prompted with: a
    random EdgeTAM masks the whole frame, a trained one the object in its box, and the local part's
    cost follows the mask's size (the crop sent, the composite)."""

    def __init__(self, segmenter) -> None:
        self.segmenter = segmenter

    def __getattr__(self, name: str):
        return getattr(self.segmenter, name)

    def segment(self, image, grounding, correction=None):
        import dataclasses

        from lasso_edit.imaging.arrays import box_to_mask

        s = self.segmenter.segment(image, grounding, correction)
        inside = np.zeros_like(s.mask)
        for b in grounding.boxes:
            inside |= box_to_mask(b, s.mask.shape)
        return dataclasses.replace(s, mask=s.mask & inside)


def _listening(child: subprocess.Popen, port_file: Path) -> int:
    """The fakes' port, once they accept connections (an event: the child's answer, not a deadline)."""
    import socket

    while True:
        if child.poll() is not None:
            raise RuntimeError("the fake servers did not start")
        text = port_file.read_text() if port_file.exists() else ""
        if text:
            try:
                socket.create_connection(("127.0.0.1", int(text)), timeout=1).close()
                return int(text)
            except OSError:
                pass
        time.sleep(0.05)


def _processor(smoke: bool):
    from transformers import Sam2ImageProcessor, Sam2Processor

    if smoke:
        return Sam2Processor(Sam2ImageProcessor(size={"height": 256, "width": 256}, mask_size={"height": 64, "width": 64}))
    return Sam2Processor(Sam2ImageProcessor())


# --------------------------------------------------------------------------- report
def report(seg: dict, edit: dict, loads: list[float], runs: int, smoke: bool) -> str:
    fastest = min(seg, key=lambda n: seg[n]["enc_cpu"] + seg[n]["dec_cpu"])
    lines = [
        "# remote: the `remote` preset's local part on this CPU" + (" (smoke run: tiny models, no claim)" if smoke else ""),
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {__import__('torch').get_num_threads()}; Python {platform.python_version()}; fp32, random weights "
        f"at real size; median of {runs} runs after a warm-up; load average (1 min) {min(loads):.1f} to "
        f"{max(loads):.1f} during the runs.",
        "",
        "## Segmenters: encode a 1024x1024 frame, decode one box",
        "",
        "| segmenter | params (M) | encode wall (s) | encode CPU (s) | decode wall (s) | decode CPU (s) |",
        "|---|---|---|---|---|---|",
        *(f"| {n} | {r['params_m']:.1f} | {r['enc']:.2f} | {r['enc_cpu']:.2f} | {r['dec']:.3f} | {r['dec_cpu']:.3f} |"
          for n, r in seg.items()),
        "",
        f"Fastest in CPU-seconds: {fastest}.",
        "",
        f"## One remote edit of a {edit['size'][0]}x{edit['size'][1]} photo, the local part",
        "",
        "| | wall (s) | CPU (s) |",
        "|---|---|---|",
        f"| load EdgeTAM | {edit['load_wall']:.2f} | {edit['load_cpu']:.2f} |",
        f"| first edit | {edit['first_wall']:.2f} | {edit['first_cpu']:.2f} |",
        f"| warm edit | {edit['wall']:.2f} | {edit['cpu']:.2f} |",
        "",
        f"Target: a warm edit under 3 s: {'met' if edit['wall'] < 3 else 'missed'} (wall), "
        f"{'met' if edit['cpu'] < 3 else 'missed'} (CPU). Mask {edit['mask_share']:.1%} of the frame (the "
        f"random EdgeTAM's mask kept inside the planner's box, as a trained one's would be); identical outside the "
        f"mask: {edit['identical_outside']}.",
        "",
        "Editor steps of the last edit (s; `parse` and `edit` include the fakes' answers): "
        + ", ".join(f"{k} {v:.3f}" for k, v in edit["timings"].items()),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="4240x2827", help="WxH of the edited photo (default: 12 MP, 3:2)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--smoke", action="store_true", help="tiny models and a 640x480 photo")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--serve-fakes", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_fakes is not None:
        serve_fakes(args.serve_fakes)
        return
    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    size = (640, 480) if args.smoke else tuple(int(v) for v in args.size.lower().split("x"))
    loads = [os.getloadavg()[0]]
    seg = segmenters(args.runs, args.smoke)
    loads.append(os.getloadavg()[0])
    edit = one_edit(size, args.runs, args.smoke)  # type: ignore[arg-type]
    loads.append(os.getloadavg()[0])
    text = report(seg, edit, loads, args.runs, args.smoke)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "remote.md").write_text(text)
    (args.out / "remote.json").write_text(json.dumps({"segmenters": seg, "edit": edit, "loads": loads}, indent=2))
    print(text)


if __name__ == "__main__":
    main()
