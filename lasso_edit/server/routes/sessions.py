"""Sessions: an image and the steps made on it, with undo, redo and branches.

POST /v1/sessions, GET /v1/sessions, GET /v1/sessions/{id}, POST /v1/sessions/{id}/plan, /edit,
/undo, /redo, /go, GET /v1/sessions/{id}/image?step=N, /mask?step=N, DELETE /v1/sessions/{id}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...core.errors import InvalidInputError
from .. import guards
from ..answers import plan_json, session_json, stored_file
from ..forms import EditForm, PlanForm
from ..jobs import Job
from ..service import Progress, Service, service, wants_async

if TYPE_CHECKING:
    from ...pipeline.result import EditResult
    from ...sessions.conversation import Turn

router = APIRouter()


@router.post("/v1/sessions", status_code=201, response_model=None)
async def create_session(image: UploadFile = File(...), srv: Service = Depends(service)) -> dict[str, Any]:
    path = await srv.receive(image)
    try:
        session = srv.store.create(path)
    finally:
        path.unlink(missing_ok=True)
    return session_json(session)


@router.get("/v1/sessions", response_model=None)
def list_sessions(request: Request, limit: int = 20, srv: Service = Depends(service)) -> dict[str, Any]:
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


@router.get("/v1/sessions/{sid}", response_model=None)
def get_session(sid: str, srv: Service = Depends(service)) -> dict[str, Any]:
    return session_json(srv.store.get(sid))


def _accepted(srv: Service, job: Job) -> JSONResponse:
    return JSONResponse(
        job.to_dict(position=srv.position(job)), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
    )


@router.post("/v1/sessions/{sid}/plan", response_model=None)
async def session_plan(
    request: Request, sid: str, form: Annotated[PlanForm, Form()], srv: Service = Depends(service)
) -> JSONResponse | dict[str, Any]:
    """A preview of the next step: the plan and masks, nothing painted. The instruction is read
    against the current step (a follow-up: "make it darker", "no, the other one", "and the bike
    too"); `turn` says how, and `base` is the step the edit will run on (for a revision, the one the
    current step was made from: the refinement is made again from there, as the step after it).
    A reference with nothing to lean on answers a `question` and no plan. With `Prefer:
    respond-async`: 202 and a job to poll, whose messages say what runs."""
    kwargs = form.options()
    session = srv.store.get(sid)
    # Reading the words is CPU work (no model): in a worker thread, so a long or hostile text holds
    # up no other request; the edit route reads them on the queue's worker, inside its job.
    turn = await srv.quick(session.understand, form.instruction) if form.instruction else None
    if turn is not None and turn.kind in ("question", "undo"):  # nothing to preview: said at once
        said = {"turn": turn.to_dict(), "question": turn.question, "base": session.cursor}
        if wants_async(request):  # still a job, as asked: a client polls every preview the same way
            return _accepted(srv, srv.start_job(lambda say: None, lambda _: said))
        return said
    base = session.base_for(turn) if turn is not None else session.cursor
    if turn is not None and turn.plan is not None and "plan" not in kwargs:
        kwargs["plan"] = turn.plan
    if turn is not None and turn.context and "plan" not in kwargs:
        kwargs["context"] = turn.context  # a VLM planner reads what the last edit did, as the edit will
    instruction = turn.instruction if turn is not None and turn.instruction else form.instruction

    def work(say: Progress) -> EditResult:
        editor = srv.editor_for(form.preset)
        return editor(str(session.image(base)), instruction, dry_run=True, progress=say, **kwargs)

    def answer(result: EditResult) -> dict[str, Any]:
        return {**plan_json(result), "turn": turn.to_dict() if turn else None, "base": base}

    if wants_async(request):
        return _accepted(srv, srv.start_job(work, answer))
    return answer(await srv.run(work))


@router.post("/v1/sessions/{sid}/edit", response_model=None)
async def session_edit(
    request: Request, sid: str, form: Annotated[EditForm, Form()], srv: Service = Depends(service)
) -> JSONResponse | dict[str, Any]:
    """Apply an instruction (or a previewed `plan`, with `corrections`), read against the current step
    as the preview reads it: a revision is made from the picture before the last step and becomes
    the step after it (undo comes back to it), an undo undoes, a question changes nothing and is
    answered in `question`. With `Prefer: respond-async`:
    202 and a job to poll for progress (Location: /v1/jobs/{id})."""
    kwargs = form.options()
    session = srv.store.get(sid)
    asked: dict[str, Any] = {}

    def work(say: Progress) -> Turn | None:
        if not form.instruction:  # a plan alone: applied to the current image as it stands
            session.apply(srv.editor_for(form.preset), form.instruction, progress=say, **kwargs)
            return None

        def editor(*args: Any, **kw: Any) -> EditResult:  # the models load only when a turn paints
            return srv.editor_for(form.preset)(*args, **kw)

        turn, _ = session.converse(editor, form.instruction, progress=say, **kwargs)
        asked.update(turn=turn.to_dict(), question=turn.question)
        return turn

    def answer(_: object) -> dict[str, Any]:
        return {**session_json(session), **asked}

    if wants_async(request):
        return _accepted(srv, srv.start_job(work, answer))
    await srv.run(work)
    return answer(None)


@router.post("/v1/sessions/{sid}/undo", response_model=None)
def undo(sid: str, srv: Service = Depends(service)) -> dict[str, Any]:
    session = srv.store.get(sid)
    session.undo()
    return session_json(session)


@router.post("/v1/sessions/{sid}/redo", response_model=None)
def redo(sid: str, srv: Service = Depends(service)) -> dict[str, Any]:
    session = srv.store.get(sid)
    session.redo()
    return session_json(session)


@router.post("/v1/sessions/{sid}/go", response_model=None)
def go(sid: str, step: int = Form(...), srv: Service = Depends(service)) -> dict[str, Any]:
    """Make any step of any branch current (0 = the original)."""
    session = srv.store.get(sid)
    session.go(step)
    return session_json(session)


@router.get("/v1/sessions/{sid}/image")
def session_image(sid: str, step: int | None = None, view: bool = False, srv: Service = Depends(service)) -> Response:
    """The image at `step` (default: the current one) as stored: the upload byte for byte for step 0,
    a lossless PNG after. `view=true`: in a format browsers show (a TIFF upload as PNG)."""
    session = srv.store.get(sid)
    path = session.view(step) if view else session.image(step)
    return stored_file(path, f"{sid[:8]}-step-{session.cursor if step is None else step}")


@router.get("/v1/sessions/{sid}/mask")
def session_mask(sid: str, step: int | None = None, srv: Service = Depends(service)) -> Response:
    """The mask of a step (white where it may have changed pixels); none for the original."""
    session = srv.store.get(sid)
    path = session.mask(step)
    if path is None:
        raise InvalidInputError("the original has no mask; ask for a step from 1 on")
    return stored_file(path, f"{sid[:8]}-mask-{session.cursor if step is None else step}")


@router.delete("/v1/sessions/{sid}", status_code=204)
def delete_session(sid: str, srv: Service = Depends(service)) -> Response:
    srv.store.delete(sid)
    return Response(status_code=204)
