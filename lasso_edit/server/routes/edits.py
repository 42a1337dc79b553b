"""POST /v1/edit (an image and an instruction in, the edited image out) and POST /v1/plan (the dry
run: the plan, boxes and SAM's candidate masks, nothing painted)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response

from ..answers import edit_json, plan_json, png
from ..forms import EditForm, PlanForm
from ..service import Service, service, wants_json

router = APIRouter()


@router.post("/v1/edit", response_model=None)
async def edit(
    request: Request,
    form: Annotated[EditForm, Form()],
    image: UploadFile = File(...),
    srv: Service = Depends(service),
) -> Response | dict[str, Any]:
    """Edit the image; the answer is the edited image as PNG (the input's size and mode), or with
    `Accept: application/json` the image and mask as base64 PNG with the plan, seed and timings."""
    kwargs = form.options()
    path = await srv.receive(image)
    try:
        result = await srv.run(
            lambda say: srv.editor_for(form.preset)(str(path), form.instruction, progress=say, **kwargs)
        )
        out = png(result, srv.uploads)
    finally:
        path.unlink(missing_ok=True)
    if not wants_json(request):
        headers = {"X-Lasso-Seed": str(result.seed)}
        if result.preservation is not None:  # the proof, for a client that reads only the picture
            headers["X-Lasso-Changed-Outside"] = str(result.preservation["changed_outside"])
        return Response(out, media_type="image/png", headers=headers)
    return edit_json(result, out)


@router.post("/v1/plan", response_model=None)
async def plan(
    form: Annotated[PlanForm, Form()],
    image: UploadFile = File(...),
    srv: Service = Depends(service),
) -> dict[str, Any]:
    """The dry run: what Lasso understood, the boxes, and SAM's candidate masks, nothing painted.
    With `plan` and `corrections`, the masks the corrected edit would paint."""
    kwargs = form.options()
    path = await srv.receive(image)
    try:
        result = await srv.run(
            lambda say: srv.editor_for(form.preset)(str(path), form.instruction, dry_run=True, progress=say, **kwargs)
        )
    finally:
        path.unlink(missing_ok=True)
    return plan_json(result)
