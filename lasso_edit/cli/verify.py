"""`lasso verify BEFORE AFTER [--mask MASK]`: what changed outside the mask, for any editor's output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from .common import _guard
from .core import app
from .options import DEBUG_OPT

if TYPE_CHECKING:
    from ..imaging.verify import Verification

CHANGED_OUTSIDE = 6  # the exit code when something outside the mask changed: scripts and CI gate on it


@app.command()
def verify(
    before: Path = typer.Argument(..., help="The image before the edit."),
    after: Path = typer.Argument(..., help="The image after it, from Lasso or any other editor."),
    mask: Optional[Path] = typer.Option(
        None, "--mask", help="Where the edit was allowed: 0 kept, above 0 may change (Lasso's --mask-out)."
    ),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON on stdout."),
    diff: Optional[Path] = typer.Option(
        None, "--diff", help="Write where it changed: PNG, changes outside the mask in magenta, inside in yellow."
    ),
    debug: bool = DEBUG_OPT,
) -> None:
    """Check that nothing changed outside the mask: exact counts, PSNR, SSIM and MSE outside, containment.
    Exit 0 when nothing outside changed, 6 when something did, 2 on bad input."""
    with _guard(debug):
        from ..imaging import check_mask_path, load_image, write_atomic
        from ..imaging.verify import allowed, diff_picture
        from ..imaging.verify import verify as compare

        if diff is not None:
            check_mask_path(diff, before, after, mask)  # lossless, not an input
        a, b = load_image(before), load_image(after)
        m = allowed(load_image(mask)) if mask is not None else None  # at the mask's own depth
        v = compare(a, b, m)
        if diff is not None:
            import io

            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(diff_picture(a, b, m)).save(buf, format="PNG")
            write_atomic(diff, lambda f: f.write(buf.getvalue()))
        if as_json:
            typer.echo(
                json.dumps(
                    {"before": str(before), "after": str(after), "mask": str(mask) if mask else None, **v.to_dict()},
                    indent=2,
                )
            )
        else:
            for line in _report(v):
                typer.echo(line)
        raise typer.Exit(0 if v.identical_outside else CHANGED_OUTSIDE)


def _report(v: Verification) -> list[str]:
    psnr = "inf" if v.psnr_outside is None else f"{v.psnr_outside:.2f} dB"
    ssim = "-" if v.ssim_outside is None else f"{v.ssim_outside:.4f}"
    lines = [
        f"{v.width}x{v.height}, {v.bits}-bit samples compared"
        + ("; a JPEG, compared decoded" if v.decoded_jpeg else ""),
        v.line(),
    ]
    if v.inside_pixels:
        lines.append(f"inside the mask: {v.changed_inside:,} of {v.inside_pixels:,} pixels changed")
    if v.containment is not None:
        lines.append(f"containment: {v.containment:.2%} of the changed pixels are inside the mask")
    lines.append(f"outside the mask: PSNR {psnr}, SSIM {ssim}, MSE {v.mse_outside:.3g}")
    return lines
