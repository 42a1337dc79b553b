"""CPU benchmark: a warm tiny-preset edit of a 24 MP photo plus its save, against Pillow opening
and saving the same photo as PNG at its defaults, measured in the same run, as a ratio.

    python bench/cpu.py                          # 6000x4000, writes bench/results/cpu.{json,md}
    python bench/cpu.py --size 800x600 --runs 1 --out /tmp/c    # the CI smoke run

The tiny preset's models are random and small, so the time is what Lasso spends outside the
models on a big photo: decoding, hashing, shrinking for the processors, refining, compositing,
restoring and encoding. The rules parser needs no VLM. No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A photo-like RGB image: smooth colour fields, a few hard edges and sensor-like grain."""
    import cv2

    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    cv2.rectangle(img, (w // 3, h // 2), (w // 2, int(h * 0.8)), (30, 40, 200), -1)  # a "car"
    noise = rng.normal(0, 3, (h, w, 3))
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="6000x4000", help="WIDTHxHEIGHT of the test photo")
    ap.add_argument("--runs", type=int, default=3, help="measured runs of each, alternating, after one warm-up")
    ap.add_argument("--instruction", default="remove the car")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from PIL import Image

    from lasso_edit import Editor
    from lasso_edit.imaging import save_image

    w, h = (int(v) for v in args.size.lower().split("x"))
    work = Path(tempfile.mkdtemp(prefix="lasso-cpu-"))
    src = work / "photo.jpg"
    Image.fromarray(photo(w, h)).save(src, quality=92)  # photos arrive as JPEG
    editor = Editor.from_preset("tiny", device="cpu", parser="rules")

    def pillow(i: int) -> float:
        t = time.perf_counter()
        Image.open(src).save(work / f"pillow{i}.png")  # Pillow's defaults: compress_level 6
        return time.perf_counter() - t

    stages: dict[str, list[float]] = {}

    def lasso(i: int) -> float:
        t = time.perf_counter()
        res = editor(str(src), args.instruction, seed=1)
        t_save = time.perf_counter()
        save_image(res.image, work / f"lasso{i}.png", like=None)
        done = time.perf_counter()
        for k, v in res.timings.items():
            stages.setdefault(k, []).append(v)
        stages.setdefault("save", []).append(done - t_save)
        stages.setdefault("changed_fraction", []).append(float(res.mask.mean()))
        return done - t

    lasso(-1)  # warm-up: builds the tiny models, first calls
    pillow(-1)
    times = {"lasso": [], "pillow": []}
    for i in range(args.runs):
        for name, fn in ((("lasso", lasso), ("pillow", pillow)) if i % 2 == 0 else (("pillow", pillow), ("lasso", lasso))):
            times[name].append(fn(i))
    med = {k: float(np.median(v)) for k, v in times.items()}
    sizes = {"lasso_png_mb": (work / "lasso0.png").stat().st_size / 1e6,
             "pillow_png_mb": (work / "pillow0.png").stat().st_size / 1e6}
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
        "photo": f"{w}x{h} JPEG", "instruction": args.instruction, "preset": "tiny", "parser": "rules",
        "runs": args.runs, "lasso_edit_plus_save_s": med["lasso"], "pillow_open_save_png_s": med["pillow"],
        "ratio_lasso_over_pillow": med["lasso"] / med["pillow"], "target_ratio": 1.5,
        "target": "met" if med["lasso"] / med["pillow"] <= 1.5 else "missed",
        "lasso_stages_median_s": {k: float(np.median(v)) for k, v in stages.items()},
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **sizes,
        "all_runs": times,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu.json").write_text(json.dumps(result, indent=2))
    st = result["lasso_stages_median_s"]
    md = [f"# CPU: warm tiny-preset edit + save of a {w}x{h} photo vs Pillow open + save PNG", "",
          f"{result['date']}; {result['machine']}; Python {result['python']}; median of {args.runs} alternating runs.",
          "", "| | seconds |", "|---|---|",
          f"| Lasso: edit (`{args.instruction}`, tiny preset, rules parser) + save PNG | {med['lasso']:.2f} |",
          f"| Pillow: open + save PNG at its defaults | {med['pillow']:.2f} |",
          f"| ratio (target <= 1.5) | {result['ratio_lasso_over_pillow']:.2f} ({result['target']}) |", "",
          "Lasso's stages (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in st.items()), "",
          f"Max RSS {result['max_rss_mb']:.0f} MB. PNG sizes: Lasso (level 1) {sizes['lasso_png_mb']:.1f} MB, "
          f"Pillow (level 6) {sizes['pillow_png_mb']:.1f} MB.", ""]
    (out / "cpu.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
