"""The benchmark's report: metadata, targets met or missed, and a markdown rendering."""

from __future__ import annotations

import datetime as dt
import platform


def new_report(device: str, args) -> dict:
    import diffusers
    import torch
    import transformers

    card = torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or "CPU"
    from importlib.metadata import PackageNotFoundError, version

    try:
        xgr = version("xgrammar")
    except PackageNotFoundError:
        xgr = None
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": device, "card": card, "smoke": bool(args.smoke),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "diffusers": diffusers.__version__,
                     "xgrammar": xgr, "cuda": torch.version.cuda},
        "settings": {"runs": args.runs, "warmup": args.warmup, "vlm_tokens_both_arms": args.tokens,
                     "cases": args.cases, "budget_s": args.budget,
                     "baseline": "LLaVA generate (greedy, dynamic cache, fp16) -> SamProcessor + SamModel fp32 + "
                                 "post_process_masks -> SD inpaint defaults (PNDM, 50 steps, guidance 7.5, "
                                 "full frame at 512x512, resized back)",
                     "same-settings": "the baseline chain with Lasso's diffusion settings (DPM++ 2M, 25 steps, "
                                      "guidance 7.5 dropped after 80%), full frame at 512x512: equal UNet passes",
                     "lasso": "Editor, balanced preset stages: constrained compact VLM answer, Grounding DINO "
                              "bf16 autocast, SAM ViT-L bf16 + in-window post-processing, SD 1.5 DPM++ 2M 25 steps, "
                              "guidance off after 80%, channels_last + fused QKV (overlap of SAM/detector with "
                              "the VLM off: opt-in)",
                     "oracle": "plan, box and mask come from an oracle after each model ran for its cost"},
        "sections": {},
    }


def merge_checks(checks: list[dict]) -> dict:
    out: dict = {}
    for c in checks:
        for k, v in c.items():
            if isinstance(v, bool):
                out[k] = out.get(k, True) and v
            else:
                out.setdefault(k, []).append(v)
    return {k: (max(v) if isinstance(v, list) else v) for k, v in out.items()}


def find_case(report: dict, name: str):
    for c in report["sections"].get("matrix", {}).get("cases", []):
        if c.get("case") == name and "arms" in c:
            return c
    return None


def case_line(r: dict) -> str:
    if "arms" not in r:
        return f"{r.get('case')}: {r.get('skipped', r.get('error'))}"
    parts = [f"{n} {a['e2e']['median']:.3f}s" for n, a in r["arms"].items()]
    ratio = f", ratio {r['ratio']['median']:.2f}x" if "ratio" in r else ""
    return f"{r['case']}: " + ", ".join(parts) + ratio


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def targets(report: dict) -> list[dict]:
    """Issue 17's targets, each met, missed or not measured, with the number behind it."""
    s = report["sections"]
    c512 = find_case(report, "512x512 remove 5%")
    rows = []

    cuda = report["device"] == "cuda"

    def row(name, value, limit, better="lower", unit="s"):
        if not cuda:
            rows.append({"target": name, "status": "not measured (no GPU in this run)"})
            return
        if value is None:
            rows.append({"target": name, "status": "not measured"})
            return
        met = value <= limit if better == "lower" else value >= limit
        rows.append({"target": name, "value": round(value, 4), "limit": limit, "unit": unit,
                     "status": "met" if met else "missed", "gap": round(value - limit, 4)})

    row("fast end to end at 512x512 <= 0.25 s", _get(s, "fast", "arms", "lasso-fast", "e2e", "median"), 0.25)
    row("balanced end to end at 512x512 <= 0.8 s", _get(c512, "arms", "lasso", "e2e", "median"), 0.8)
    row("same-settings chain / lasso at 512x512 >= 1.5x (what engineering buys)",
        _get(c512, "ratio_same-settings", "median"), 1.5, "higher", "x")
    row("model-card chain / lasso at 512x512 >= 3x", _get(c512, "ratio", "median"), 3.0, "higher", "x")
    row("VLM decode <= 10 ms/token (7B)", _get(s, "ablation", "vlm_decode_ms_per_token", "median"), 10.0, unit="ms")
    row("SAM re-prompt < 10% of the first call", _get(s, "reprompt", "512x512", "reprompt_over_first"), 0.10,
        unit="ratio")
    for arm, gb in (("lasso", 20), ("lasso-low-vram", 8)):
        name = "balanced" if arm == "lasso" else "--low-vram"
        # Reserved is what the card must have free (the allocator's pool); allocated is what tensors used.
        row(f"peak VRAM {name} < {gb} GB, reserved by the process", _get(s, "memory", arm, "reserved_gib"),
            gb / 1.073741824, unit="GiB")
        row(f"peak VRAM {name} < {gb} GB, allocated by tensors", _get(s, "memory", arm, "peak_gib"),
            gb / 1.073741824, unit="GiB")
    return rows


def _fmt(st: dict | None) -> str:
    if not st:
        return "-"
    return f"{st['median']:.3f} ({st['p10']:.3f}-{st['p90']:.3f})"


def markdown(report: dict) -> str:
    s = report["sections"]
    v = report["versions"]
    lines = [f"# Lasso vs the straightforward chain ({'smoke run, tiny models: no timing claims' if report['smoke'] else report['card']})",
             "", f"{report['date']}; {report['card']}; torch {v['torch']}, transformers {v['transformers']}, "
             f"diffusers {v['diffusers']}, xgrammar {v['xgrammar']}, CUDA {v['cuda']}.",
             f"Runs: {report['settings']['warmup']} warm-up + {report['settings']['runs']} measured per arm and case, "
             f"the arms' order rotated every run; every arm decodes {report['settings']['vlm_tokens_both_arms']} VLM tokens. "
             "Times in seconds: median (p10-p90).", "",
             f"- baseline: {report['settings']['baseline']}",
             f"- same-settings: {report['settings'].get('same-settings', '-')}", f"- lasso: {report['settings']['lasso']}",
             f"- {report['settings']['oracle']}", ""]
    lines += [f"> {n}" for n in report.get("notes", [])] + ([""] if report.get("notes") else [])
    if report.get("targets"):
        lines += ["## Targets", "", "| target | value | status | gap |", "|---|---|---|---|"]
        for t in report["targets"]:
            val = f"{t['value']} {t['unit']}" if "value" in t else "-"
            lines.append(f"| {t['target']} | {val} | {t['status']} | {t.get('gap', '-')} |")
        lines.append("")
    cases = _get(s, "matrix", "cases") or []
    if cases:
        lines += ["## End to end: the model-card chain, that chain at Lasso's settings, and Lasso (matrix)", "",
                  "The model-card chain runs ~100 UNet passes (PNDM 50, guidance on every step), the same-settings "
                  "chain and Lasso ~45 (DPM++ 25, guidance off after 80%): baseline/lasso mixes configuration "
                  "and engineering, same-settings/lasso is the engineering alone.", "",
                  "| case | baseline | same-settings | lasso | baseline/lasso | same-settings/lasso | lasso parse "
                  "| ground | segment | edit | outside mask |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in cases:
            if "arms" not in c:
                lines.append(f"| {c['case']} | {c.get('skipped', c.get('error'))} | | | | | | | | | |")
                continue
            b, l = c["arms"]["baseline"], c["arms"]["lasso"]
            same = c["arms"].get("same-settings")
            st = l["stages"]
            md = lambda k: f"{st[k]['median']:.3f}" if k in st else "-"  # noqa: E731
            ident = "bit-identical" if l["checks"].get("outside_mask_bit_identical") else "CHANGED"
            lines.append(f"| {c['case']} | {_fmt(b['e2e'])} | {_fmt(same['e2e'] if same else None)} | {_fmt(l['e2e'])} | "
                         f"{_fmt(c['ratio'])} | {_fmt(c.get('ratio_same-settings'))} | {md('parse')} | "
                         f"{md('ground')} | {md('segment')} | {md('edit')} | {ident} (baseline changed "
                         f"{100 * b['checks'].get('changed_outside_mask', 0):.0f}% outside) |")
        lines.append("")
    f = s.get("fast")
    if f and "arms" in f:
        lines += ["## Few-step (fast preset), reported apart", "",
                  f"lasso-fast end to end: {_fmt(f['arms']['lasso-fast']['e2e'])}; "
                  f"baseline (balanced models, 50 steps) / lasso-fast: "
                  f"{_get(f, 'few_step_ratio', 'median') or 0:.2f}x. {f.get('note', '')}", ""]
    bst = s.get("best")
    if bst and "arms" in bst:
        a = bst["arms"]["lasso-best"]
        bal = bst.get("balanced_from_matrix") or {}
        lines += ["## The best preset (Qwen3-VL 8B, SAM 3, FLUX.2 klein 4B), next to balanced", "",
                  "| stage | best | balanced (matrix, same case) |", "|---|---|---|"]
        for k in ("e2e", "parse", "ground", "segment", "edit"):
            mine = a["e2e"] if k == "e2e" else a["stages"].get(k)
            theirs = bal.get("e2e") if k == "e2e" else (bal.get("stages") or {}).get(k)
            lines.append(f"| {k} | {_fmt(mine)} | {_fmt(theirs)} |")
        peaks = bst.get("peak_memory_gib") or {}
        if peaks:
            lines += ["", "Peak GPU memory per stage alone, GiB above what is resident: "
                      + ", ".join(f"{k} {v}" for k, v in peaks.items())]
        if "best_over_balanced" in bst:
            lines += ["", f"best / balanced end to end: {bst['best_over_balanced']:.2f}x."]
        lines += ["", bst.get("note", ""), ""]
    r = s.get("reprompt")
    if r and "error" not in r:
        lines += ["## SAM re-prompt on the same image", "", "| image | first call | re-prompt | ratio |", "|---|---|---|---|"]
        for k, x in r.items():
            if isinstance(x, dict):
                lines.append(f"| {k} | {_fmt(x['first_call'])} | {_fmt(x['reprompt'])} | {x['reprompt_over_first']:.3f} |")
        lines.append("")
    a = s.get("ablation")
    if a and "rows" in a:
        n = a["rows"][0]["time"]["n"] if a["rows"] else 0
        lines += ["## Ablation (one optimization at a time)", "",
                  f"{n} measured runs per row. 'within noise': the row's p10-p90 overlaps the row it is "
                  "compared with, so the speedup is not shown to be real.", "",
                  "| stage | variant | time | vs. without | |", "|---|---|---|---|---|"]
        for row in a["rows"]:
            sp = f"{row['speedup']:.2f}x" if row.get("speedup") else "-"
            noise = "" if "within_noise" not in row else ("within noise" if row["within_noise"] else "outside noise")
            lines.append(f"| {row['stage']} | {row['variant']} | {_fmt(row.get('time'))} | {sp} | {noise} |")
        if a.get("vlm_decode_ms_per_token"):
            lines.append(f"\nVLM decode: {_fmt(a['vlm_decode_ms_per_token'])} ms per token (the time of a "
                         f"{a.get('vlm_decode_tokens')}-token answer less an 8-token one, over the difference).")
        lines.append("")
    m = s.get("memory")
    if m and "error" not in m:
        lines += ["## Memory, cold start and first call (each arm in its own process)", "",
                  "| arm | peak allocated (torch) GiB | process total at the end (NVML) GiB | cold start s | first call s | warm s |",
                  "|---|---|---|---|---|---|"]
        for k, x in m.items():
            if isinstance(x, dict) and "peak_gib" in x:
                lines.append(f"| {k} | {x['peak_gib']:.2f} | {x.get('nvml_gib') or '-'} | {x['cold_start_s']:.1f} | "
                             f"{x['first_call_s']:.2f} | {x['warm_s']:.3f} |")
            elif isinstance(x, dict):
                lines.append(f"| {k} | {x.get('error', x.get('skipped', '-'))} | | | | |")
        lines.append("")
    bt = s.get("batch")
    if bt and "items" in bt:
        lines += ["## lasso batch (the runner) vs a plain loop on the same editor", "",
                  f"{bt['items']} photos of {bt['size']}: {bt['batch_s_per_item']:.3f} s per edit with the runner, "
                  f"{bt['loop_s_per_item']:.3f} s in a load-edit-save loop ({bt['loop_over_batch']:.2f}x); "
                  f"{bt['done']} done, {bt['failed']} failed.", ""]
    c = s.get("compile")
    if c and "error" not in c and "skipped" not in c:
        lines += ["## --compile", "", "```", str(c), "```", ""]
    for k, x in s.items():
        if isinstance(x, dict) and ("error" in x or "skipped" in x):
            lines.append(f"- section {k}: {x.get('error') or x.get('skipped')}")
    return "\n".join(lines) + "\n"
