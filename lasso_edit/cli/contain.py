"""`lasso contain ORIGINAL EDITED -o OUT [--mask MASK]`: another editor's output put back into the
original, so that nothing outside the edited region changes (pipeline/contain.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from .common import _guard, _warn
from .core import app
from .options import CredentialOptions, group, with_groups
from .verify import CHANGED_OUTSIDE


@app.command()
@with_groups
def contain(
    original: Path = typer.Argument(..., help="The image before the edit."),
    edited: Path = typer.Argument(
        ..., help="Another editor's output: any size, zoomed, shifted or recoloured a little."
    ),
    output: Path = typer.Option(
        ..., "-o", "--output", help="Where to write ORIGINAL with only the edit's region changed."
    ),
    mask: Optional[Path] = typer.Option(
        None, "--mask", help="Where the edit was allowed: 0 kept, above 0 may change. Without it, what changed."
    ),
    mask_out: Optional[Path] = typer.Option(
        None, "--mask-out", help="Write the compositing mask as PNG (0 = untouched)."
    ),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON on stdout."),
    signing: CredentialOptions = group(CredentialOptions, "Options"),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks."),
) -> None:
    """Keep another editor's change inside its region: align its output on ORIGINAL (size, zoom, shift,
    rotation), undo its colour drift, and paste it back through the region only; every pixel outside
    stays bit-identical to ORIGINAL (proved on the file written). Exit 0, 2 on bad input (EDITED is
    not an edit of ORIGINAL), 6 if the proof finds a change outside."""
    with _guard(debug):
        from ..imaging import check_outputs, load_image, output_mode
        from ..pipeline.contain import contain as put_back
        from ..pipeline.outputs import write_and_prove

        check_outputs(output, mask_out, None, original, edited, mask)  # before any work: never an input
        credentials = signing.credentials()  # who signs (EDITED credited as a component), checked now
        before = load_image(original)
        check_outputs(output, mask_out, None, original, edited, mask, mode=output_mode(before), size=before.size)
        result, report = put_back(before, edited, mask)
        warnings = list(result.warnings) + write_and_prove(result, output, mask_out=mask_out, credentials=credentials)
        report = {**report, "warnings": list(dict.fromkeys(warnings)), **(result.preservation or {})}
        report = {"original": str(original), "edited": str(edited), "output": str(output), **report}
        _warn(warnings)
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        else:
            for line in report_lines(report):
                typer.echo(line)
        raise typer.Exit(0 if report.get("identical_outside", True) else CHANGED_OUTSIDE)


def report_lines(report: dict[str, Any]) -> list[str]:
    """What `lasso contain` prints: the alignment, the colour undone, the region, where it went, the proof."""
    from ..imaging.verify import line_of

    a, c = report["alignment"], report["colour"]
    (ew, eh), (ow, oh) = a["edited_size"], a["original_size"]
    sx, sy = a["scale_xy"]
    dx, dy = a["shift"]
    lines = [
        f"aligned EDITED ({ew}x{eh}) on ORIGINAL ({ow}x{oh}): scale {a['scale']:.4f} (x {sx:.4f}, y {sy:.4f}), "
        f"shift {dx:+.2f}, {dy:+.2f} px, rotation {a['rotation']:+.3f} deg; "
        f"residual {a['residual']:.1f} levels outside the region",
        "colour undone: gain "
        + " ".join(f"{g:.3f}" for g in c["gain"])
        + ", offset "
        + " ".join(f"{b:+.1f}" for b in c["offset"])
        + " (R G B)",
        f"region: {report['region_px']:,} px ({'the mask given' if report['region_from'] == 'mask' else 'what changed'})",
        f"wrote {report['output']}",
    ]
    if "identical_outside" in report:
        lines.append(line_of(report))
    return lines
