"""The report of `lasso eval`: samples.jsonl, summary.json, summary.md, plots/ and index.html.

The page shows the aggregate table beside MagicBrush's published single-turn figures, the
distribution of each metric, the worst 20 samples by L1, and a contact sheet (source | Lasso's mask
| output | ground truth, with the instruction and the scores) so a person sees where Lasso fails.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from ..imaging import write_atomic
from .metrics import METRICS, PIE

OWN = ("l1_outside", "l1_inside", "mask_iou")
LOWER_IS_BETTER = {"l1", "l2", "l1_outside"}
# MagicBrush test set, single turn (MODELS.md): for reading Lasso's numbers, not computed here.
PUBLISHED = {
    "InstructPix2Pix": {"l1": 0.1122, "clip_i": 0.8524, "dino": 0.7428},
    "InstructPix2Pix fine-tuned on MagicBrush": {"l1": 0.0625, "clip_i": 0.9332, "dino": 0.8987},
}


# PIE-Bench's paper (Ju et al., ICLR 2024) on the whole benchmark, as Papers with Code lists its
# results (paperswithcode.com/paper/direct-inversion-boosting-diffusion-based and
# /paper/null-text-inversion-for-editing-real-images), in the paper's units (LPIPS x 10^3). Only the
# figures read there are copied; the rest of its table is left out, not recalled.
PUBLISHED_PIE = {
    "Direct Inversion + Prompt-to-Prompt": {"psnr_outside": 27.22, "lpips_outside x10^3": 54.55, "clip_whole": 25.02},
    "Null-Text Inversion + Prompt-to-Prompt": {
        "psnr_outside": 27.03,
        "lpips_outside x10^3": 60.67,
        "clip_whole": 24.75,
    },
}


def _published_pie() -> str:
    return "; ".join(f"{n}: " + ", ".join(f"{k} {v}" for k, v in vals.items()) for n, vals in PUBLISHED_PIE.items())


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.4f}"


def _shown(text: object, limit: int = 200) -> str:
    """A dataset's id or an error, for a page or a list: one line (a newline, a NUL or a lone
    surrogate shown escaped, as repr() would) and at most `limit` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(text: object) -> str:
    """A dataset's text in a Markdown table cell or heading: one line (_shown), its backslashes and
    '|' escaped, so no value breaks the table."""
    return _shown(text).replace("\\", "\\\\").replace("|", "\\|")


def failed(records: list[dict]) -> list[dict]:
    """The samples that could not be scored (an error other than a target not found)."""
    return [r for r in records if r["error"] and not r["not_found"]]


def failed_line(r: dict) -> str:
    """One failed sample in one line: its file name, its id (JSON-quoted: as the dataset has it) and why."""
    return f"{r['name']} (id {_shown(json.dumps(r['id']))}): {_shown(r['error'], 500)}"


def write_report(out: Path, records: list[dict], summary: dict[str, Any], meta: dict[str, Any]) -> list[Path]:
    """Write every report file under `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, text: str) -> None:
        data = text.encode("utf-8", "backslashreplace")  # a lone surrogate from a dataset's JSON, escaped
        write_atomic(out / name, lambda f: f.write(data))
        written.append(out / name)

    put("samples.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    put("summary.json", json.dumps({"meta": meta, "summary": summary}, indent=2))
    put("summary.md", _markdown(summary, meta, records))
    plots = _plots(out, records)
    written += plots
    put("index.html", _html(records, summary, meta, [p.name for p in plots]))
    return written


def _table_rows(summary: dict) -> list[tuple[str, ...]]:
    """The main table's rows: (metric, value, samples); with --contain (summary["contained"]),
    (metric, as given, samples, contained, samples), and the share identical outside the mask."""
    both = summary.get("contained")
    if both is None:
        keys = (*METRICS, *OWN, *(k for k in PIE if summary.get(f"{k}_n")))
        return [(k, _fmt(summary.get(k)), str(summary.get(f"{k}_n", 0))) for k in keys]
    shown = (k for k in (*METRICS, *PIE) if summary.get(f"{k}_n") or both.get(f"{k}_n") or k == "psnr_outside")
    rows: list[tuple[str, ...]] = [
        (k, _value(summary, k), str(summary.get(f"{k}_n", 0)), _value(both, k), str(both.get(f"{k}_n", 0)))
        for k in shown
    ]
    rows.append(("identical outside the mask", _rate(summary), "", _rate(both), ""))
    return rows


def _rate(summary: dict) -> str:
    rate = summary.get("identical_outside_rate")
    return "–" if rate is None else f"{rate:.1%}"


def _value(summary: dict, key: str) -> str:
    """A mean in the side-by-side table; PSNR outside where every output was identical there: ∞."""
    if key == "psnr_outside" and summary.get(key) is None and summary.get("identical_outside_rate") == 1:
        return "∞ (identical)"
    return _fmt(summary.get(key))


def _kind_lines(summary: dict, title: str = "Per PIE-Bench edit type (editing_type_id):") -> list[str]:
    """PIE-Bench's per edit type table (psnr/mse/ssim outside its mask, CLIP whole and edited)."""
    kinds = summary.get("by_kind") or {}
    if not kinds:
        return []
    lines = [
        "",
        f"Published on PIE-Bench (its paper's units), for reference: {_published_pie()}",
        "",
        title,
        "",
        "| type | samples | " + " | ".join(PIE) + " |",
        "| --- | --- | " + " | ".join("---" for _ in PIE) + " |",
    ]
    for k, row in kinds.items():
        lines.append(f"| {_cell(k)} | {row['samples']} | " + " | ".join(_fmt(row.get(m)) for m in PIE) + " |")
    return lines


def _markdown(summary: dict, meta: dict, records: list[dict]) -> str:
    editor = _cell(meta.get("editor", "Lasso"))
    head = [editor] if "contained" not in summary else [f"{editor}, as given", "contained (lasso contain)"]
    lines = [
        f"# Lasso eval: {_shown(meta['data'], 2000)} ({meta['turns']}-turn, preset {meta['preset']})",
        "",
        "| metric | " + " | ".join(f"{h} | samples" for h in head) + " |",
        "| --- | " + " | ".join("--- | ---" for _ in head) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in _table_rows(summary)]
    lines += [
        "",
        f"Samples: {summary['samples']}; target not found: {summary['not_found_rate']:.1%}; "
        f"errors: {summary['errors']}; seconds per edit: {_fmt(summary['seconds_per_edit'])} "
        f"(median {_fmt(summary['seconds_per_edit_median'])}).",
        "",
        "Published, MagicBrush test set, single turn (for reference):",
        "",
    ]
    lines += [f"- {name}: " + ", ".join(f"{k} {v}" for k, v in vals.items()) for name, vals in PUBLISHED.items()]
    if summary.get("identical_outside_rate") is not None:
        lines += [
            "",
            f"Identical outside the dataset's mask: {summary['identical_outside_rate']:.1%} of the samples "
            "(their PSNR is infinite and left out of its mean).",
        ]
    lines += _kind_lines(summary)
    lines += _contained_lines(summary, records)
    bad = failed(records)
    if bad:
        lines += ["", f"{_failed_count(len(bad))} (each one's error is in samples.jsonl):", ""]
        lines += [f"- {failed_line(r)}" for r in bad]
    return "\n".join(lines) + "\n"


def _contained_lines(summary: dict, records: list[dict]) -> list[str]:
    """With --contain: what containing did, the outputs it could not contain and why, its per edit
    type table, and per sample the alignment found and the colour correction undone."""
    both = summary.get("contained")
    if both is None:
        return []
    lines = ["", CONTAINED_NOTE, "", _contained_counts(summary)]
    lines += _kind_lines(both, "Per PIE-Bench edit type (editing_type_id), contained:")[2:]  # the published line once
    refused = [r for r in records if (r.get("contained") or {}).get("error")]
    if refused:
        lines += ["", f"Not contained ({len(refused)}):", ""]
        lines += [
            f"- {r['name']} (id {_shown(json.dumps(r['id']))}): {_shown(r['contained']['error'], 500)}" for r in refused
        ]
    done = [r for r in records if (r.get("contained") or {}).get("alignment")]
    if done:
        lines += ["", "Per sample, as contained:", "", "| sample | " + " | ".join(ALIGN_HEAD) + " |"]
        lines += ["| --- | " + " | ".join("---" for _ in ALIGN_HEAD) + " |"]
        lines += [f"| {_cell(r['name'])} | " + " | ".join(_cell(v) for v in _alignment_cells(r)) + " |" for r in done]
    return lines


CONTAINED_NOTE = (
    "Contained: each output put back into its input by `lasso contain`: aligned on it (size, zoom, shift, "
    "rotation), its colour drift undone, and pasted only inside the dataset's mask (where it changed, without "
    "one); every pixel outside is the input's."
)
ALIGN_HEAD = (
    "scale",
    "shift (dx, dy)",
    "rotation (°)",
    "colour gain",
    "colour offset",
    "sizes",
    "region px",
    "PSNR outside, as given → contained",
)


def _contained_counts(summary: dict) -> str:
    both = summary["contained"]
    other = summary.get("other_size")
    return (
        f"Contained {both['samples'] - both['not_contained']} of {both['samples']} outputs "
        f"({both['not_contained']} not, each one's reason listed below); seconds to contain one: "
        f"{_fmt(both['seconds_per_edit'])}."
        + (
            f" {other} output{' was' if other == 1 else 's were'} of another size than {'its' if other == 1 else 'their'} "
            "input: as given, nothing is scored outside the mask (contained, all is)."
            if other
            else ""
        )
    )


def _alignment_cells(r: dict) -> list[str]:
    """One contained sample's alignment and colour correction (contain's report), and its PSNR outside."""
    c = r["contained"]
    a, colour = c["alignment"], c["colour"] or {}

    def psnr(rec: dict) -> str:
        if rec.get("psnr_outside") is not None:
            return f"{rec['psnr_outside']:.2f}"
        return "∞" if rec.get("changed_outside") == 0 else "–"

    return [
        f"{a['scale']:.4f}",
        ", ".join(f"{v:+.2f}" for v in a["shift"]),
        f"{a['rotation']:+.3f}",
        ", ".join(f"{g:.3f}" for g in colour.get("gain", [])),
        ", ".join(f"{o:+.1f}" for o in colour.get("offset", [])),
        "{}x{} → {}x{}".format(*a["edited_size"], *a["original_size"]),
        str(c["region_px"]),
        f"{psnr(r)} → {psnr(c)}",
    ]


def _failed_count(n: int) -> str:
    return f"{n} sample{'' if n == 1 else 's'} failed"


def _plots(out: Path, records: list[dict]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (out / "plots").mkdir(exist_ok=True)
    keys = [k for k in (*METRICS, *OWN) if any(r.get(k) is not None for r in records)]
    paths = []
    if keys:
        cols = 4
        rows = (len(keys) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), squeeze=False)
        for ax, k in zip(axes.flat, keys):
            values = [r[k] for r in records if r.get(k) is not None]
            spread = max(values) - min(values)  # float noise alone (1 - 2e-16 .. 1 + 2e-16) holds no 20 bins
            ax.hist(values, bins=20 if spread > 1e-9 * max(1.0, abs(max(values))) else 1, color="#2457d6")
            ax.set_title(k)
        for ax in list(axes.flat)[len(keys) :]:
            ax.axis("off")
        fig.tight_layout()
        write_atomic(out / "plots" / "metrics.png", lambda f: fig.savefig(f, format="png", dpi=90))
        plt.close(fig)
        paths.append(out / "plots" / "metrics.png")
    worst = _worst(records)
    if worst:
        fig, ax = plt.subplots(figsize=(8, 0.3 * len(worst) + 1))
        names = [r["name"] for r in worst][::-1]  # not ids: an id could hold mathtext ("$...$"), or be 1 MB long
        ax.barh(names, [r["l1"] for r in worst][::-1], color="#dc2626")
        ax.set_xlabel("L1 to the ground truth (lower is better)")
        fig.tight_layout()
        write_atomic(out / "plots" / "worst.png", lambda f: fig.savefig(f, format="png", dpi=90))
        plt.close(fig)
        paths.append(out / "plots" / "worst.png")
    return paths


def _worst(records: list[dict], n: int = 20) -> list[dict]:
    return sorted((r for r in records if r.get("l1") is not None), key=lambda r: -r["l1"])[:n]


def _html(records: list[dict], summary: dict, meta: dict, plot_names: list[str]) -> str:
    e = html.escape
    rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in _table_rows(summary))
    editor = e(meta.get("editor", "Lasso"))
    head = [editor] if "contained" not in summary else [f"{editor}, as given", "contained (lasso contain)"]
    pub = "".join(
        f"<li>{e(name)}: " + ", ".join(f"{k} {v}" for k, v in vals.items()) + "</li>"
        for name, vals in PUBLISHED.items()
    )
    by_kind = _html_by_kind(summary)
    worst = "".join(
        f"<li><a href='#s-{e(r['name'])}'>{e(_shown(r['id']))}</a>: L1 {_fmt(r['l1'])} · {e(' / '.join(r['instructions']))}</li>"
        for r in _worst(records)
    )
    sheet = [_html_sample(r) for r in records]
    failures = _html_failures(failed(records))

    def plot(name: str) -> str:
        return f"<img class='plot' src='plots/{name}' alt='{name}'>" if name in plot_names else ""

    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Lasso eval: {e(str(meta["data"]))}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #f6f7f9; }}
table {{ border-collapse: collapse; background: #fff; }} td, th {{ border: 1px solid #d8dce3; padding: .3rem .7rem; }}
.sample {{ background: #fff; border: 1px solid #d8dce3; border-radius: 10px; padding: .6rem .9rem; margin: .8rem 0; }}
.row {{ display: flex; gap: .6rem; flex-wrap: wrap; }} figure {{ margin: 0; }} figure img {{ height: 160px; border-radius: 4px; }}
figcaption {{ font-size: .8rem; color: #6b7280; }} .none {{ width: 160px; height: 160px; background: #eee; }}
.bad {{ color: #b91c1c; }} .instr {{ font-weight: 600; margin: .2rem 0; }} .scores {{ font-size: .85rem; color: #374151; }}
.plot {{ max-width: 100%; background: #fff; margin: .5rem 0; }}
</style></head><body>
<h1>Lasso eval</h1>
<p>{e(str(meta["data"]))} · {e(meta["turns"])}-turn · preset {e(meta["preset"])} · seed {meta["seed"]} ·
{summary["samples"]} samples · target not found {summary["not_found_rate"]:.1%} · errors {summary["errors"]} ·
{_fmt(summary["seconds_per_edit"])} s per edit</p>
<table><tr><th>metric</th>{"".join(f"<th>{h}</th><th>samples</th>" for h in head)}</tr>{rows}</table>
{_html_contained(summary, records)}
<p>Published on MagicBrush's test set, single turn, for reference:</p><ul>{pub}</ul>
{failures}
{by_kind}
<h2>Distributions</h2>{plot("metrics.png")}
<h2>Worst 20 by L1</h2>{plot("worst.png")}<ol>{worst}</ol>
<h2>Every sample</h2>{"".join(sheet)}
</body></html>
"""


def _html_contained(summary: dict, records: list[dict]) -> str:
    """With --contain: what containing did, and the outputs it could not contain, each linked to its section."""
    if "contained" not in summary:
        return ""
    e = html.escape
    refused = [r for r in records if (r.get("contained") or {}).get("error")]
    items = "".join(
        f"<li><a href='#s-{e(r['name'])}'>{e(_shown(r['id']))}</a>: {e(_shown(r['contained']['error'], 500))}</li>"
        for r in refused
    )
    return (
        f"<p>{e(CONTAINED_NOTE)} {e(_contained_counts(summary))}</p>"
        + (f"<h2 class='bad'>Not contained ({len(refused)})</h2><ul>{items}</ul>" if refused else "")
        + _html_by_kind(summary["contained"], "Per PIE-Bench edit type, contained")
    )


def _html_by_kind(summary: dict, title: str = "Per PIE-Bench edit type") -> str:
    """The page's per PIE-Bench edit type table with its note on the metrics; empty without kinds."""
    e = html.escape
    kinds = summary.get("by_kind") or {}
    if not kinds:
        return ""
    return (
        f"<h2>{e(title)}</h2><table><tr><th>type</th><th>samples</th>"
        + "".join(f"<th>{m}</th>" for m in PIE)
        + "</tr>"
        + "".join(
            f"<tr><td>{e(k)}</td><td>{row['samples']}</td>"
            + "".join(f"<td>{_fmt(row.get(m))}</td>" for m in PIE)
            + "</tr>"
            for k, row in kinds.items()
        )
        + "</table><p>PSNR, LPIPS, MSE and SSIM outside PIE-Bench's mask, computed as its evaluation code does; "
        "CLIP (100 x cosine, whole and edited region) against its editing prompt, with the CLIP this run used. "
        f"Published on PIE-Bench (its paper's units): {e(_published_pie())}.</p>"
    )


def _html_sample(r: dict) -> str:
    """One sample's section of the contact sheet: its pictures (source | mask | output | ground
    truth), instruction, scores, and its error or 'target not found'."""
    e = html.escape
    pics = r.get("pictures", {})
    cells = "".join(
        f"<figure><img src='images/{e(pics[k])}' alt='{k}'><figcaption>{label}</figcaption></figure>"
        if k in pics
        else f"<figure class='none'><figcaption>{label}: none</figcaption></figure>"
        for k, label in (
            ("source", "source"),
            ("mask", "Lasso's mask"),
            ("output", "output"),
            ("target", "ground truth"),
            *((("contained", "contained"),) if "contained" in r else ()),
        )
    )
    scores = " · ".join(f"{k} {_fmt(r.get(k))}" for k in (*METRICS, *OWN, *PIE) if r.get(k) is not None)
    flag = " <b class='bad'>target not found</b>" if r["not_found"] else ""
    err = f"<p class='bad'>{e(_shown(r['error'], 2000))}</p>" if r["error"] and not r["not_found"] else ""
    return (
        f"<section class='sample' id='s-{e(r['name'])}'><h3>{e(_shown(r['id']))}{flag}</h3>"
        f"<p class='instr'>{e(_shown(' → '.join(r['instructions']), 2000))}</p><div class='row'>{cells}</div>"
        f"<p class='scores'>{'as given: ' if r.get('contained') else ''}{e(scores)}</p>{err}"
        f"{_html_sample_contained(r)}</section>"
    )


def _html_sample_contained(r: dict) -> str:
    """One sample's contained scores, the alignment found and the colour correction; or why it was not contained."""
    e = html.escape
    c = r.get("contained")
    if not c:
        return ""
    if c["error"]:
        return f"<p class='bad'>not contained: {e(_shown(c['error'], 2000))}</p>"
    scores = " · ".join(f"{k} {_fmt(c.get(k))}" for k in (*METRICS, *PIE) if c.get(k) is not None)
    said = "; ".join(f"{h} {v}" for h, v in zip(ALIGN_HEAD, _alignment_cells(r)))
    return (
        f"<p class='scores'>contained: {e(scores or 'identical outside the mask')}</p><p class='scores'>{e(said)}</p>"
    )


def _html_failures(bad: list[dict]) -> str:
    """The page's list of failed samples, each linked to its section; empty when none failed."""
    e = html.escape
    if not bad:
        return ""
    return (
        f"<h2 class='bad'>{_failed_count(len(bad))}</h2><ul>"
        + "".join(
            f"<li><a href='#s-{e(r['name'])}'>{e(_shown(r['id']))}</a>: {e(_shown(r['error'], 500))}</li>" for r in bad
        )
        + "</ul>"
    )
