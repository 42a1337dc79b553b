"""Sessions: an image and the steps made on it, with undo, redo and branches.

POST /v1/sessions, GET /v1/sessions, GET /v1/sessions/{id}, POST /v1/sessions/{id}/plan, /edit,
/undo, /redo, /go, GET /v1/sessions/{id}/image?step=N, /mask?step=N, DELETE /v1/sessions/{id}.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...errors import InvalidInputError
from .. import guards
from ..answers import plan_json, session_json, stored_file
from ..forms import EditForm, PlanForm
from ..service import Service, service, wants_async

router = APIRouter()


@router.post("/v1/sessions", status_code=201)
async def create_session(image: UploadFile = File(...), srv: Service = Depends(service)):
    path = await srv.receive(image)
    try:
        session = srv.store.create(path)
    finally:
        path.unlink(missing_ok=True)
    return session_json(session)


@router.get("/v1/sessions")
def list_sessions(request: Request, limit: int = 20, srv: Service = Depends(service)):
    """The most recently used sessions, newest first: id, created, touched, the current step, the
    number of steps and the last instruction. A session id is the key to its photos, so a server
    without an API key lists them only to its own machine (loopback)."""
    if not srv.settings.api_key and not guards.is_loopback(request.client.host if request.client else ""):
        raise StarletteHTTPException(
            403,
            "listing sessions needs --api-key on a server shared beyond this "
            "machine (each session's own link still works)",
        )
    if not 1 <= limit <= 100:
        raise InvalidInputError(f"limit must be in 1..100, got {limit}")
    return {"sessions": srv.store.recent(limit)}


@router.get("/v1/sessions/{sid}")
def get_session(sid: str, srv: Service = Depends(service)):
    return session_json(srv.store.get(sid))


def _accepted(srv: Service, job) -> JSONResponse:
    return JSONResponse(
        job.to_dict(position=srv.position(job)), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
    )


@router.post("/v1/sessions/{sid}/plan")
async def session_plan(request: Request, sid: str, form: Annotated[PlanForm, Form()], srv: Service = Depends(service)):
    """A preview of the next step on the current image: the plan and masks, nothing painted. With
    `Prefer: respond-async`: 202 and a job to poll, whose messages say what runs (the first one
    also which model loads: minutes on a first run)."""
    kwargs = form.options()
    session = srv.store.get(sid)

    def work(say):
        editor = srv.editor_for(form.preset)
        return editor(str(session.image()), form.instruction, dry_run=True, progress=say, **kwargs)

    if wants_async(request):
        return _accepted(srv, srv.start_job(work, plan_json))
    return plan_json(await srv.run(work))


@router.post("/v1/sessions/{sid}/edit")
async def session_edit(request: Request, sid: str, form: Annotated[EditForm, Form()], srv: Service = Depends(service)):
    """Apply an instruction (or a previewed `plan`, with `corrections`) to the current image. With
    `Prefer: respond-async`: 202 and a job to poll for progress (Location: /v1/jobs/{id})."""
    kwargs = form.options()
    session = srv.store.get(sid)

    def work(say):
        return session.apply(srv.editor_for(form.preset), form.instruction, progress=say, **kwargs)

    if wants_async(request):
        return _accepted(srv, srv.start_job(work, lambda _: session_json(session)))
    await srv.run(work)
    return session_json(session)


@router.post("/v1/sessions/{sid}/undo")
def undo(sid: str, srv: Service = Depends(service)):
    session = srv.store.get(sid)
    session.undo()
    return session_json(session)


@router.post("/v1/sessions/{sid}/redo")
def redo(sid: str, srv: Service = Depends(service)):
    session = srv.store.get(sid)
    session.redo()
    return session_json(session)


@router.post("/v1/sessions/{sid}/go")
def go(sid: str, step: int = Form(...), srv: Service = Depends(service)):
    """Make any step of any branch current (0 = the original)."""
    session = srv.store.get(sid)
    session.go(step)
    return session_json(session)


@router.get("/v1/sessions/{sid}/image")
def session_image(sid: str, step: int | None = None, view: bool = False, srv: Service = Depends(service)):
    """The image at `step` (default: the current one) as stored: the upload byte for byte for step 0,
    a lossless PNG after. `view=true`: in a format browsers show (a TIFF upload as PNG)."""
    session = srv.store.get(sid)
    path = session.view(step) if view else session.image(step)
    return stored_file(path, f"{sid[:8]}-step-{session.cursor if step is None else step}")


@router.get("/v1/sessions/{sid}/mask")
def session_mask(sid: str, step: int | None = None, srv: Service = Depends(service)):
    """The mask of a step (white where it may have changed pixels); none for the original."""
    session = srv.store.get(sid)
    path = session.mask(step)
    if path is None:
        raise InvalidInputError("the original has no mask; ask for a step from 1 on")
    return stored_file(path, f"{sid[:8]}-mask-{session.cursor if step is None else step}")


@router.delete("/v1/sessions/{sid}", status_code=204)
def delete_session(sid: str, srv: Service = Depends(service)):
    srv.store.delete(sid)
    return Response(status_code=204)
