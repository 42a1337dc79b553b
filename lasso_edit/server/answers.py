"""What the routes answer, as bytes and JSON: the edited image as the input's kind of PNG, masks
and heatmaps as PNG, a dry run's plan with its masks and SAM's candidates, a session, a stored file."""

from __future__ import annotations

import base64
import io
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi.responses import FileResponse

if TYPE_CHECKING:
    import numpy as np

    from ..ground.attention import Heatmap
    from ..pipeline.result import EditResult
    from ..sessions.session import Session


def png(result: EditResult, folder: Path) -> bytes:
    """The edited image as `lasso edit` would save it (the input's size and mode), written in
    `folder`; the proof of the file as written goes in `result.preservation`."""
    return encoded(result, folder, ".png")[0]


def encoded(
    result: EditResult, folder: Path, suffix: str, allowed: np.ndarray | None = None, credentials: Any = None
) -> tuple[bytes, list[str]]:
    """(the file's bytes, what saving it warned of): the edited image written as `lasso edit -o
    out{suffix}` writes it (PNG and TIFF keep the input's mode and 16 bits; WebP is lossless with
    its alpha; JPEG says it is lossy in the CLI's words, and a JPEG input's untouched blocks are kept), in `folder`. The
    proof of the file as written goes in `result.preservation`, measured outside `allowed` (bool
    HxW: the pixels that were allowed to change, a client's mask) or, without it, outside the
    result's own mask. `credentials`: who signs the answer's Content Credentials (core/config.py's
    Credentials; False: none, `lasso serve --no-credentials`; None: the defaults)."""
    from ..pipeline.outputs import write_and_prove

    room = Path(tempfile.mkdtemp(prefix="out-", dir=folder))  # a folder of its own: the file keeps a plain name
    name = room / f"answer{suffix}"
    try:
        said = write_and_prove(result, name, allowed=allowed, credentials=credentials)
        return name.read_bytes(), said
    finally:
        shutil.rmtree(room, ignore_errors=True)


def mask_png(alpha: np.ndarray) -> bytes:
    from ..imaging.arrays import mask_to_image

    buf = io.BytesIO()
    mask_to_image(alpha).save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def edit_json(result: EditResult, image_png: bytes) -> dict[str, Any]:
    """An edit with `Accept: application/json`: the summary, the image and the mask as base64 PNG."""
    return {**result.summary(), "image": b64(image_png), "mask": b64(mask_png(result.alpha))}


def plan_json(result: EditResult) -> dict[str, Any]:
    """The plan as `lasso plan --json` prints it, plus the boxes, the masks and SAM's candidates.

    `describe`: each edit in words; `plan`: the whole plan, to send back with corrections or to
    apply; `masks`: what each edit would paint; `candidates` / `candidate_scores` / `chosen`: SAM's
    alternatives for each edit (empty where an edit is not segmented: whole-image and added objects);
    `heatmaps`: where the VLM looked for each edit's target (a see-through PNG), or null where its
    attention was not read; `warning_details`: each of `warnings` with its code and plain words."""
    out: dict[str, Any] = {
        "edits": [e.brief() for e in result.plan.edits],
        "source": result.plan.source,
        "warnings": list(result.warnings),
        "groundings": [g.to_dict() if g else None for g in result.groundings],
    }
    summary = result.summary()  # the record a local dry run prints and writes (`lasso edit --server --dry-run`)
    out.update({k: summary[k] for k in ("steps", "seed", "timings", "models", "changed_pixels", "warning_details")})
    out["mask"] = b64(mask_png(result.alpha))
    out["describe"] = [e.describe() for e in result.plan.edits]
    out["plan"] = result.plan.to_dict()
    out["size"] = list(result.mask.shape[::-1])
    out["masks"] = [b64(mask_png(step.region.astype("float32"))) for step in result.steps]
    out["candidates"] = [
        [b64(mask_png(c.astype("float32"))) for c in step.segmentation.candidates] if step.segmentation else []
        for step in result.steps
    ]
    out["candidate_scores"] = [
        [round(float(x), 4) for x in step.segmentation.candidate_scores] if step.segmentation else []
        for step in result.steps
    ]
    out["chosen"] = [step.segmentation.chosen if step.segmentation else None for step in result.steps]
    out["heatmaps"] = [
        b64(heat_png(step.grounding.heatmap)) if step.grounding and step.grounding.heatmap is not None else None
        for step in result.steps
    ]
    return out


def heat_png(heat: Heatmap) -> bytes:
    """Where the VLM looked, as a see-through PNG at the heatmap's own resolution (the page scales it)."""
    import numpy as np
    from PIL import Image

    from ..pipeline.overlay import heat_colors

    m = heat.render()
    rgba = np.dstack([heat_colors(m), np.round(255 * 0.6 * (0.25 + 0.75 * m)).astype(np.uint8)])
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


def session_json(session: Session) -> dict[str, Any]:
    """The session as the API answers it; each step also has `reply`: what Lasso did, in words (how a
    follow-up was read, or the plan's edits), for the page's conversation."""
    from ..core.plan import EditPlan

    d = session.to_dict()
    for step in d["steps"]:
        edits = "; ".join(e.describe() for e in EditPlan.from_dict(step["plan"]).edits)
        step["reply"] = (step.get("turn") or {}).get("said") or edits
    d.update(can_undo=session.can_undo, can_redo=session.can_redo, path=[s.id for s in session.path_to()])
    return d


def stored_file(path: Path, stem: str) -> FileResponse:
    """A stored image with the type of what it decodes as (never of its name), so a file that
    is not an image is a download, not a page; nosniff is on every response (app.py's guard)."""
    from PIL import Image

    from ..imaging import media_type, suffix_for

    try:
        with Image.open(path) as img:
            fmt = img.format
    except Exception:  # noqa: BLE001 - not an image any more: served as bytes, never as a page
        fmt = None
    media = media_type(fmt)
    how = "inline" if media != "application/octet-stream" else "attachment"
    return FileResponse(
        path, media_type=media, headers={"Content-Disposition": f'{how}; filename="{stem}{suffix_for(fmt)}"'}
    )
