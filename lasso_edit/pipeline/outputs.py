"""The one way an edit's files are written: `write_and_prove`, for `lasso edit`, `lasso batch`, the
client, the server's answers, sessions, MCP and `EditResult.save`. The image in the format its
suffix names (JPEG to JPEG re-encodes only the touched blocks), the mask and the run record, all
through one OutputBatch, so either every file is there or none changed; the image as written is
read back and proved against the input (imaging/verify.py), and the proof goes in
`result.preservation`. What every written file must carry is added here, once: the proof, and the
Content Credentials (a C2PA manifest of the edits and their regions, pipeline/credentials.py),
signed into the bytes just encoded, in memory, so the file is written once and the proof reads
the signed file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.config import Credentials
from ..imaging import jpeg_blocks, save_image
from ..imaging.arrays import mask_to_image
from .credentials import SigningBatch, chosen

if TYPE_CHECKING:
    from ..imaging.credentials import SigningIdentity
    from .result import EditResult


def run_record(result: EditResult) -> dict[str, Any]:
    """The plan and the run (seed, timings, models, warnings) as `--plan-out` writes it."""
    return summary_record(result.summary())


def summary_record(summary: dict[str, Any]) -> dict[str, Any]:
    """A run's summary (EditResult.summary(), or a server's answer without its pixels) as the
    `--plan-out` record: the plan's fields, then the run's."""
    return {**summary.get("plan", {}), **{k: v for k, v in summary.items() if k != "plan"}}


def write_and_prove(
    result: EditResult,
    output: Path | None,
    mask_out: Path | None = None,
    plan_out: Path | None = None,
    png_compress: int = 1,
    dry_run: bool = False,
    record: dict[str, Any] | None = None,
    allowed: np.ndarray | None = None,
    credentials: Credentials | bool | None = None,
) -> list[str]:
    """Write the edited image to `output`, the compositing mask to `mask_out` and the run record to
    `plan_out` (each optional), atomically together, and prove the image as written: what changed
    in it against the input, outside the pixels allowed to change and inside them, goes in
    `result.preservation` (and in the record). `allowed` (bool HxW): those pixels when they are
    not the result's own mask (a client's mask, as it sent it). `record`: the run record to write
    instead of the result's own (a server's, for `lasso edit --server`). Returns the warnings of
    the writing (a lossy format, a mode the format cannot hold, a file that cannot be read back).
    `credentials`: who signs the image's Content Credentials (core/config.py's Credentials; None
    or True: the server's settings where a Service set them, else LASSO_SIGN_CERT/LASSO_SIGN_KEY or
    the local identity; False: none)."""
    loaded = result.source
    warnings: list[str] = []
    alpha = result.alpha
    blocks = None  # JPEG to JPEG: the blocks coded again (bool HxW), which may differ too
    creds = chosen(credentials)
    who = _signer(creds, output, warnings) if output is not None and not dry_run and result.image is not None else None
    with SigningBatch(output if who is not None else None) as batch:
        if output is not None and not dry_run and result.rgb is not None and jpeg_blocks.applies(loaded, output):
            # JPEG to JPEG: only the touched blocks are re-encoded; the mask shows them all.
            blocks = jpeg_blocks.write(
                loaded, result.rgb, result.mask, lambda data: batch.write(output, lambda f: f.write(data))
            )
        elif output is not None and not dry_run and result.image is not None:
            warnings += save_image(
                result.image, output, like=loaded, png_compress=png_compress, batch=batch, deep_samples=result.deep
            )
        may_change = alpha > 0  # where the output may differ from the input: signed, then proved
        if blocks is not None:
            may_change |= blocks
        if who is not None and output is not None:
            from .credentials import signer_for

            region = may_change if allowed is None else may_change | allowed
            sealed = batch.seal(signer_for(result, output, region, who, creds.timestamp_url))
            warnings += sealed
            result.credentials = {"signer": _name(who), "local": who.local, "signed": not _unsigned(sealed)}
        written = batch.pending(output) if output is not None and not dry_run else None
        if written is not None and loaded is not None:  # the proof: the file as written, against the input
            from ..core.errors import LassoError
            from ..imaging.verify import prove

            try:
                result.preservation = prove(loaded, written, may_change if allowed is None else allowed).to_dict()
            except LassoError as e:  # a format Lasso writes but cannot read back: say so, keep the edit
                warnings.append(f"the output could not be read back to verify it: {e}")
            if record is not None and result.preservation is not None:
                record = {**record, "preservation": result.preservation}
        if mask_out is not None:  # the weight, at least 1 in the blocks coded again: every pixel that may differ
            shown = alpha if blocks is None else _at_least(alpha, blocks, np.float32(1.0) / 255.0)
            save_image(mask_to_image(shown), mask_out, png_compress=png_compress, batch=batch)
        if plan_out is not None:
            text = json.dumps(record if record is not None else run_record(result), indent=2).encode()
            batch.write(plan_out, lambda f: f.write(text))
    return warnings


def _at_least(alpha: np.ndarray, where: np.ndarray, floor: np.float32) -> np.ndarray:
    """`alpha` (float32 HxW, not changed) raised to `floor` where `where` (bool HxW) is True, as
    np.maximum(alpha, where * floor), working in `where`'s bounding box only."""
    from ..imaging.arrays import mask_bbox

    box = mask_bbox(where)
    if box is None:
        return alpha
    x0, y0, x1, y1 = box
    out = alpha.copy()
    part = out[y0:y1, x0:x1]
    np.maximum(part, where[y0:y1, x0:x1] * floor, out=part)
    return out


def _signer(creds: Credentials, output: Path, warnings: list[str]) -> SigningIdentity | None:
    """Who signs `output`: None when credentials are off, or when its format cannot carry them
    (a warning naming the format: never a silent gap)."""
    from .credentials import identity, signable

    if not creds.enabled:
        return None
    fmt = signable(output)
    if fmt is not None:
        warnings.append(
            f"{fmt} files cannot carry Content Credentials (C2PA signs PNG, JPEG, WebP and TIFF): "
            f"{output.name} was written without them"
        )
        return None
    return identity(creds)


def _name(who: SigningIdentity) -> str:
    from cryptography import x509

    leaf = x509.load_pem_x509_certificates(who.chain)[0]
    return leaf.subject.rfc4514_string()


def _unsigned(warnings: list[str]) -> bool:
    return any(w.startswith("Content Credentials could not be added") for w in warnings)


def report_lines(summary: dict[str, Any], output: Path | None, dry_run: bool, by: str | None = None) -> list[str]:
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
        from ..imaging.verify import line_of

        lines.append(line_of(summary["preservation"]))
    return lines
