"""`lasso verify BEFORE AFTER [--mask MASK]`: what changed outside the mask, for any editor's output,
and, when something did, what kind of change it is (imaging/drift.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .common import _guard
from .core import app
from .options import DEBUG_OPT

if TYPE_CHECKING:
    import numpy as np

    from ..imaging import LoadedImage
    from ..imaging.drift import Diagnosis
    from ..imaging.verify import Verification

CHANGED_OUTSIDE = 6  # the exit code when something outside the mask changed: scripts and CI gate on it
_UNCOMPARED = (
    "changed_outside",
    "changed_inside",
    "bbox_outside",
    "mse_outside",
    "psnr_outside",
    "ssim_outside",
    "containment",
)  # null in --json when the sizes differ: no pixel-for-pixel comparison


@app.command()
def verify(
    before: Path = typer.Argument(..., help="The image before the edit."),
    after: Path = typer.Argument(..., help="The image after it, from Lasso or any other editor."),
    mask: Optional[Path] = typer.Option(
        None, "--mask", help="Where the edit was allowed: 0 kept, above 0 may change (Lasso's --mask-out)."
    ),
    as_json: bool = typer.Option(False, "--json", help="The report as JSON on stdout."),
    trust: list[Path] = typer.Option(
        [], "--trust", help="A CA certificate (PEM) whose Content Credentials read as Trusted; repeatable."
    ),
    diff: Optional[Path] = typer.Option(
        None, "--diff", help="Write where it changed: PNG, changes outside the mask in magenta, inside in yellow."
    ),
    debug: bool = DEBUG_OPT,
) -> None:
    """Check that nothing changed outside the mask: exact counts, PSNR, SSIM and MSE outside, containment.
    When something did, or AFTER has another size, one more line (--json: `drift`) says what kind of
    change it is: a whole-picture shift or zoom (scale, shift, rotation, both sizes), a colour drift
    (gain and offset per channel), re-encoding noise, or content (its box). AFTER at another size
    cannot be compared pixel for pixel: --json then has "comparable": false and null counts, and
    identical_outside false. Exit 0 when nothing outside changed, 6 when something did or the sizes
    differ, 2 on bad input (unreadable, a mask of another size). AFTER's Content Credentials (a C2PA
    manifest, Lasso's or any signer's) are read too (--json: `credentials`): their state (Valid,
    Trusted under a --trust CA, or Invalid: a file changed after signing is), the signer, each
    action with its regions, and whether every changed pixel lies inside a signed region."""
    with _guard(debug):
        from ..imaging import check_mask_path, load_image
        from ..imaging.verify import allowed
        from ..imaging.verify import verify as compare

        if diff is not None:
            check_mask_path(diff, before, after, mask)  # lossless, not an input
        a, b = load_image(before), load_image(after)
        m = allowed(load_image(mask)) if mask is not None else None  # at the mask's own depth
        names = {"before": str(before), "after": str(after), "mask": str(mask) if mask else None}
        creds = _credentials(a, b, after, trust)
        if a.size != b.size:
            from ..imaging.drift import diagnose

            found = diagnose(a, b, m)
            if diff is not None:
                typer.echo(
                    f"no --diff written: AFTER is {b.size[0]}x{b.size[1]}, BEFORE {a.size[0]}x{a.size[1]}", err=True
                )
            report = {**names, **_uncompared(a, b, m), "drift": found.to_dict(), "credentials": creds}
            _say(as_json, report, _with_credentials(_sizes_report(a, b, found), creds))
            raise typer.Exit(CHANGED_OUTSIDE)
        v = compare(a, b, m)
        d = None if v.identical_outside else _diagnose(a, b, m, v)
        if diff is not None:
            _write_diff(diff, a, b, m)
        report = {**names, "comparable": True, **v.to_dict(), "drift": d.to_dict() if d else None, "credentials": creds}
        _say(as_json, report, _with_credentials(_report(v, d), creds, d is not None))
        raise typer.Exit(0 if v.identical_outside else CHANGED_OUTSIDE)


def _credentials(a: LoadedImage, b: LoadedImage, after: Path, trust: list[Path]) -> dict[str, Any]:
    """AFTER's Content Credentials (imaging/verify.py's credentials_report), its --trust CAs read."""
    from ..core.errors import InvalidInputError
    from ..imaging.verify import credentials_report

    anchors = []
    for path in trust:
        try:
            anchors.append(path.expanduser().read_bytes())
        except OSError as e:
            raise InvalidInputError(f"cannot read the --trust certificate {str(path)!r}: {e.strerror or e}") from None
    return credentials_report(a, b, after.read_bytes(), anchors)


def _with_credentials(lines: list[str], creds: dict[str, Any], drift: bool = True) -> list[str]:
    """The report's lines with the credentials line, before the drift line (which stays last)."""
    at = len(lines) - 1 if drift else len(lines)
    return [*lines[:at], _credentials_line(creds), *lines[at:]]


def _credentials_line(c: dict[str, Any]) -> str:
    if not c.get("present"):
        return "Content Credentials: none"
    line = f"Content Credentials: {c['state']}, signed by {c.get('signer') or 'an unnamed signer'}"
    line += f"; {len(c['actions'])} actions"
    inside = c.get("changes_inside_regions")
    if inside is not None:
        line += "; every change inside the signed regions" if inside else "; changes OUTSIDE the signed regions"
    return line


def _diagnose(a: LoadedImage, b: LoadedImage, m: np.ndarray | None, v: Verification) -> Diagnosis:
    """The drift, imported only when something changed: a clean pair's verify loads no more."""
    from ..imaging.drift import diagnose

    return diagnose(a, b, m, verification=v)


def _say(as_json: bool, report: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for line in lines:
            typer.echo(line)


def _write_diff(path: Path, a: LoadedImage, b: LoadedImage, m: np.ndarray | None) -> None:
    import io

    from PIL import Image

    from ..imaging import write_atomic
    from ..imaging.verify import diff_picture

    buf = io.BytesIO()
    Image.fromarray(diff_picture(a, b, m)).save(buf, format="PNG")
    write_atomic(path, lambda f: f.write(buf.getvalue()))


def _uncompared(a: LoadedImage, b: LoadedImage, m: np.ndarray | None) -> dict[str, Any]:
    """--json's counts for a pair of different sizes: BEFORE's size, AFTER's, and no counts."""
    (w, h), (we, he) = a.size, b.size
    outside = w * h - (int((m > 0).sum()) if m is not None else 0)
    return {
        "comparable": False,
        "width": w,
        "height": h,
        "after_width": we,
        "after_height": he,
        "outside_pixels": outside,
        "inside_pixels": w * h - outside,
        **dict.fromkeys(_UNCOMPARED),
        "identical_outside": False,
    }


def _sizes_report(a: LoadedImage, b: LoadedImage, d: Diagnosis) -> list[str]:
    (w, h), (we, he) = a.size, b.size
    return [
        f"BEFORE is {w}x{h}, AFTER {we}x{he}: the pixels cannot be compared one for one, "
        "so the picture as a whole was not kept",
        d.line(),
    ]


def _report(v: Verification, d: Diagnosis | None = None) -> list[str]:
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
    if d is not None:
        lines.append(d.line())
    return lines
