"""POST /v1/contain: another app's edit put back into the original, so that only its region changes
(`lasso contain` over HTTP, pipeline/contain.py). Multipart `original`, `edited` and an optional
`mask` (0 kept, above 0 may change; without it, the region is what changed).

The answer is the contained image in the original's format where that keeps every pixel outside
the region (JPEG with its untouched blocks kept, PNG, WebP lossless, TIFF), PNG otherwise, proved
as written (pipeline/outputs.py); the report rides in headers (`X-Lasso-Changed-Outside`,
`X-Lasso-Region-Px`, `X-Lasso-Report`: the report as ASCII JSON). With `Accept: application/json`:
the report with `preservation`, the image (base64, `media_type`, `filename`) and the region as a
base64 PNG mask. A pair that is not an edit of the original is a 422 naming the residual.

No model runs: the work goes to a thread of its own (`Service.quick`), never on the edit queue,
so it answers while an edit paints, and loads none of the editor's models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import Response

from ..answers import b64, encoded, mask_png
from ..service import Service, service, wants_json

if TYPE_CHECKING:
    import numpy as np

router = APIRouter()

KEPT_AS = {"PNG": ".png", "WEBP": ".webp", "TIFF": ".tif"}  # formats written without loss outside the region


@dataclass
class Contained:
    """What the work made: the file's bytes, its suffix and type, the report, the region (float HxW)."""

    data: bytes
    suffix: str
    media: str
    report: dict[str, Any]
    mask: np.ndarray


@router.post("/v1/contain", response_model=None)
async def contain(
    request: Request,
    original: UploadFile = File(...),
    edited: UploadFile = File(...),
    mask: UploadFile | None = File(None),
    srv: Service = Depends(service),
) -> Response | dict[str, Any]:
    """Put another app's edit back into the original: its output aligned (size, zoom, shift,
    rotation), its colour drift undone, pasted back inside the region only. The answer is the
    contained image with the report in headers, or with `Accept: application/json` the report,
    the image and the region as base64."""
    paths: list[Path] = []
    try:
        for upload in (original, edited, mask):
            if upload is not None:
                paths.append(await srv.receive(upload))
        given = paths[2] if mask is not None else None
        done = await srv.quick(_contain, paths[0], paths[1], given, srv.uploads)
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
    filename = f"contained{done.suffix}"
    if wants_json(request):
        return {
            **done.report,
            "image": b64(done.data),
            "media_type": done.media,
            "filename": filename,
            "mask": b64(mask_png(done.mask)),
        }
    return Response(done.data, media_type=done.media, headers=_headers(done.report, filename))


def _contain(original: Path, edited: Path, mask: Path | None, folder: Path) -> Contained:
    """The work, in a worker thread: contain, then write and prove in the answer's format."""
    from ...imaging import jpeg_blocks, load_image, media_type
    from ...pipeline.contain import contain as put_back

    before = load_image(original)  # from its file: a JPEG's blocks are copied from it
    result, report = put_back(before, edited, mask)
    jpeg = jpeg_blocks.applies(before, "answer.jpg")  # only the touched blocks re-encoded
    suffix = ".jpg" if jpeg else KEPT_AS.get(before.format or "", ".png")
    data, said = encoded(result, folder, suffix)
    report = {**report, "warnings": list(dict.fromkeys([*result.warnings, *said]))}
    report["preservation"] = result.preservation
    fmt = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF"}[suffix]
    return Contained(data, suffix, media_type(fmt), report, result.alpha)


def _headers(report: dict[str, Any], filename: str) -> dict[str, str]:
    """The report for a client that reads only the picture: the proof, the region, all of it as JSON."""
    headers = {
        "X-Lasso-Region-Px": str(report["region_px"]),
        "X-Lasso-Report": json.dumps(report, separators=(",", ":"), ensure_ascii=True),
        "Content-Disposition": f'inline; filename="{filename}"',
    }
    if report.get("preservation") is not None:
        headers["X-Lasso-Changed-Outside"] = str(report["preservation"]["changed_outside"])
    return headers
