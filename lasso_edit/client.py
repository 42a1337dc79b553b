"""`lasso edit --server URL`: the same command, with a running `lasso serve` doing the work, so a
team can share one GPU box. The inputs and outputs are checked here first, as for a local edit;
the server's answer (`POST /v1/edit`, JSON) is written like a local result; its errors come back
as Lasso's own, with the same exit codes."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from .errors import InvalidInputError, LassoError, ModelUnavailableError


class ServerError(LassoError):
    """The server said no; `exit_code` is the one a local run would have ended with."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def remote_edit(server: str, api_key: str | None, image: Path, instruction: str, checked, output: Path | None,
                mask_out: Path | None, plan_out: Path | None, png_compress: int, dry_run: bool, quiet: bool) -> None:
    import typer
    from PIL import Image

    from .imaging import OutputBatch, save_image

    try:
        import httpx
    except ImportError:
        raise InvalidInputError("--server needs httpx: pip install 'lasso-edit[serve]' httpx") from None
    url = server.rstrip("/") + ("/v1/plan" if dry_run else "/v1/edit")
    headers = {"Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    fields = {"instruction": instruction}
    if not dry_run:
        fields.update({k: str(v) for k, v in (("seed", checked.seed), ("steps", checked.steps),
                                              ("guidance", checked.guidance)) if v is not None})
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
        raise ServerError(f"the server answered {r.status_code}: {detail}" + (f" (retry in {retry} s)" if retry else ""),
                          int(code))
    d = r.json()
    warnings = list(d.get("warnings", []))
    with OutputBatch() as batch:
        if output is not None and not dry_run:
            edited = Image.open(io.BytesIO(base64.b64decode(d["image"])))
            warnings += save_image(edited, output, like=checked.loaded, png_compress=png_compress, batch=batch)
        mask = d.get("mask") or (d.get("masks") or [None])[0]
        if mask_out is not None and mask:
            save_image(Image.open(io.BytesIO(base64.b64decode(mask))), mask_out, png_compress=png_compress, batch=batch)
        if plan_out is not None:
            record = {k: v for k, v in d.items() if k not in ("image", "mask", "masks", "candidates")}
            batch.write(plan_out, lambda f: f.write(json.dumps(record, indent=2).encode()))
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    if quiet:
        typer.echo(d.get("seed", ""))
    else:
        edits = d.get("plan", d).get("edits", [])
        for i, e in enumerate(edits, 1):
            typer.echo(f"{i}. {e.get('action')}: {e.get('target') or 'the image'} {e.get('value') or ''}".rstrip())
        typer.echo(f"edited by {server}; seed {d.get('seed', '-')}" + (f"; wrote {output}" if output and not dry_run
                                                                         else "; dry run: nothing painted"))
