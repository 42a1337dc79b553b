"""CPU benchmark: warm tiny-preset edits of a 24 MP photo plus their save, one per action, each
against Pillow opening and saving the same photo as PNG at the same zlib level (Lasso's default,
`--png-compress 1`), measured in the same run, as ratios.

    python bench/cpu.py                          # 6000x4000: remove and recolour; bench/results/cpu.{json,md}
    python bench/cpu.py --actions remove,recolor,blur --size 2000x1500   # blur too, on a smaller photo
    python bench/cpu.py --size 800x600 --runs 1 --out /tmp/c    # the CI smoke run

The tiny preset's models are random and small, so the time is what Lasso spends outside the
models on a big photo: decoding, hashing, shrinking for the processors, refining, the
deterministic actions, compositing, restoring and encoding. The rules parser needs no VLM. The
random tiny SAM masks most of the photo: the heavy case. The blur is left out of the 24 MP default:
its cost still grows with the blur's sigma (8% of the region's short side; issue 17). What a ratio
does not show: the models' own time (see bench/compare.py on a GPU), and other machines' ratio of
decode to encode speed. No timing is asserted anywhere.
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


INSTRUCTIONS = {"remove": "remove the car", "recolor": "make the car red", "blur": "blur the background"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="6000x4000", help="WIDTHxHEIGHT of the test photo")
    ap.add_argument("--runs", type=int, default=3, help="measured runs of each, alternating, after one warm-up")
    ap.add_argument("--actions", default="remove,recolor", help="comma-separated: remove, recolor, blur")
    ap.add_argument("--png-level", type=int, default=1, help="zlib level of both arms' PNG (Lasso's default: 1)")
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
    level = args.png_level

    def pillow(i: int) -> float:
        t = time.perf_counter()
        Image.open(src).save(work / f"pillow{i}.png", compress_level=level)  # the same level as Lasso's
        return time.perf_counter() - t

    actions = [a.strip() for a in args.actions.split(",") if a.strip()]
    unknown = set(actions) - set(INSTRUCTIONS)
    if unknown:
        ap.error(f"unknown actions {sorted(unknown)}; choose from {', '.join(INSTRUCTIONS)}")
    stages = {a: {} for a in actions}

    def lasso(action: str, i: int) -> float:
        t = time.perf_counter()
        res = editor(str(src), INSTRUCTIONS[action], seed=1)
        t_save = time.perf_counter()
        save_image(res.image, work / f"{action}{i}.png", like=None, png_compress=level)
        done = time.perf_counter()
        if i >= 0:  # measured runs only, not the warm-up's model builds
            for k, v in res.timings.items():
                stages[action].setdefault(k, []).append(v)
            stages[action].setdefault("save", []).append(done - t_save)
            stages[action].setdefault("changed_fraction", []).append(float(res.mask.mean()))
        return done - t

    for a in actions:
        lasso(a, -1)  # warm-up: builds the tiny models, first calls
    pillow(-1)
    times: dict[str, list[float]] = {"pillow": [], **{a: [] for a in actions}}
    for i in range(args.runs):
        order = ["pillow", *actions] if i % 2 == 0 else [*actions, "pillow"]
        for name in order:
            times[name].append(pillow(i) if name == "pillow" else lasso(name, i))
    med = {k: float(np.median(v)) for k, v in times.items()}
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_action = {a: {"instruction": INSTRUCTIONS[a], "edit_plus_save_s": med[a],
                      "ratio_over_pillow": med[a] / med["pillow"],
                      "target": "met" if med[a] / med["pillow"] <= 1.5 else "missed",
                      "stages_median_s": {k: float(np.median(v)) for k, v in stages[a].items()}}
                  for a in actions}
    first = actions[0]
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
        "photo": f"{w}x{h} JPEG", "preset": "tiny", "parser": "rules", "png_level": level, "runs": args.runs,
        "pillow_open_save_png_s": med["pillow"], "actions": per_action, "target_ratio": 1.5,
        # the first action's figures under the names earlier runs used
        "lasso_edit_plus_save_s": med[first], "ratio_lasso_over_pillow": med[first] / med["pillow"],
        "lasso_stages_median_s": per_action[first]["stages_median_s"],
        "max_rss_mb": rss_mb, "max_rss_bytes_per_pixel": rss_mb * 2**20 / (w * h),
        "all_runs": times,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu.json").write_text(json.dumps(result, indent=2))
    md = [f"# CPU: warm tiny-preset edits + save of a {w}x{h} photo vs Pillow open + save PNG, both at level {level}",
          "", f"{result['date']}; {result['machine']}; Python {result['python']}; median of {args.runs} "
          "alternating runs.", "", "| | seconds | ratio to Pillow (target <= 1.5) |", "|---|---|---|",
          f"| Pillow: open + save PNG (level {level}) | {med['pillow']:.2f} | 1 |"]
    md += [f"| Lasso: `{r['instruction']}` + save PNG (level {level}) | {r['edit_plus_save_s']:.2f} | "
           f"{r['ratio_over_pillow']:.2f} ({r['target']}) |" for r in per_action.values()]
    md += [""] + [f"`{r['instruction']}` stages (median s): " + ", ".join(f"{k} {v:.3f}" for k, v in
                                                                         r["stages_median_s"].items())
                  for r in per_action.values()]
    md += ["", f"Max RSS of the whole run {rss_mb:.0f} MB ({result['max_rss_bytes_per_pixel']:.0f} bytes per pixel "
           "of the photo, the models and libraries included).", ""]
    (out / "cpu.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
