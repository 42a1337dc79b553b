"""Lasso against the straightforward chain, side by side, on one GPU (or, with --smoke, on the CPU).

    python bench/compare.py                       # full-size random-weight models on CUDA (bench/gpu.sh)
    python bench/compare.py --cases all           # the whole matrix: 4 sizes x 4 actions x 2 region sizes
    python bench/compare.py --smoke --out /tmp/b  # tiny models on the CPU: every section, no timing claims

One process holds the models both arms share (bench/build.py, bench/arms.py). Sections run in
order of priority against a time budget and the report is rewritten after each, so a run cut
short still leaves its results:
  matrix    per case: 3 warm-up runs per arm, then >= 10 measured runs rotating the arms'
            order; median, p10, p90 per arm and stage (CUDA events); two ratios per case:
            baseline/lasso (the model-card chain) and same-settings/lasso (that chain at
            Lasso's scheduler, steps and guidance: what the engineering buys);
  fast      the `fast` preset (OneVision-0.5B, SlimSAM, OWLv2, SD 1.5 + a 4-step TCD LoRA);
            few-step ratios are reported apart from equal-step ones;
  best      the `best` preset (Qwen3-VL 8B, SAM 3, FLUX.2 klein 4B, bf16) per stage and its peak
            memory per stage, next to balanced's numbers from the matrix;
  reprompt  a second box on the same image against the first call (SAM's embedding cache);
  ablation  each optimization on and off, stage by stage;
  memory    peak GPU memory per arm, each in its own subprocess that loads saved fp16
            safetensors through the product's loading code: cold start and first call too;
  compile   --compile's warm-up and its steady state (only when the budget allows).
Writes compare.json and compare.md under --out (default bench/results).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import arms  # noqa: E402
import build  # noqa: E402
import report as rep  # noqa: E402
from stats import stats, sync  # noqa: E402

QUICK_CASES = [  # bench/gpu.sh: the target case first, then the other actions, then the other sizes
    (512, 512, "remove", 0.05), (512, 512, "background", 0.25), (512, 512, "recolor", 0.05),
    (4000, 6000, "remove", 0.05), (512, 512, "replace", 0.25), (512, 768, "remove", 0.25),
    (1024, 1024, "remove", 0.25),
]
ALL_SIZES = [(512, 512), (512, 768), (1024, 1024), (4000, 6000)]
SMOKE_SIZE = {(512, 512): (64, 64), (512, 768): (64, 96), (1024, 1024): (96, 96), (4000, 6000): (300, 450)}


class Bench:
    def __init__(self, args):
        self.args = args
        build.device_setup(self, args.smoke)
        self.t0 = time.perf_counter()
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        import tempfile

        self.scratch = Path(args.scratch or tempfile.mkdtemp(prefix="lasso-bench-"))
        self.report = rep.new_report(self.device, args)
        self.clock = arms.Clock(self.cuda)
        self.oracle = arms.Oracle()
        self.runs, self.warmup = (2, 1) if args.smoke else (args.runs, args.warmup)
        self.tokens = 4 if args.smoke else args.tokens
        self.report["settings"].update({"runs": self.runs, "warmup": self.warmup, "vlm_tokens_both_arms": self.tokens})

    def left(self) -> float:
        return self.args.budget - (time.perf_counter() - self.t0)

    def save(self):
        self.report["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        (self.out / "compare.json").write_text(json.dumps(self.report, indent=2))
        (self.out / "compare.md").write_text(rep.markdown(self.report))

    def section(self, name: str, fn, min_left: float = 0.0):
        if self.left() < min_left:
            self.report["sections"][name] = {"skipped": f"time budget: {self.left():.0f} s left, needs ~{min_left:.0f}"}
            print(f"[{name}] skipped (budget)", flush=True)
            return
        t = time.perf_counter()
        print(f"[{name}] start, {self.left():.0f} s left", flush=True)
        try:
            self.report["sections"][name] = fn()
        except Exception as e:  # noqa: BLE001 - one section's failure must not lose the others
            import traceback

            traceback.print_exc()
            self.report["sections"][name] = {"error": f"{type(e).__name__}: {e}"}
        self.report["sections"].setdefault(name, {})
        if isinstance(self.report["sections"][name], dict):
            self.report["sections"][name]["seconds"] = round(time.perf_counter() - t, 1)
        self.save()

    # ------------------------------------------------------------------ models
    def build_balanced(self):
        from lasso_edit.core.presets import PRESETS
        from lasso_edit.edit.inpaint import Inpainter
        from lasso_edit.edit.painters.sd import prepare_pipeline, set_scheduler
        from lasso_edit.ground.detector import Detector
        from lasso_edit.parse.llava import LlavaParser
        from lasso_edit.segment.sam import SamSegmenter

        t = time.perf_counter()
        p = PRESETS["balanced"]
        vlm, vproc = build.llava(self.device, self.half, self.scale)
        sam32, sproc = build.sam(self.device, __import__("torch").float32, "sam-vit-large", self.scale)
        sam16, _ = build.sam(self.device, self.bf16, "sam-vit-large", self.scale)
        sam16.load_state_dict(sam32.state_dict())  # the same weights in both arms
        det, dproc = build.grounding_dino(self.device, self.scale)
        pipe = build.sd_inpaint(self.device, self.half, self.scale)
        lasso_pipe = prepare_pipeline(build.clone_pipe(pipe), self.device, scheduler=p.scheduler)
        self.p = p
        self.baseline = arms.BaselineModels(vlm, vproc, sam32, sproc, pipe, self.device)
        same_pipe = build.clone_pipe(pipe)  # unfused, channels-first, as from_pretrained gives it
        set_scheduler(same_pipe, p.scheduler)
        self.same_settings = arms.Diffusion(same_pipe, steps=p.steps, guidance=p.guidance, guidance_end=p.guidance_end)
        self.stages = {
            "vlm": LlavaParser(vlm, vproc, model_id="llava-1.5-7b (random)", max_new_tokens=self.tokens,
                               min_new_tokens=self.tokens),
            "segmenter": SamSegmenter(sam16, sproc, model_id="sam-vit-large (random)"),
            "detector": Detector(det, dproc, model_id="grounding-dino-tiny (random)", device=self.device),
            "inpainter": Inpainter(lasso_pipe, model_id="sd-1.5-inpainting (random)", default_steps=p.steps,
                                   default_guidance=p.guidance, guidance_end=p.guidance_end, eta=p.eta),
        }
        self.editor = arms.lasso_editor(self.stages, self.oracle, self.clock, p, overlap=False, device=self.device)
        sync()
        n = lambda m: round(sum(x.numel() for x in m.parameters()) / 1e6, 1)  # noqa: E731
        return {"build_s": round(time.perf_counter() - t, 2), "constrained_vlm": self.stages["vlm"].constrained,
                "params_million": {"vlm": n(vlm), "sam": n(sam32), "detector": n(det), "unet": n(pipe.unet),
                                   "vae": n(pipe.vae), "text": n(pipe.text_encoder)}}

    # ------------------------------------------------------------------ one run of each arm
    def run_baseline(self, case, diffusion=None) -> tuple[float, dict, dict]:
        sync()
        t = time.perf_counter()
        out = arms.baseline_edit(self.baseline, case, self.tokens, seed=1, clock=self.clock, diffusion=diffusion)
        sync()
        wall = time.perf_counter() - t
        keep = ~(case.mask if case.action != "background" else ~case.mask)
        changed_outside = float((out[keep] != case.image[keep]).any(axis=-1).mean())
        return wall, self.clock.read(), {"changed_outside_mask": changed_outside}

    def run_same_settings(self, case) -> tuple[float, dict, dict]:
        return self.run_baseline(case, self.same_settings)

    def run_lasso(self, case, editor=None) -> tuple[float, dict, dict]:
        editor = editor or self.editor
        self.oracle.case = case
        sync()
        t = time.perf_counter()
        res = editor(case.image, case.instruction, seed=1)
        sync()
        wall = time.perf_counter() - t
        stages = self.clock.read()
        for k in ("refine", "composite", "restore"):
            stages[k] = res.timings.get(k, 0.0)
        outside = ~res.mask
        ok = bool((res.rgb[outside] == case.image[outside]).all()) and bool(
            (np.asarray(res.image)[outside] == case.image[outside]).all())
        return wall, stages, {"outside_mask_bit_identical": ok, "changed_fraction": float(res.mask.mean()),
                              "overlap_s": res.timings.get("overlap", 0.0)}

    def paired(self, case, arms_to_run: dict) -> dict:
        """Warm-ups, then measured runs of every arm, the order rotated each run. With a "lasso"
        arm, each other arm's time over Lasso's, run by run, is a ratio."""
        names = list(arms_to_run)
        for _ in range(self.warmup):
            for n in names:
                arms_to_run[n](case)
        walls = {n: [] for n in names}
        stages = {n: {} for n in names}
        checks = {n: [] for n in names}
        for r in range(self.runs):
            k = r % len(names)
            for n in names[k:] + names[:k]:
                wall, st, chk = arms_to_run[n](case)
                walls[n].append(wall)
                checks[n].append(chk)
                for k, v in st.items():
                    stages[n].setdefault(k, []).append(v)
        out = {"case": case.name, "size": list(case.size), "action": case.action, "fraction": case.fraction,
               "instruction": case.instruction, "arms": {}}
        for n in names:
            out["arms"][n] = {"e2e": stats(walls[n]), "stages": {k: stats(v) for k, v in stages[n].items()},
                              "checks": rep.merge_checks(checks[n])}
        if "lasso" in names:
            for n in names:
                if n != "lasso":
                    ratios = [a / b for a, b in zip(walls[n], walls["lasso"])]
                    out["ratio" if n == "baseline" else f"ratio_{n}"] = {"what": f"{n} / lasso", **stats(ratios)}
        return out

    # ------------------------------------------------------------------ sections
    def matrix(self):
        if self.args.cases == "all":
            cases = [(h, w, a, f) for (h, w) in ALL_SIZES for a in arms.INSTRUCTIONS for f in (0.05, 0.25)]
        else:
            cases = QUICK_CASES[:2] if self.args.smoke else QUICK_CASES
        results, per_case = [], None
        for h, w, action, frac in cases:
            if self.args.smoke:
                h, w = SMOKE_SIZE[(h, w)]
            need = (per_case or 0) * (4.0 if h * w > 4e6 else 1.0) + 30
            if results and self.left() < need + self.args.reserve:
                results.append({"case": f"{w}x{h} {action} {int(frac * 100)}%", "skipped": "time budget"})
                continue
            t = time.perf_counter()
            case = arms.make_case(h, w, action, frac)
            r = self.paired(case, {"baseline": self.run_baseline, "same-settings": self.run_same_settings,
                                   "lasso": self.run_lasso})
            per_case = per_case or (time.perf_counter() - t)
            results.append(r)
            print(rep.case_line(r), flush=True)
            self.report["sections"]["matrix"] = {"cases": results}
            self.save()
        return {"cases": results, "tokens": self.tokens}

    def fast(self):
        import torch

        from lasso_edit.core.presets import PRESETS
        from lasso_edit.edit.inpaint import Inpainter
        from lasso_edit.edit.painters.sd import prepare_pipeline
        from lasso_edit.ground.detector import Detector
        from lasso_edit.parse.llava import LlavaParser
        from lasso_edit.segment.sam import SamSegmenter

        p = PRESETS["fast"]
        ov, oproc = build.onevision(self.device, self.half, self.scale)
        slim, sproc = build.sam(self.device, self.bf16, "slimsam-77", self.scale)
        owl, wproc = build.owlv2(self.device, self.scale)
        lora = build.random_lora(self.baseline.pipe, self.scratch / "lora-fast")
        pipe = prepare_pipeline(build.clone_pipe(self.baseline.pipe), self.device, scheduler=p.scheduler,
                                lora=str(lora))
        stages = {"vlm": LlavaParser(ov, oproc, max_new_tokens=self.tokens, min_new_tokens=self.tokens),
                  "segmenter": SamSegmenter(slim, sproc), "detector": Detector(owl, wproc, device=self.device),
                  "inpainter": Inpainter(pipe, default_steps=p.steps, default_guidance=p.guidance,
                                         guidance_end=p.guidance_end, eta=p.eta)}
        self.fast_stages = stages
        editor = arms.lasso_editor(stages, self.oracle, self.clock, p, overlap=False, device=self.device)
        h, w = SMOKE_SIZE[(512, 512)] if self.args.smoke else (512, 512)
        case = arms.make_case(h, w, "remove", 0.05)
        r = self.paired(case, {"lasso-fast": lambda c: self.run_lasso(c, editor)})
        base = rep.find_case(self.report, case.name)  # the matrix measured the baseline on this case
        if base is not None:
            b = base["arms"]["baseline"]["e2e"]["median"]
            r["few_step_ratio"] = {"what": "baseline median (matrix) / lasso-fast median",
                                   "median": b / r["arms"]["lasso-fast"]["e2e"]["median"]}
        r["note"] = ("few-step: TCD-LoRA at 4 steps without guidance against the baseline's 50 guided steps; "
                     "a quality trade-off, reported apart from the equal-step ratios")
        r["settings"] = {"steps": p.steps, "scheduler": p.scheduler, "guidance": p.guidance,
                         "vlm": "llava-onevision-0.5b (random)", "segmenter": "slimsam-77 (random)",
                         "detector": "owlv2-base (random)"}
        del pipe
        torch.cuda.empty_cache() if self.cuda else None
        return r

    def best(self):
        """The `best` preset (Qwen3-VL 8B plans and points, SAM 3 grounds and segments, FLUX.2 klein
        paints in 4 steps) on the matrix's first case, per stage, next to balanced's numbers from
        this run's matrix; and each stage's peak memory, measured alone."""
        import torch

        from lasso_edit.core.plan import Action, Edit
        from lasso_edit.core.presets import PRESETS

        p = PRESETS["best"]
        t = time.perf_counter()
        stages = {"vlm": build.qwen3_vl(self.device, self.bf16, self.scale, tokens=self.tokens),
                  "segmenter": build.sam3(self.device, self.bf16, self.scale),
                  "inpainter": build.flux2_klein(self.device, self.bf16, self.scale)}
        built_s = time.perf_counter() - t
        editor = arms.lasso_editor(stages, self.oracle, self.clock, p, overlap=False, device=self.device,
                                   grounder="sam3")
        h, w = SMOKE_SIZE[(512, 512)] if self.args.smoke else (512, 512)
        case = arms.make_case(h, w, "remove", 0.05)
        r = self.paired(case, {"lasso-best": lambda c: self.run_lasso(c, editor)})
        base = rep.find_case(self.report, case.name)
        if base is not None and "lasso" in base["arms"]:
            r["balanced_from_matrix"] = {"e2e": base["arms"]["lasso"]["e2e"], "stages": base["arms"]["lasso"]["stages"]}
            r["best_over_balanced"] = (r["arms"]["lasso-best"]["e2e"]["median"]
                                       / base["arms"]["lasso"]["e2e"]["median"])
        peaks = {}
        if self.cuda:  # each stage alone, its own peak above what is resident
            from lasso_edit.edit.base import ExecSettings

            edit = Edit(Action.REMOVE, "object")
            calls = {"plan": lambda: stages["vlm"].parse(case.image, case.instruction),
                     "ground+segment": lambda: stages["segmenter"].find(case.image, "object"),
                     "paint": lambda: stages["inpainter"].execute(case.image, case.mask, edit,
                                                                  ExecSettings(steps=p.steps, guidance=p.guidance))}
            for name, call in calls.items():
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                before = torch.cuda.memory_allocated()
                call()
                torch.cuda.synchronize()
                peaks[name] = round((torch.cuda.max_memory_allocated() - before) / 2**30, 2)
            peaks["resident_all_three"] = round(
                sum(sum(x.numel() * x.element_size() for x in m.parameters())
                    for m in (stages["vlm"].model, stages["segmenter"].model,
                              stages["inpainter"].pipe.transformer, stages["inpainter"].pipe.text_encoder,
                              stages["inpainter"].pipe.vae)) / 2**30, 2)
        r["peak_memory_gib"] = peaks
        r["build_s"] = round(built_s, 1)
        r["settings"] = {"steps": p.steps, "guidance": p.guidance, "dtype": "bf16", "grounder": p.grounder,
                         "vlm": "Qwen3-VL-8B (random)", "segmenter": "SAM 3 (random)",
                         "inpainter": "FLUX.2 klein 4B (random)", "vlm_tokens": self.tokens}
        r["note"] = ("random weights at the real architectures: times and memory are the models', the pictures "
                     "noise; the plan and masks are the case's oracle in both presets, so each stage does the "
                     "work a real one would; balanced's numbers are this run's matrix on the same case")
        del editor, stages
        torch.cuda.empty_cache() if self.cuda else None
        return r

    def reprompt(self):
        seg = self.stages["segmenter"]
        from lasso_edit.core.plan import Grounding

        out = {}
        for h, w in ((512, 512), (4000, 6000)):
            if self.args.smoke:
                h, w = SMOKE_SIZE[(h, w)]
            first, again = [], []
            for i in range(self.warmup + self.runs):
                case = arms.make_case(h, w, "remove", 0.05, seed=100 + i)  # a new image: encode + decode
                g1 = Grounding([case.box], [1.0], "bench")
                x0, y0, x1, y1 = case.box
                g2 = Grounding([(x0 / 2, y0 / 2, x1 / 2 + w / 4, y1 / 2 + h / 4)], [1.0], "bench")
                sync(); t = time.perf_counter(); seg.segment(case.image, g1); sync()  # noqa: E702
                a = time.perf_counter() - t
                t = time.perf_counter(); seg.segment(case.image, g2); sync()  # noqa: E702
                b = time.perf_counter() - t
                if i >= self.warmup:
                    first.append(a)
                    again.append(b)
            out[f"{w}x{h}"] = {"first_call": stats(first), "reprompt": stats(again),
                               "reprompt_over_first": float(np.median(again) / np.median(first))}
        return out

    def ablation(self):
        import ablation

        return ablation.run(self)

    def memory(self):
        import ablation

        return ablation.memory(self)

    def batch(self):
        """`lasso batch`'s runner over N photos (N copies of one case, so the oracle grounds each) against
        the loop a user writes on the same editor: load, edit, save a PNG, one after the other. Both
        arms write the same files; the ratio is loop / runner (above 1: the overlapped I/O pays)."""
        from lasso_edit.batch import BatchRunner
        from lasso_edit.pipeline.many import BatchItem
        from lasso_edit.imaging import load_image

        n = 4 if self.args.smoke else self.args.batch_items
        h, w = (64, 96) if self.args.smoke else (512, 768)
        case = arms.make_case(h, w, "remove", 0.25)
        self.oracle.case = case
        folder = self.scratch / "batch-in"
        folder.mkdir(exist_ok=True)
        from PIL import Image

        items = []
        for i in range(n):
            path = folder / f"photo{i:03d}.png"
            Image.fromarray(case.image).save(path)
            items.append(BatchItem(str(path), case.instruction, f"photo{i:03d}"))
        self.editor(case.image, case.instruction, seed=1)  # warm
        sync()
        t = time.perf_counter()
        loop_out = self.scratch / "batch-loop"
        loop_out.mkdir(exist_ok=True)
        for item in items:
            res = self.editor(load_image(item.image), item.instruction, seed=1)
            res.save(loop_out / f"{item.id}.png")
        sync()
        loop_s = time.perf_counter() - t
        t = time.perf_counter()
        summary = BatchRunner(self.editor, self.scratch / "batch-out", {"bench": True},
                              edit_kwargs={"seed": 1}).run(items)
        sync()
        runner_s = time.perf_counter() - t
        return {"items": n, "size": f"{w}x{h}", "loop_s_per_item": round(loop_s / n, 4),
                "batch_s_per_item": round(runner_s / n, 4), "loop_over_batch": round(loop_s / runner_s, 3),
                "done": summary.done, "failed": summary.failed}

    def compile_section(self):
        import ablation

        return ablation.compile_run(self)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--smoke", action="store_true", help="tiny models on the CPU: checks every section runs")
    ap.add_argument("--cases", choices=["quick", "all"], default="quick")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--ablation-runs", type=int, default=10, help="measured runs per ablation row")
    ap.add_argument("--tokens", type=int, default=arms.VLM_TOKENS)
    ap.add_argument("--budget", type=float, default=540.0, help="seconds; sections past it are skipped")
    ap.add_argument("--reserve", type=float, default=250.0, help="seconds kept for the sections after the matrix")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip")
    ap.add_argument("--only", default="", help="comma-separated sections to run (build always runs)")
    ap.add_argument("--batch-items", type=int, default=100, help="photos in the batch section")
    ap.add_argument("--scratch", default=None, help="folder for saved models (default: a temporary folder)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--models", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.child:
        import ablation

        return ablation.child_main(args)
    import diffusers

    diffusers.utils.logging.disable_progress_bar()
    b = Bench(args)
    skip = set(filter(None, args.skip.split(",")))
    b.section("build", b.build_balanced)
    if "error" in b.report["sections"]["build"]:
        return 1
    if args.smoke:
        skip.add("compile")  # minutes of compilation on a CPU; run it on a GPU
    plan = [("matrix", b.matrix, 0), ("fast", b.fast, 30), ("best", b.best, 60), ("reprompt", b.reprompt, 10),
            ("ablation", b.ablation, 60), ("memory", b.memory, 90), ("batch", b.batch, 120),
            ("compile", b.compile_section, 150)]
    only = set(filter(None, args.only.split(",")))
    for name, fn, need in plan:
        if name not in skip and (not only or name in only):
            b.section(name, fn, need)
    b.report["targets"] = rep.targets(b.report)
    b.save()
    print(rep.markdown(b.report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
