"""CPU benchmark: every deterministic action's warm tiny-preset edit of a 24 MP photo plus its save,
at three mask sizes given as masks (5%, 20%, 60% of the frame), against the floor: Lasso's own
decode of the same file plus Lasso's own PNG writer at the same zlib level (Lasso's default,
`--png-compress 1`). Pillow's open + save of the same photo is reported beside it as a reference
only. A JPEG -> JPEG edit's write (only the touched MCUs coded again, the rest as jpegtran codes
it: imaging/jpeg_blocks.py) is timed against `jpegtran -copy all` of the same file, at each mask
size, and so is the write as `lasso edit` does it: signed with Content Credentials and proved.

    python bench/cpu.py                                  # 6000x4000, every action; bench/results/cpu.{json,md}
    python bench/cpu.py --size 12000x8334 --runs 1 --actions recolor,blur --out /tmp/c   # 100 MP memory
    python bench/cpu.py --size 640x480 --runs 1 --out /tmp/c    # the smoke run (tests/test_bench.py)

What is measured, and how:
- CPU-seconds (`time.process_time`: the process, every thread) beside wall seconds, for every arm;
  jpegtran's from the kernel's account of the child (`RUSAGE_CHILDREN`). On a shared machine the
  wall time of multi-threaded stages (Lasso's parallel deflate, OpenCV, torch) depends on the
  cores other work leaves free, and threads that wait on busy cores may spin (OpenMP): CPU-seconds
  are the figure to compare, and the machine's load average is reported beside them.
- The arms are interleaved (each run rotates their order) after one warm-up of each; min, median
  and spread (max - min) over the runs.
- The photo has a photo's statistics: smooth colour fields, hard edges and sensor grain (several
  million distinct colours at 24 MP; the count is reported). A smooth synthetic flatters recolour,
  whose cost follows the number of distinct colours.
- The masks are given (`Correction(mask=...)`): centred ellipses of 5%, 20% and 60% of the frame.
  The tiny preset's random segmenter would mask about 90% of any frame.
- Each action runs in its own process (`--child`), so its peak memory (max RSS) is its own: the
  models and libraries ("baseline", after a small warm-up edit) plus what the edits add.

The tiny preset's models are random and small, so the time is what Lasso spends outside the
models (remove's inpainting is a tiny random UNet at about 1 MP). No timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
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
from typing import Any, Callable

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
        out[y : y + 512] = np.clip(img[y : y + 512] + noise, 0, 255).astype(np.uint8)
    return out


def ellipse_mask(w: int, h: int, fraction: float) -> np.ndarray:
    """A bool HxW mask: a centred ellipse, the frame's shape, covering `fraction` of it."""
    s = np.sqrt(fraction * 4 / np.pi)  # the ellipse's semi-axes as a share of the half-width and half-height
    yy, xx = np.ogrid[0:h, 0:w]
    return ((xx - w / 2) / (s * w / 2)) ** 2 + ((yy - h / 2) / (s * h / 2)) ** 2 <= 1


def distinct_colours(rgb: np.ndarray) -> int:
    codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    present = np.zeros(1 << 24, np.bool_)
    present[codes.reshape(-1)] = True
    return int(present.sum())


INSTRUCTIONS = {"remove": "remove the car", "recolor": "make the car red", "blur": "blur the background",
                "pixelate": "pixelate the car", "brightness": "make the car brighter",
                "black_and_white": "make the background black and white"}
MASKS = (0.05, 0.2, 0.6)


def _rss_mb() -> float:
    """This process's peak resident memory, MB: VmHWM, which starts afresh at exec (getrusage's
    maxrss carries the forking parent's peak over an execve: a child would report the parent's
    photo and colour count as its own)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall s, CPU s of this process, all threads, plus any child it waited for, fn's value)."""
    c0, k0, t0 = time.process_time(), _children_cpu(), time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, time.process_time() - c0 + _children_cpu() - k0, value


def child(action: str, src: Path, runs: int, level: int, work: Path, masks: list[float]) -> dict:
    """One action in this process: a warm-up of every arm, then `runs` interleaved measured runs."""
    from PIL import Image

    from lasso_edit import Editor
    from lasso_edit.core.plan import Correction
    from lasso_edit.imaging import jpeg_blocks, load_image, save_image
    from lasso_edit.pipeline.outputs import write_and_prove

    editor = Editor.from_preset("tiny", device="cpu", parser="rules")
    small = work / f"small-{action}.png"
    Image.fromarray(photo(64, 48)).save(small)
    editor(str(small), INSTRUCTIONS[action], seed=1)  # builds the models: the baseline memory
    baseline_mb = _rss_mb()
    with Image.open(src) as im:
        w, h = im.size
    given = {f: ellipse_mask(w, h, f) for f in masks}
    jpeg = shutil.which("jpegtran") is not None
    out: dict[str, Any] = {"wall": {}, "cpu": {}, "stages": {}, "sizes": {}, "load": []}

    def record(arm: str, wall: float, cpu: float) -> None:
        out["wall"].setdefault(arm, []).append(wall)
        out["cpu"].setdefault(arm, []).append(cpu)

    def floor() -> None:  # Lasso's own decode + Lasso's own writer, the I/O an edit cannot avoid
        save_image(load_image(src).original, work / f"floor-{action}.png", like=None, png_compress=level)

    def pillow() -> None:  # a reference: Pillow's open + save at the same level
        Image.open(src).save(work / f"pillow-{action}.png", compress_level=level)

    def jpegtran() -> None:
        target = str(work / f"jpegtran-{action}.jpg")
        subprocess.run(["jpegtran", "-copy", "all", "-outfile", target, str(src)], check=True)

    def lasso(f: float) -> Callable[[], Any]:
        def run() -> Any:
            res = editor(str(src), INSTRUCTIONS[action], seed=1, corrections=Correction(mask=given[f]))
            save_image(res.image, work / f"{action}-{f}.png", like=None, png_compress=level)
            return res

        return run

    def measured(arm: str, fn: Callable[[], Any], keep: bool) -> Any:
        wall, cpu, value = _timed(fn)
        if keep:
            record(arm, wall, cpu)
        return value

    def edit_arm(f: float, keep: bool) -> None:
        res = measured(f"lasso@{f}", lasso(f), keep)
        if keep:
            stages = out["stages"].setdefault(str(f), {})
            for k, v in res.timings.items():
                stages.setdefault(k, []).append(v)
            stages.setdefault("changed_fraction", []).append(float(res.mask.mean()))
        if jpeg:  # the same edit written JPEG -> JPEG: only the touched MCUs coded again (what jpegtran
            # does, plus the edit's blocks), then as `lasso edit` writes it: signed and proved
            target = work / f"{action}-{f}-write.jpg"
            measured(f"jpeg_write@{f}", lambda: jpeg_blocks.write(res.source, res.rgb, res.mask, target.write_bytes), keep)
            measured(f"jpeg_save@{f}", lambda: write_and_prove(res, work / f"{action}-{f}.jpg"), keep)

    arms: list[tuple[str, Callable[[bool], None]]] = [
        ("floor", lambda keep: measured("floor", floor, keep)),
        ("pillow", lambda keep: measured("pillow", pillow, keep)),
        *([("jpegtran", lambda keep: measured("jpegtran", jpegtran, keep))] if jpeg else []),
        *[(f"lasso@{f}", functools.partial(edit_arm, f)) for f in masks],
    ]
    for _, arm in arms:  # the warm-up
        arm(False)
    for i in range(runs):
        out["load"].append(os.getloadavg()[0])
        k = i % len(arms)
        for _, arm in arms[k:] + arms[:k]:  # each run starts at another arm
            arm(True)
    out["load"].append(os.getloadavg()[0])
    out["sizes"] = {p.stem: p.stat().st_size for p in work.glob("*.png") if not p.stem.startswith("small")}
    out.update(max_rss_mb=_rss_mb(), baseline_rss_mb=baseline_mb,
               changed_fraction={str(f): float(given[f].mean()) for f in masks})
    return out


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": float(np.min(values)), "median": float(np.median(values)),
            "spread": float(np.max(values) - np.min(values))}


def summarise(raw: dict, pixels: int) -> dict:
    """Per action: the floor's, Pillow's and jpegtran's CPU and wall stats, and per mask size the
    edit's, with its ratios over the floor (CPU-seconds, target 2) and the JPEG save's over jpegtran."""
    per_action = {}
    for a, r in raw.items():
        cpu = {k: _stats(v) for k, v in r["cpu"].items()}
        wall = {k: _stats(v) for k, v in r["wall"].items()}
        floor_cpu, floor_wall = cpu["floor"]["median"], wall["floor"]["median"]
        masks = {}
        for f in r["changed_fraction"]:
            row = {"mask_fraction": r["changed_fraction"][f], "cpu_s": cpu[f"lasso@{f}"], "wall_s": wall[f"lasso@{f}"]}
            row["cpu_over_floor"] = row["cpu_s"]["median"] / floor_cpu
            row["wall_over_floor"] = row["wall_s"]["median"] / floor_wall
            row["cpu_over_pillow"] = row["cpu_s"]["median"] / cpu["pillow"]["median"]
            row["target"] = "met" if row["cpu_over_floor"] <= 2 else "missed"
            row["stages_median_s"] = {k: float(np.median(v)) for k, v in r["stages"][f].items()}
            if f"jpeg_save@{f}" in cpu:
                j, s = cpu[f"jpeg_write@{f}"], cpu[f"jpeg_save@{f}"]
                ratio = j["median"] / cpu["jpegtran"]["median"]
                row["jpeg"] = {"write_cpu_s": j, "write_wall_s": wall[f"jpeg_write@{f}"], "cpu_over_jpegtran": ratio,
                               "target": ("met" if ratio <= 3 else "missed") if float(f) <= 0.05 else "none",
                               "save_cpu_s": s, "save_wall_s": wall[f"jpeg_save@{f}"],
                               "save_cpu_over_jpegtran": s["median"] / cpu["jpegtran"]["median"]}
            masks[f] = row
        per_action[a] = {"instruction": INSTRUCTIONS[a], "floor": {"cpu_s": cpu["floor"], "wall_s": wall["floor"]},
                         "pillow": {"cpu_s": cpu["pillow"], "wall_s": wall["pillow"]},
                         "jpegtran": ({"cpu_s": cpu["jpegtran"], "wall_s": wall["jpegtran"]}
                                      if "jpegtran" in cpu else None),
                         "masks": masks, "load_avg_1min": [min(r["load"]), max(r["load"])],
                         "max_rss_mb": r["max_rss_mb"], "baseline_rss_mb": r["baseline_rss_mb"],
                         "max_rss_bytes_per_pixel": r["max_rss_mb"] * 2**20 / pixels,
                         "png_bytes": r["sizes"], "all_runs": {"cpu": r["cpu"], "wall": r["wall"]}}
    return per_action


def markdown(result: dict) -> list[str]:
    acts = result["actions"]
    load = [x for r in acts.values() for x in r["load_avg_1min"]]
    busy = max(load) > 2.5 if load else False
    first = next(iter(acts.values()))
    md = [f"# CPU: warm tiny-preset edits + save of a {result['photo']} vs the floor (Lasso's decode + "
          f"Lasso's PNG writer, level {result['png_level']})", "",
          f"{result['date']}; {result['machine']}; Python {result['python']}; {result['runs']} interleaved runs per "
          f"arm after a warm-up, each action in its own process; masks given. Photo: {result['distinct_colours']:,} "
          f"distinct colours. 1-minute load average during the runs: {min(load):.2f}-{max(load):.2f}"
          + (" (a busy machine: above 2.5; wall times are inflated, compare CPU-seconds)." if busy else "."),
          "", f"Command: `{result['command']}`", "",
          f"Floor (Lasso decode + write PNG), CPU s median {first['floor']['cpu_s']['median']:.2f} "
          f"(wall {first['floor']['wall_s']['median']:.2f}); Pillow open + save (reference only) CPU s "
          f"{first['pillow']['cpu_s']['median']:.2f} (wall {first['pillow']['wall_s']['median']:.2f})"
          + (f"; `jpegtran -copy all` CPU s {first['jpegtran']['cpu_s']['median']:.3f}."
             if first["jpegtran"] else "; `jpegtran` is not installed: no JPEG comparison "
             "(`apt-get install libjpeg-turbo-progs`)."), "",
          "| action | mask | CPU s: median (min, spread) | wall s median | CPU / floor (target <= 2) "
          "| CPU / Pillow | JPEG write CPU s / jpegtran (target <= 3 at 5%) "
          "| JPEG write + sign + proof CPU s / jpegtran | peak RSS MB |",
          "|---|---|---|---|---|---|---|---|---|"]
    for r in acts.values():
        for f, m in r["masks"].items():
            c = m["cpu_s"]
            j = m.get("jpeg")
            jt = (f"{j['write_cpu_s']['median']:.2f} / {r['jpegtran']['cpu_s']['median']:.3f} = "
                  f"{j['cpu_over_jpegtran']:.1f}x" + (f" ({j['target']})" if j["target"] != "none" else "")) if j else "-"
            js = f"{j['save_cpu_s']['median']:.2f} = {j['save_cpu_over_jpegtran']:.1f}x" if j else "-"
            md.append(f"| `{r['instruction']}` | {float(f):.0%} | {c['median']:.2f} ({c['min']:.2f}, {c['spread']:.2f}) "
                      f"| {m['wall_s']['median']:.2f} | {m['cpu_over_floor']:.2f} ({m['target']}) "
                      f"| {m['cpu_over_pillow']:.2f} | {jt} | {js} | {r['max_rss_mb']:.0f} |")
    md += ["", "Floor per action process (CPU s median, spread): " + ", ".join(
        f"{a} {r['floor']['cpu_s']['median']:.2f} ({r['floor']['cpu_s']['spread']:.2f})" for a, r in acts.items()) + ".",
           "", "Stages (median wall s):", ""]
    for r in acts.values():
        for f, m in r["masks"].items():
            md.append(f"- `{r['instruction']}` at {float(f):.0%}: "
                      + ", ".join(f"{k} {v:.3f}" for k, v in m["stages_median_s"].items()))
    md += ["", "CPU-seconds count every thread of the process (and jpegtran's own). On a shared machine "
           "the multi-threaded parts (the parallel deflate, OpenCV, torch's OpenMP) can burn extra CPU-seconds "
           "spinning while they wait for a core, so a busy machine inflates both columns; the ratios are "
           "the figure to compare, on a quiet machine. Peak RSS counts the models and libraries.", ""]
    return md


def _shown_args(argv: list[str]) -> list[str]:
    """The arguments that change what is measured (not where the results go), to re-run it."""
    out, skip = [], False
    for a in argv:
        if skip or a == "--out" or a.startswith("--out="):
            skip = a == "--out"
            continue
        out.append(a)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="6000x4000", help="WIDTHxHEIGHT of the test photo")
    ap.add_argument("--runs", type=int, default=3, help="measured runs of each arm, interleaved, after one warm-up")
    ap.add_argument("--actions", default=",".join(INSTRUCTIONS), help=f"comma-separated, of: {', '.join(INSTRUCTIONS)}")
    ap.add_argument("--masks", default=",".join(str(m) for m in MASKS), help="mask sizes, fractions of the frame")
    ap.add_argument("--png-level", type=int, default=1, help="zlib level of every PNG written (Lasso's default: 1)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--child", help=argparse.SUPPRESS)  # ACTION: run one action here, print JSON
    ap.add_argument("--photo", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    masks = [float(m) for m in args.masks.split(",") if m.strip()]
    if args.child:
        src = Path(args.photo)
        print(json.dumps(child(args.child, src, args.runs, args.png_level, src.parent, masks)))
        return 0
    from PIL import Image

    w, h = (int(v) for v in args.size.lower().split("x"))
    actions = [a.strip() for a in args.actions.split(",") if a.strip()]
    unknown = set(actions) - set(INSTRUCTIONS)
    if unknown:
        ap.error(f"unknown actions {sorted(unknown)}; choose from {', '.join(INSTRUCTIONS)}")
    if shutil.which("jpegtran") is None:
        print("jpegtran is not installed (apt-get install libjpeg-turbo-progs): no JPEG comparison", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="lasso-cpu-") as tmp:
        src = Path(tmp) / "photo.jpg"
        img = photo(w, h)
        colours = distinct_colours(img)
        Image.fromarray(img).save(src, quality=92)  # photos arrive as JPEG
        del img
        raw = {}
        for a in actions:
            p = subprocess.run([sys.executable, __file__, "--child", a, "--photo", str(src), "--runs", str(args.runs),
                                "--png-level", str(args.png_level), "--masks", args.masks],
                               capture_output=True, text=True)
            if p.returncode != 0:
                sys.stderr.write(p.stderr)
                return p.returncode
            raw[a] = json.loads(p.stdout.strip().splitlines()[-1])
            for f in Path(tmp).glob(f"*{a}*"):  # keep the disk small between actions
                f.unlink()
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "python": platform.python_version(),
        "command": " ".join(["python bench/cpu.py", *_shown_args(sys.argv[1:])]),
        "photo": f"{w}x{h} JPEG (quality 92)", "distinct_colours": colours, "preset": "tiny", "parser": "rules",
        "png_level": args.png_level, "runs": args.runs, "masks": masks, "jpegtran": shutil.which("jpegtran") is not None,
        "target_cpu_over_floor": 2, "target_jpeg_cpu_over_jpegtran": 3, "actions": summarise(raw, w * h),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu.json").write_text(json.dumps(result, indent=2))
    md = markdown(result)
    (out / "cpu.md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
