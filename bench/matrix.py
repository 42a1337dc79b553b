"""The speed matrix: Lasso's configurations x actions x sizes on one GPU, GPU and host stages both.

    bash bench/gpu_matrix.sh           # part 1 on the lent machine: fits 8 minutes of device time
    bash bench/gpu_matrix_rest.sh      # part 2: every case part 1 left, and the compile arms
    python bench/matrix.py --smoke --out /tmp/m   # tiny models on the CPU: every arm and action runs

Arms (configurations of the same random full-size weights):
  balanced            the balanced preset (LLaVA-1.5-7B, SAM ViT-L bf16, Grounding DINO tiny, SD 1.5
                      DPM++ 25 steps, guidance off after 80%);
  balanced+deepcache  the same with --deepcache 3 (an approximation: a full UNet step every 3);
  balanced+vlm-compile  the VLM decodes with a static KV cache (transformers compiles it on CUDA);
  balanced+compile    --compile: UNet, VAE decoder and SAM encoder compiled, and the VLM's static cache;
  fast                the fast preset (OneVision-0.5B, SlimSAM, OWLv2, SD 1.5 + 4-step TCD LoRA),
                      planning rules-first: no VLM call for these instructions (the plan says so);
  quality             the quality preset (LLaVA-NeXT Mistral-7B, SAM ViT-H, Grounding DINO base,
                      SDXL inpainting 30 steps).
Cases: remove, replace, background, recolor and blur at 512x512, 768x512, 1024x1024 and 6000x4000
(24 MP), the region an oracle ellipse of 25% of the frame (5% at 24 MP).

Per case, every arm asked for: --warmup runs each, then --runs measured runs with the arms' order
rotated every run; median, p10, p90 of the whole edit and of each stage: the models' (CUDA
events: parse, ground, segment, edit) and the host's (refine, composite, restore: numpy/OpenCV on
the CPU, as res.timings measures them). Random models answer noise, so an oracle gives the plan
(the rules parser's reading), the box and the mask after each model ran for its cost (bench/arms.py).
Cases are run in order of priority against --budget seconds; the JSON is rewritten after each,
so a run cut short keeps what it measured, and --resume FILE skips what FILE already holds.
What a ratio here does not show: quality (deepcache and fast trade some), cold start (compare.py's
memory section), and other cards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import arms  # noqa: E402
import build  # noqa: E402
from stats import stats, sync  # noqa: E402 - the same statistics and CUDA sync as the comparison

ACTIONS = {**arms.INSTRUCTIONS, "blur": "blur the background"}
SIZES = [(512, 512), (512, 768), (1024, 1024), (4000, 6000)]  # (height, width)
SMOKE = {(512, 512): (64, 64), (512, 768): (64, 96), (1024, 1024): (96, 96), (4000, 6000): (300, 450)}
ARMS = ["balanced", "balanced+deepcache", "balanced+vlm-compile", "balanced+compile", "fast", "quality"]
PART1_ARMS = "balanced,balanced+deepcache,fast"


class Matrix:
    def __init__(self, args):
        import torch

        self.args = args
        build.device_setup(self, args.smoke)
        self.clock = arms.Clock(self.cuda)
        self.oracle = arms.Oracle()
        self.t0 = time.perf_counter()
        self.editors: dict[str, object] = {}
        self.shared: dict[str, object] = {}
        card = torch.cuda.get_device_name(0) if self.cuda else "CPU (smoke run: no timing claims)"
        self.report = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "card": card,
                       "smoke": bool(args.smoke), "runs": args.runs, "warmup": args.warmup,
                       "torch": torch.__version__, "arms": {}, "cases": []}

    def left(self) -> float:
        return self.args.budget - (time.perf_counter() - self.t0)

    # ------------------------------------------------------------------ arms
    def _balanced_models(self):
        if "balanced" not in self.shared:
            vlm, vproc = build.llava(self.device, self.half, self.scale)
            sam, sproc = build.sam(self.device, self.bf16, "sam-vit-large", self.scale)
            det, dproc = build.grounding_dino(self.device, self.scale)
            pipe = build.sd_inpaint(self.device, self.half, self.scale)
            self.shared["balanced"] = (vlm, vproc, sam, sproc, det, dproc, pipe)
        return self.shared["balanced"]

    def build_arm(self, name: str):
        """An Editor for the arm over product stages (the product's own classes and settings)."""
        from lasso_edit.core.presets import PRESETS
        from lasso_edit.edit.inpaint import Inpainter
        from lasso_edit.edit.painters.sd import prepare_pipeline
        from lasso_edit.ground.detector import Detector
        from lasso_edit.parse.llava import LlavaParser
        from lasso_edit.segment.sam import SamSegmenter

        t = time.perf_counter()
        tokens = 4 if self.args.smoke else arms.VLM_TOKENS
        if name.startswith("balanced"):
            p = PRESETS["balanced"]
            vlm, vproc, sam, sproc, det, dproc, pipe = self._balanced_models()
            compiled = name == "balanced+compile"
            pipe = prepare_pipeline(build.clone_pipe(pipe), self.device, scheduler=p.scheduler)
            inp = Inpainter(pipe, default_steps=p.steps, default_guidance=p.guidance, guidance_end=p.guidance_end,
                            eta=p.eta, deepcache=3 if name == "balanced+deepcache" else 0)
            seg = SamSegmenter(sam, sproc)
            if compiled:
                import copy

                seg = SamSegmenter(copy.deepcopy(sam), sproc)  # the compiled encoder on its own copy
                seg.compile()
                inp.compile()
            stages = {"vlm": LlavaParser(vlm, vproc, max_new_tokens=tokens, min_new_tokens=tokens,
                                         static_cache=name in ("balanced+vlm-compile", "balanced+compile")),
                      "segmenter": seg, "detector": Detector(det, dproc, device=self.device), "inpainter": inp}
            parser = "auto"
        elif name == "fast":
            p = PRESETS["fast"]
            ov, oproc = build.onevision(self.device, self.half, self.scale)
            slim, sproc = build.sam(self.device, self.bf16, "slimsam-77", self.scale)
            owl, wproc = build.owlv2(self.device, self.scale)
            base = self._balanced_models()[-1]
            import tempfile

            lora = build.random_lora(base, Path(tempfile.mkdtemp(prefix="lasso-matrix-")) / "lora")
            pipe = prepare_pipeline(build.clone_pipe(base), self.device, scheduler=p.scheduler, lora=str(lora))
            stages = {"vlm": LlavaParser(ov, oproc, max_new_tokens=tokens, min_new_tokens=tokens),
                      "segmenter": SamSegmenter(slim, sproc), "detector": Detector(owl, wproc, device=self.device),
                      "inpainter": Inpainter(pipe, default_steps=p.steps, default_guidance=p.guidance,
                                             guidance_end=p.guidance_end, eta=p.eta)}
            parser = p.parser  # rules-first
        elif name == "quality":
            p = PRESETS["quality"]
            vlm, vproc = build.llava_next(self.device, self.half, self.scale)
            sam, sproc = build.sam(self.device, self.bf16, "sam-vit-huge", self.scale)
            det, dproc = build.grounding_dino(self.device, self.scale, base=True)
            pipe = prepare_pipeline(build.sdxl_inpaint(self.device, self.half, self.scale), self.device,
                                    scheduler=p.scheduler)
            stages = {"vlm": LlavaParser(vlm, vproc, max_new_tokens=tokens, min_new_tokens=tokens),
                      "segmenter": SamSegmenter(sam, sproc), "detector": Detector(det, dproc, device=self.device),
                      "inpainter": Inpainter(pipe, default_steps=p.steps, default_guidance=p.guidance,
                                             guidance_end=p.guidance_end, eta=p.eta)}
            parser = "auto"
        else:
            raise SystemExit(f"unknown arm {name!r}; one of {', '.join(ARMS)}")
        editor = arms.lasso_editor(stages, self.oracle, self.clock, p, overlap=False, device=self.device,
                                   parser=parser)
        sync()
        self.report["arms"][name] = {"build_s": round(time.perf_counter() - t, 1), "steps": p.steps,
                                     "scheduler": p.scheduler, "parser": parser}
        return editor

    # ------------------------------------------------------------------ one run
    def run(self, editor, case) -> tuple[float, dict, dict]:
        self.oracle.case = case
        sync()
        t = time.perf_counter()
        res = editor(case.image, case.instruction, seed=1)
        sync()
        wall = time.perf_counter() - t
        stages = {f"gpu {k}": v for k, v in self.clock.read().items()}
        for k in ("refine", "composite", "restore"):
            stages[f"host {k}"] = res.timings.get(k, 0.0)
        if "gpu edit" not in stages:  # a deterministic action (recolour, blur) paints on the host
            stages["host edit"] = res.timings.get("edit", 0.0)
        outside = ~res.mask
        ok = bool((res.rgb[outside] == case.image[outside]).all())
        return wall, stages, {"outside_mask_bit_identical": ok, "plan_source": res.plan.source}

    def case(self, size, action, names: list[str]) -> dict:
        h, w = SMOKE[size] if self.args.smoke else size
        frac = 0.05 if size == (4000, 6000) else 0.25
        case = arms.make_case(h, w, action if action in arms.INSTRUCTIONS else "background", frac)
        case.text = ACTIONS[action]
        eds = {n: self.editors[n] for n in names}
        for _ in range(self.warmup_runs(size)):
            for n in names:
                self.run(eds[n], case)
        walls = {n: [] for n in names}
        stages = {n: {} for n in names}
        checks = {n: [] for n in names}
        for r in range(self.args.runs):
            k = r % len(names)
            for n in names[k:] + names[:k]:
                wall, st, chk = self.run(eds[n], case)
                walls[n].append(wall)
                checks[n].append(chk)
                for key, v in st.items():
                    stages[n].setdefault(key, []).append(v)
        out = {"case": f"{w}x{h} {action}", "size": [h, w], "action": action, "instruction": ACTIONS[action],
               "region_fraction": frac, "arms": {}}
        for n in names:
            out["arms"][n] = {"e2e": stats(walls[n]), "stages": {k: stats(v) for k, v in stages[n].items()},
                              "outside_mask_bit_identical": all(c["outside_mask_bit_identical"] for c in checks[n]),
                              "plan_source": sorted({c["plan_source"] for c in checks[n]})}
        return out

    def warmup_runs(self, size) -> int:
        return self.args.warmup

    # ------------------------------------------------------------------ report
    def save(self):
        out = Path(self.args.out)
        out.mkdir(parents=True, exist_ok=True)
        self.report["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        (out / f"matrix{self.args.label}.json").write_text(json.dumps(self.report, indent=2))
        (out / f"matrix{self.args.label}.md").write_text(markdown(self.report))


def _fmt(st: dict | None) -> str:
    return "-" if not st else f"{st['median']:.3f} ({st['p10']:.3f}-{st['p90']:.3f})"


def markdown(report: dict) -> str:
    lines = [f"# Lasso's speed matrix on {report['card']}", "",
             f"{report['date']}; torch {report['torch']}; {report['warmup']} warm-up + {report['runs']} measured runs "
             "per arm and case, the arms' order rotated every run. Seconds: median (p10-p90). 'gpu' stages are "
             "CUDA-event times of the models; 'host' stages are numpy/OpenCV on the CPU.", "",
             "| arm | built in (s) | steps | scheduler | parser |", "|---|---|---|---|---|"]
    for n, a in report["arms"].items():
        lines.append(f"| {n} | {a.get('build_s', '-')} | {a.get('steps', '-')} | {a.get('scheduler', '-')} | "
                     f"{a.get('parser', a.get('error', '-'))} |")
    lines += ["", "| case | arm | end to end | gpu parse | gpu ground | gpu segment | gpu edit | host edit | host refine | "
              "host composite | host restore | outside the mask | plan |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in report["cases"]:
        if "arms" not in c:
            lines.append(f"| {c['case']} | {c.get('skipped', c.get('error'))} | | | | | | | | | | | |")
            continue
        for n, a in c["arms"].items():
            st = a["stages"]
            cell = lambda k, st=st: f"{st[k]['median']:.3f}" if k in st else "-"  # noqa: E731
            lines.append(f"| {c['case']} | {n} | {_fmt(a['e2e'])} | {cell('gpu parse')} | {cell('gpu ground')} | "
                         f"{cell('gpu segment')} | {cell('gpu edit')} | {cell('host edit')} | {cell('host refine')} | "
                         f"{cell('host composite')} | {cell('host restore')} | "
                         f"{'bit-identical' if a['outside_mask_bit_identical'] else 'CHANGED'} | "
                         f"{', '.join(a['plan_source'])} |")
    return "\n".join(lines) + "\n"


def plan_cases(sizes, actions) -> list[tuple]:
    """Priority: every action at the smallest size, then the other sizes (remove first)."""
    first = [(sizes[0], a) for a in actions]
    rest = [(s, a) for s in sizes[1:] for a in sorted(actions, key=lambda a: a != "remove")]
    return first + rest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    ap.add_argument("--label", default="", help="suffix of the result files: matrix{LABEL}.json/md")
    ap.add_argument("--smoke", action="store_true", help="tiny models on the CPU: checks every arm and action runs")
    ap.add_argument("--arms", default=PART1_ARMS, help=f"comma-separated, of: {', '.join(ARMS)}")
    ap.add_argument("--sizes", default="512x512,768x512,1024x1024,6000x4000", help="WIDTHxHEIGHT, comma-separated")
    ap.add_argument("--actions", default=",".join(ACTIONS))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget", type=float, default=420.0, help="seconds; cases past it are listed as skipped")
    ap.add_argument("--resume", default=None, help="a matrix JSON whose measured cases (arm and case) are skipped")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.smoke:
        args.runs, args.warmup = min(args.runs, 2), min(args.warmup, 1)
    import diffusers

    diffusers.utils.logging.disable_progress_bar()
    names = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in names if a not in ARMS]
    if bad:
        ap.error(f"unknown arms {bad}; one of {', '.join(ARMS)}")
    sizes = [tuple(int(v) for v in s.lower().split("x"))[::-1] for s in args.sizes.split(",")]
    actions = [a.strip() for a in args.actions.split(",") if a.strip()]
    done: set[tuple[str, str]] = set()
    if args.resume and Path(args.resume).exists():
        for c in json.loads(Path(args.resume).read_text()).get("cases", []):
            done |= {(c["case"], n) for n in c.get("arms", {})}
    m = Matrix(args)
    for n in names:
        try:
            m.editors[n] = m.build_arm(n)
        except Exception as e:  # noqa: BLE001 - one arm's failure must not lose the others
            import traceback

            traceback.print_exc()
            m.report["arms"][n] = {"error": f"{type(e).__name__}: {e}"}
        m.save()
    names = [n for n in names if n in m.editors]
    per_case = None
    for size, action in plan_cases(sizes, actions):
        h, w = SMOKE[size] if args.smoke else size
        todo = [n for n in names if (f"{w}x{h} {action}", n) not in done]
        if not todo:
            continue
        need = (per_case or 0) * (4.0 if size[0] * size[1] > 4e6 else 1.0) * len(todo) / len(names)
        if m.report["cases"] and m.left() < need:
            m.report["cases"].append({"case": f"{w}x{h} {action}", "skipped": "time budget: run "
                                      "bench/gpu_matrix_rest.sh", "arms_left": todo})
            m.save()
            continue
        t = time.perf_counter()
        try:
            m.report["cases"].append(m.case(size, action, todo))
        except Exception as e:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            m.report["cases"].append({"case": f"{w}x{h} {action}", "error": f"{type(e).__name__}: {e}"})
        per_case = per_case or (time.perf_counter() - t)
        print(f"[{m.left():.0f} s left] {m.report['cases'][-1].get('case')}", flush=True)
        m.save()
    print(markdown(m.report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
