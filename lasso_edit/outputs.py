"""Writing an edit's files, the same for `lasso edit`, `lasso batch` and the client: the image in the
format its suffix names (JPEG to JPEG re-encodes only the touched blocks), the mask and the run
record, all through one OutputBatch, so either every file is there or none changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import jpeg_blocks
from .arrays import mask_to_image
from .imaging import OutputBatch, save_image
from .plan import EditResult


def run_record(result: EditResult) -> dict:
    """The plan and the run (seed, timings, models, warnings) as `--plan-out` writes it."""
    return summary_record(result.summary())


def summary_record(summary: dict) -> dict:
    """A run's summary (EditResult.summary(), or a server's answer without its pixels) as the
    `--plan-out` record: the plan's fields, then the run's."""
    return {**summary.get("plan", {}), **{k: v for k, v in summary.items() if k != "plan"}}


def write_result(
    result: EditResult,
    output: Path | None,
    mask_out: Path | None = None,
    plan_out: Path | None = None,
    png_compress: int = 1,
    dry_run: bool = False,
    record: dict | None = None,
) -> list[str]:
    """Write the edited image to `output`, the compositing mask to `mask_out` and the run record to
    `plan_out` (each optional), atomically together. `record`: the run record to write instead of
    the result's own (a server's, for `lasso edit --server`). Returns the warnings of the writing (a
    lossy format, a mode the format cannot hold)."""
    loaded = result.source
    warnings: list[str] = []
    alpha = result.alpha
    with OutputBatch() as batch:
        if output is not None and not dry_run and result.rgb is not None and jpeg_blocks.applies(loaded, output):
            # JPEG to JPEG: only the touched blocks are re-encoded; the mask shows them all.
            blocks = jpeg_blocks.write(
                loaded, result.rgb, result.mask, lambda data: batch.write(output, lambda f: f.write(data))
            )
            alpha = np.maximum(alpha, blocks.astype(np.float32) / 255.0)
        elif output is not None and not dry_run and result.image is not None:
            warnings += save_image(
                result.image, output, like=loaded, png_compress=png_compress, batch=batch, deep_samples=result.deep
            )
        written = batch.pending(output) if output is not None and not dry_run else None
        if written is not None and loaded is not None:  # the proof: the file as written, against the input
            from .errors import LassoError
            from .verify import prove

            try:
                result.preservation = prove(loaded, written, alpha).to_dict()
            except LassoError as e:  # a format Lasso writes but cannot read back: say so, keep the edit
                warnings.append(f"the output could not be read back to verify it: {e}")
            if record is not None and result.preservation is not None:
                record = {**record, "preservation": result.preservation}
        if mask_out is not None:
            save_image(mask_to_image(alpha), mask_out, png_compress=png_compress, batch=batch)
        if plan_out is not None:
            text = json.dumps(record if record is not None else run_record(result), indent=2).encode()
            batch.write(plan_out, lambda f: f.write(text))
    return warnings


def report_lines(summary: dict, output: Path | None, dry_run: bool, by: str | None = None) -> list[str]:
    """What `lasso edit` prints, from the run's summary (EditResult.summary(), or a server's answer,
    which is the same record): a line per edit, the plan's source, seed and timings, where it went."""
    lines = []
    for i, step in enumerate(summary.get("steps", []), 1):
        where = f" via {step['found_by']}" if step.get("found_by") else ""
        lines.append(f"{i}. {step['edit']}{where}: {step['pixels']} px")
    t = summary.get("timings", {})
    times = ", ".join(f"{k} {t[k]:.2f}s" for k in ("load", "parse", "ground", "segment", "edit", "total") if k in t)
    source = summary.get("plan", {}).get("source", "")
    if any(w.get("code") == "random_weights" for w in summary.get("warning_details", [])):
        source = source.replace(" (fallback)", "")  # a random VLM's answer is noise by design: no fault to say
    lines.append(f"plan from {source}; seed {summary.get('seed')}; {times}" + (f"; edited by {by}" if by else ""))
    if dry_run:
        lines.append("dry run: nothing painted")
    elif output is not None:
        lines.append(f"wrote {output}")
    if summary.get("preservation"):
        from .verify import line_of

        lines.append(line_of(summary["preservation"]))
    return lines
