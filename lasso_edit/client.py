"""`lasso edit --server URL`: the same command, with a running `lasso serve` doing the work, so a
team can share one GPU box. The inputs and outputs are checked here first, as for a local edit;
the server's answer (`POST /v1/edit`, JSON) is written like a local result; its errors come back
as Lasso's own, with the same exit codes."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.errors import InvalidInputError, LassoError, ModelUnavailableError

if TYPE_CHECKING:
    from .imaging import LoadedImage
    from .pipeline.inputs import CheckedInputs
    from .pipeline.result import EditResult


class ServerError(LassoError):
    """The server said no; `exit_code` is the one a local run would have ended with."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def remote_edit(
    server: str,
    api_key: str | None,
    image: Path,
    instruction: str,
    checked: CheckedInputs,
    output: Path | None,
    mask_out: Path | None,
    plan_out: Path | None,
    png_compress: int,
    dry_run: bool,
    quiet: bool,
    skip_unknown: bool = False,
    credentials: Any = None,  # core/config.py's Credentials for the file written here (False: none)
) -> None:
    import typer

    try:
        import httpx
    except ImportError:
        raise InvalidInputError("--server needs httpx: pip install 'lasso-edit[serve]' httpx") from None
    url = server.rstrip("/") + ("/v1/plan" if dry_run else "/v1/edit")
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    fields = {"instruction": instruction}
    if skip_unknown:  # the server leaves out what Lasso cannot do, as `--skip-unknown` asks
        fields["skip_unknown"] = "true"
    if not dry_run:
        fields.update(
            {
                k: str(v)
                for k, v in (("seed", checked.seed), ("steps", checked.steps), ("guidance", checked.guidance))
                if v is not None
            }
        )
    try:
        with open(image, "rb") as f:
            r = httpx.post(url, files={"image": (image.name, f)}, data=fields, headers=headers, timeout=None)
    except httpx.HTTPError as e:
        raise ModelUnavailableError(f"cannot reach the Lasso server at {server} ({e})") from None
    if r.status_code != 200:
        try:
            body = r.json()
        except ValueError:
            body = {}
        detail = body.get("detail") or f"HTTP {r.status_code}"
        code = body.get("exit_code") or (2 if r.status_code < 500 else 3)
        retry = r.headers.get("retry-after")
        raise ServerError(
            f"the server answered {r.status_code}: {detail}" + (f" (retry in {retry} s)" if retry else ""), int(code)
        )
    d = r.json()
    # 3. Write through the same code as a local edit: JPEG to JPEG re-encodes only the touched blocks,
    # 16 bits stay 16 bits, the mask and the plan record are the same files.
    from .pipeline.outputs import report_lines, summary_record, write_and_prove

    result = _result(d, checked.loaded, dry_run)
    record = summary_record({k: v for k, v in d.items() if k not in _PIXELS})
    from .core.plan import Notice

    said = d.get("warning_details") or d.get("warnings", [])  # the details carry each one's code
    warnings = [Notice.from_dict(w) for w in said] + write_and_prove(
        result, output, mask_out, plan_out, png_compress, dry_run, record=record, credentials=credentials
    )
    if result.preservation is not None:  # the proof of the file written here, not of the server's PNG
        d["preservation"] = result.preservation
    for w in dict.fromkeys(warnings):
        typer.echo(f"{Notice.of(w).label}: {w}", err=True)
    if quiet:
        typer.echo(d.get("seed", ""))
    else:
        typer.echo("\n".join(report_lines(d, output if not dry_run else None, dry_run, by=server)))


_PIXELS = ("image", "mask", "masks", "candidates", "candidate_scores", "chosen", "heatmaps")


def _result(d: dict[str, Any], loaded: LoadedImage, dry_run: bool) -> EditResult:
    """The server's answer as an EditResult over the local input: the edited image (16-bit PNG for
    16-bit inputs, read back at 16 bits), the compositing mask, the plan."""
    import numpy as np
    from PIL import Image

    from .core.plan import EditPlan
    from .imaging import deep
    from .pipeline.result import EditResult

    alpha = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["mask"]))).convert("L"), dtype=np.float32) / 255.0
    if alpha.shape != loaded.rgb.shape[:2]:
        raise ServerError(
            f"the server answered a mask of {alpha.shape[1]}x{alpha.shape[0]} for a "
            f"{loaded.size[0]}x{loaded.size[1]} image",
            3,
        )
    image = rgb = samples = None
    if not dry_run:
        data = base64.b64decode(d["image"])
        image = Image.open(io.BytesIO(data))
        image.load()
        rgb = np.asarray(image.convert("RGB"))
        if loaded.deep is not None:  # a 16-bit input: the server's PNG holds all 16 bits
            samples = deep.read_bytes(data)
    plan = EditPlan.from_dict(d.get("plan", {}))
    return EditResult(
        image=image,
        rgb=rgb,
        mask=alpha > 0,
        alpha=alpha,
        plan=plan,
        steps=[],
        seed=d.get("seed", 0),
        timings=d.get("timings", {}),
        models=d.get("models", {}),
        warnings=list(d.get("warnings", [])),
        deep=samples,
        source=loaded,
    )
