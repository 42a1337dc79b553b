"""Benchmark of `lasso contain` on a 12 MP pair: the whole command's work (decode both, align,
find the region, composite through the Editor, encode the output, read it back and prove it)
against decoding both images and encoding the output alone (Lasso's own load_image and
save_image: what any tool that reads two pictures and writes one pays), both arms alternating in
one process, as a ratio. Target: within 3x.

    python bench/contain.py                               # 4240x2827; bench/results/contain.md
    python bench/contain.py --size 1200x800 --runs 1 --out /tmp/c   # a smoke run

The pair is synthetic from examples/coffee.png (a CC0 photo) upscaled with sensor-like grain: an
ellipse and a block painted on it, then drifted as a hosted editor drifts its answer (zoom 1.03,
shift (2.4, -1.7) px, rotation 0.5 degrees, a colour gain and offset per channel, JPEG quality 92
noise), both written as PNG. Wall seconds, CPU seconds (user + system, this process) and the load
average are reported: on a shared machine the load says how far the seconds can be trusted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def pair(w: int, h: int, work: Path) -> tuple[Path, Path, np.ndarray]:
    """ORIGINAL and EDITED (PNG files) and the painted truth, `w` x `h`."""
    import cv2
    from PIL import Image

    rng = np.random.default_rng(0)
    small = np.asarray(Image.open(ROOT / "examples" / "coffee.png").convert("RGB"))
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    for y in range(0, h, 512):  # grain in strips
        rows = big[y : y + 512].astype(np.int16) + rng.normal(0, 3, big[y : y + 512].shape).astype(np.int16)
        big[y : y + 512] = np.clip(rows, 0, 255).astype(np.uint8)
    truth = big.copy()
    cv2.ellipse(truth, (int(w * 0.62), int(h * 0.45)), (int(w * 0.12), int(h * 0.16)), 20, 0, 360, (40, 170, 90), -1)
    cv2.rectangle(truth, (int(w * 0.15), int(h * 0.6)), (int(w * 0.3), int(h * 0.85)), (220, 60, 200), -1)
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.5, 1.03)
    m[:, 2] += (2.4, -1.7)
    drifted = cv2.warpAffine(truth, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    gain, offset = np.float32([1.04, 0.97, 1.02]), np.float32([6, -5, 3])
    drifted = np.clip(drifted * gain + offset, 0, 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(drifted).save(buf, "JPEG", quality=92)
    drifted = np.asarray(Image.open(buf).convert("RGB"))
    a, b = work / "original.png", work / "edited.png"
    Image.fromarray(big).save(a, compress_level=1)
    Image.fromarray(drifted).save(b, compress_level=1)
    return a, b, truth


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run(size: tuple[int, int], runs: int, out: Path | None) -> str:
    from lasso_edit.imaging import load_image, save_image
    from lasso_edit.pipeline.contain import contain
    from lasso_edit.pipeline.outputs import write_and_prove

    work = Path(tempfile.mkdtemp(prefix="bench-contain-"))
    a, b, truth = pair(*size, work)
    report: dict = {}
    errors: list[float] = []

    def lasso(i: int) -> None:
        result, rep = contain(load_image(a), load_image(b))
        write_and_prove(result, work / f"out{i}.png")
        report.update(rep, **(result.preservation or {}))
        report["timings"] = result.timings
        inner = np.asarray(result.image)[result.mask].astype(int) - truth[result.mask]
        errors.append(float(np.median(np.abs(inner))))

    def plain(i: int) -> None:
        first, _second = load_image(a), load_image(b)
        save_image(first.original, work / f"plain{i}.png", like=first)

    arms = {"contain": lasso, "decode both + encode": plain}
    lasso(-1)  # warm-up: imports, first calls
    times: dict[str, list[float]] = {k: [] for k in arms}
    cpus: dict[str, list[float]] = {k: [] for k in arms}
    loads = [os.getloadavg()[0]]
    for i in range(runs):
        for name in list(arms) if i % 2 == 0 else list(arms)[::-1]:
            t, c = time.perf_counter(), _cpu()
            arms[name](i)
            times[name].append(time.perf_counter() - t)
            cpus[name].append(_cpu() - c)
        loads.append(os.getloadavg()[0])
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu = {k: statistics.median(v) for k, v in cpus.items()}
    ratio = med["contain"] / med["decode both + encode"]
    al = report["alignment"]
    lines = [
        f"# contain: a {size[0]}x{size[1]} pair, `lasso contain`'s work vs decoding both and encoding the output",
        "",
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; median of {runs} alternating runs per arm after a warm-up; "
        f"load average (1 min) {min(loads):.1f} to {max(loads):.1f} during the runs.",
        "",
        "| arm | wall (s) | CPU (s, user + system) |",
        "|---|---|---|",
        *(f"| {k} | {med[k]:.2f} | {cpu[k]:.2f} |" for k in arms),
        "",
        f"Ratio (wall): {ratio:.2f}x ({'met' if ratio <= 3 else 'missed'}; target <= 3). "
        f"CPU ratio: {cpu['contain'] / cpu['decode both + encode']:.2f}x.",
        "",
        f"Found: scale {al['scale']:.4f}, shift {al['shift']}, rotation {al['rotation']:.3f} deg "
        f"(truth 1.03, [2.4, -1.7], 0.5); residual {al['residual']:.1f} levels; colour {report['colour']}; "
        f"region {report['region_px']:,} px; restored inside: median |error| {statistics.median(errors):.1f} levels; "
        f"changed outside: {report.get('changed_outside')} of {report.get('outside_pixels', 0):,} pixels.",
        "",
        "Editor steps of the last run (s): "
        + ", ".join(f"{k} {v:.3f}" for k, v in report["timings"].items() if v >= 0.0005),
        "",
    ]
    text = "\n".join(lines)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "contain.md").write_text(text)
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="4240x2827", help="WxH of the pair (default: 12 MP, 3:2)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    print(run((w, h), args.runs, args.out))


if __name__ == "__main__":
    main()
