"""CPU benchmark: every action's warm tiny-preset edit of a 24 MP photo plus its save, each against
Pillow opening and saving the same photo as PNG at the same zlib level (Lasso's default,
`--png-compress 1`), and a JPEG -> JPEG edit's lossless save against `jpegtran -copy all`; both
arms measured side by side in one process, as ratios.

    python bench/cpu.py                                   # 6000x4000, every action; bench/results/cpu.{json,md}
    python bench/cpu.py --size 12000x8334 --runs 1 --actions recolor,blur --out /tmp/c   # 100 MP memory
    python bench/cpu.py --size 640x480 --runs 1 --out /tmp/c     # the smoke run (tests/test_bench.py)

Each action runs in its own process (`--child`), so its peak memory (max RSS) is its own: the
models and libraries ("baseline", measured after a small warm-up edit) plus what the 24 MP edit
adds; both are reported, per pixel of the photo. The photo is photo-like: smooth colour fields,
hard edges and sensor grain (about 7 M distinct colours at 24 MP, a high-ISO photo's count).

The tiny preset's models are random and small, so the time is what Lasso spends outside the
models: decoding, hashing, shrinking for the processors, refining, the deterministic actions,
compositing, restoring and encoding (Lasso's own PNG writer, lasso_edit/png.py: the Up filter and
a parallel deflate, against Pillow's adaptive filters on one core). The rules parser needs no VLM. The random tiny SAM masks most
of the photo: the heavy case. What a ratio does not show: the models' own time (bench/compare.py
on a GPU), other machines' ratio of decode to encode speed, and photos with fewer colours (a
recolour's cost grows with the count). No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
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
    out = np.empty_like(img)
    for y in range(0, h, 512):  # grain in strips: a float copy of a 100 MP photo would not fit
        noise = rng.normal(0, 3, (min(512, h - y), w, 3)).astype(np.float32)
        out[y:y + 512] = np.clip(img[y:y + 512] + noise, 0, 255).astype(np.uint8)
    return out


INSTRUCTIONS = {"remove": "remove the car", "recolor": "make the car red", "blur": "blur the background",
                "pixelate": "pixelate the car", "brightness": "make the car brighter",
                "black_and_white": "make the background black and white"}
JPEG_ACTION = "recolor"  # the edit whose JPEG -> JPEG save is timed against jpegtran


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def child(action: str, src: Path, runs: int, level: int, work: Path) -> dict:
    """One action in this process: a warm-up, then `runs` alternating measured runs of both arms."""
    from PIL import Image

    from lasso_edit import Editor
    from lasso_edit.imaging import save_image
    from lasso_edit.pipeline.outputs import write_and_prove

    editor = Editor.from_preset("tiny", device="cpu", parser="rules")
    small = work / f"small-{action}.png"
    Image.fromarray(photo(64, 48)).save(small)
    editor(str(small), INSTRUCTIONS[action], seed=1)  # builds the models: the baseline memory
    baseline_mb = _rss_mb()
    stages: dict[str, list[float]] = {}
    jpeg = action == JPEG_ACTION and shutil.which("jpegtran") is not None

    def lasso(i: int) -> float:
        t = time.perf_counter()
        res = editor(str(src), INSTRUCTIONS[action], seed=1)
        t_save = time.perf_counter()
        save_image(res.image, work / f"{action}{i}.png", like=None, png_compress=level)
        done = time.perf_counter()
        if i >= 0:  # measured runs only
            for k, v in res.timings.items():
                stages.setdefault(k, []).append(v)
            stages.setdefault("save", []).append(done - t_save)
            stages.setdefault("changed_fraction", []).append(float(res.mask.mean()))
        if jpeg:  # the same edit written JPEG -> JPEG (only the touched MCUs re-encoded)
            t_jpeg = time.perf_counter()
            write_and_prove(res, work / f"{action}{i}.jpg")
            stages.setdefault("jpeg_save", []).append(time.perf_counter() - t_jpeg)
        return done - t

    def pillow(i: int) -> float:
        t = time.perf_counter()
        Image.open(src).save(work / f"pillow{i}.png", compress_level=level)  # the same level as Lasso's
        return time.perf_counter() - t

    def jpegtran(i: int) -> float:
        t = time.perf_counter()
        subprocess.run(["jpegtran", "-copy", "all", "-outfile", str(work / f"jpegtran{i}.jpg"), str(src)], check=True)
        return time.perf_counter() - t

    lasso(-1)
    pillow(-1)
    times: dict[str, list[float]] = {"pillow": [], "lasso": [], **({"jpegtran": []} if jpeg else {})}
    for i in range(runs):
        order = ["pillow", "lasso", "jpegtran"] if i % 2 == 0 else ["jpegtran", "lasso", "pillow"]
        for name in order:
            if name in times:
                times[name].append({"pillow": pillow, "lasso": lasso, "jpegtran": jpegtran}[name](i))
    sizes = {"lasso_png_bytes": (work / f"{action}0.png").stat().st_size,
             "pillow_png_bytes": (work / "pillow0.png").stat().st_size}
    return {"times": times, "stages": stages, "max_rss_mb": _rss_mb(), "baseline_rss_mb": baseline_mb, **sizes}


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="6000x4000", help="WIDTHxHEIGHT of the test photo")
    ap.add_argument("--runs", type=int, default=3, help="measured runs of each arm, alternating, after one warm-up")
    ap.add_argument("--actions", default=",".join(INSTRUCTIONS), help=f"comma-separated, of: {', '.join(INSTRUCTIONS)}")
    ap.add_argument("--png-level", type=int, default=1, help="zlib level of both arms' PNG (Lasso's default: 1)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--child", help=argparse.SUPPRESS)  # ACTION: run one action here, print JSON
    ap.add_argument("--photo", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.child:
        src = Path(args.photo)
        print(json.dumps(child(args.child, src, args.runs, args.png_level, src.parent)))
        return 0
    from PIL import Image

    w, h = (int(v) for v in args.size.lower().split("x"))
    actions = [a.strip() for a in args.actions.split(",") if a.strip()]
    unknown = set(actions) - set(INSTRUCTIONS)
    if unknown:
        ap.error(f"unknown actions {sorted(unknown)}; choose from {', '.join(INSTRUCTIONS)}")
    level = args.png_level
    with tempfile.TemporaryDirectory(prefix="lasso-cpu-") as tmp:
        src = Path(tmp) / "photo.jpg"
        Image.fromarray(photo(w, h)).save(src, quality=92)  # photos arrive as JPEG
        raw = {}
        for a in actions:
            p = subprocess.run([sys.executable, __file__, "--child", a, "--photo", str(src), "--runs", str(args.runs),
                                "--png-level", str(level)], capture_output=True, text=True)
            if p.returncode != 0:
                sys.stderr.write(p.stderr)
                return p.returncode
            raw[a] = json.loads(p.stdout.strip().splitlines()[-1])
            for f in Path(tmp).glob(f"{a}*"):  # keep the disk small between actions
                f.unlink()
    pixels = w * h
    per_action = {}
    for a, r in raw.items():
        t = r["times"]
        med = {k: float(np.median(v)) for k, v in t.items()}
        row = {"instruction": INSTRUCTIONS[a], "edit_plus_save_s": med["lasso"], "pillow_open_save_png_s": med["pillow"],
               "ratio_over_pillow": med["lasso"] / med["pillow"],
               "lasso_p10_p90_s": [_pct(t["lasso"], 10), _pct(t["lasso"], 90)],
               "target": "met" if med["lasso"] / med["pillow"] <= 1.5 else "missed",
               "stages_median_s": {k: float(np.median(v)) for k, v in r["stages"].items()},
               "max_rss_mb": r["max_rss_mb"], "baseline_rss_mb": r["baseline_rss_mb"],
               "lasso_png_bytes": r["lasso_png_bytes"], "pillow_png_bytes": r["pillow_png_bytes"],
               "max_rss_bytes_per_pixel": r["max_rss_mb"] * 2**20 / pixels,
               "edit_rss_bytes_per_pixel": (r["max_rss_mb"] - r["baseline_rss_mb"]) * 2**20 / pixels,
               "all_runs": t}
        if "jpegtran" in t:
            save = float(np.median(r["stages"]["jpeg_save"]))
            row["jpeg"] = {"lasso_jpeg_save_s": save, "jpegtran_copy_all_s": med["jpegtran"],
                           "ratio_over_jpegtran": save / med["jpegtran"],
                           "target": "met" if save / med["jpegtran"] <= 3 else "missed"}
        per_action[a] = row
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
        "photo": f"{w}x{h} JPEG", "preset": "tiny", "parser": "rules", "png_level": level, "runs": args.runs,
        "target_ratio": 1.5, "target_jpeg_ratio": 3, "target_bytes_per_pixel": 60, "actions": per_action,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu.json").write_text(json.dumps(result, indent=2))
    md = [f"# CPU: warm tiny-preset edits + save of a {w}x{h} photo vs Pillow open + save PNG, both at level {level}",
          "", f"{result['date']}; {result['machine']}; Python {result['python']}; median of {args.runs} "
          "alternating runs per arm, each action in its own process.", "",
          "| action | Lasso edit + save (s) | Pillow open + save (s) | ratio (target <= 1.5) | peak RSS (MB) "
          "| bytes/px: whole process / the edit (target <= 60) |", "|---|---|---|---|---|---|"]
    for r in per_action.values():
        md.append(f"| `{r['instruction']}` | {r['edit_plus_save_s']:.2f} | {r['pillow_open_save_png_s']:.2f} | "
                  f"{r['ratio_over_pillow']:.2f} ({r['target']}) | {r['max_rss_mb']:.0f} | "
                  f"{r['max_rss_bytes_per_pixel']:.0f} / {r['edit_rss_bytes_per_pixel']:.0f} |")
    jp = [r for r in per_action.values() if "jpeg" in r]
    if jp:
        j = jp[0]["jpeg"]
        md += ["", f"JPEG -> JPEG (`{jp[0]['instruction']}`, only the touched MCUs re-encoded): Lasso's save "
               f"{j['lasso_jpeg_save_s']:.2f} s, `jpegtran -copy all` {j['jpegtran_copy_all_s']:.2f} s: "
               f"{j['ratio_over_jpegtran']:.2f}x ({j['target']}; target <= 3)."]
    md += ["", "Stages (median s):", ""]
    md += [f"- `{r['instruction']}`: " + ", ".join(f"{k} {v:.3f}" for k, v in r["stages_median_s"].items())
           for r in per_action.values()]
    md += ["", "Peak RSS counts the models and libraries (the baseline, after a small warm-up edit); "
           "'the edit' is the peak less that baseline. PNG sizes (Lasso's writer, lasso_edit/png.py, against "
           "Pillow's at the same level; the edited picture is not the original, so sizes differ by content "
           "too): " + ", ".join(f"{r['instruction']} {r['lasso_png_bytes'] / 1e6:.1f} MB vs "
                                f"{r['pillow_png_bytes'] / 1e6:.1f} MB" for r in per_action.values()) + ".", ""]
    (out / "cpu.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
