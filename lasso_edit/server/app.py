"""The HTTP API (FastAPI): one editor, its models loaded once and kept warm, behind one bounded queue.

    create_app(ServerSettings(preset="tiny", data_dir="~/.cache/lasso/serve"))   # `lasso serve` runs this

Routes (OpenAPI at /docs): GET /healthz; GET /v1/models; POST /v1/edit; POST /v1/plan; sessions:
POST /v1/sessions, GET /v1/sessions/{id}, POST /v1/sessions/{id}/edit, /undo, /redo,
GET /v1/sessions/{id}/image?step=N, DELETE /v1/sessions/{id}.

Errors under /v1 are JSON `{"detail": "..."}` in Lasso's words, never a traceback: 400/422 bad input,
401 without the API key, 404 unknown session or route, 413 too large (checked before the body is
read, from Content-Length, and again while reading), 415 not an image, 429 queue full and 503 queue
timeout (both with Retry-After), 503 model unavailable.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import mimetypes
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile  # the serve extra; this module is its only user
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (ImageTooLargeError, InvalidInputError, LassoError, ModelUnavailableError,
                      TargetNotFoundError, UnreadableImageError)
from ..session import SessionNotFoundError, SessionStore
from .jobs import JobQueue, QueueFull, QueueTimeout


@dataclass
class ServerSettings:
    preset: str = "balanced"
    data_dir: str = "~/.cache/lasso/serve"
    api_key: str | None = None
    max_upload_mb: float = 50.0
    queue: int = 8
    timeout_s: float = 600.0  # how long a request waits for its edit before a 503
    device: str | None = None
    session_ttl_s: float = 7 * 24 * 3600
    session_max_bytes: int = 20 * 2**30


def _status(e: BaseException) -> int:
    if isinstance(e, SessionNotFoundError):
        return 404
    if isinstance(e, ImageTooLargeError):
        return 413
    if isinstance(e, UnreadableImageError):
        return 415
    if isinstance(e, (InvalidInputError, TargetNotFoundError)):
        return 422
    if isinstance(e, ModelUnavailableError):
        return 503
    return 500


def create_app(settings: ServerSettings, editor=None):
    """The FastAPI app. `editor`: an Editor to use (default: one built from `settings.preset`)."""
    from ..editor import Editor
    from ..imaging import save_image

    data = Path(settings.data_dir).expanduser()
    uploads = data / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    for leftover in uploads.iterdir():  # a previous run's, stopped mid-request
        leftover.unlink(missing_ok=True)
    if editor is None:
        editor = Editor.from_preset(settings.preset, device=settings.device)
    store = SessionStore(data / "sessions", ttl_s=settings.session_ttl_s, max_bytes=settings.session_max_bytes)
    jobs = JobQueue(settings.queue)
    max_bytes = int(settings.max_upload_mb * 2**20)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        jobs.close()  # the running edit finishes; the waiting ones are cancelled

    app = FastAPI(title="Lasso", version="0.1.0", lifespan=lifespan,
                  description="Edit a photo from a plain-language instruction; pixels outside the mask stay "
                              "bit-identical.")
    app.state.editor, app.state.store, app.state.jobs = editor, store, jobs

    # ------------------------------------------------------------------ errors and guards
    def error(status: int, detail: str, retry_after: int | None = None, exit_code: int | None = None) -> JSONResponse:
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        body: dict[str, Any] = {"detail": detail}
        if exit_code is not None:  # what `lasso edit` would exit with: `lasso edit --server` does
            body["exit_code"] = exit_code
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(LassoError)
    async def lasso_error(request: Request, e: LassoError):
        return error(_status(e), str(e), exit_code=e.exit_code)

    @app.exception_handler(QueueFull)
    async def queue_full(request: Request, e: QueueFull):
        return error(429, f"{e}; try again shortly", retry_after=5)

    @app.exception_handler(QueueTimeout)
    async def queue_timeout(request: Request, e: QueueTimeout):
        return error(503, f"{e}; the server is busy, try again shortly", retry_after=30)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError):
        parts = ["{}: {}".format(".".join(str(x) for x in err.get("loc", ())[1:]) or "request", err.get("msg", ""))
                 for err in e.errors()]
        return error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception):  # never a traceback to the client
        return error(500, f"internal error ({type(e).__name__}); the server log has the details")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if settings.api_key and path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode()):
                return error(401, "missing or wrong API key: send 'Authorization: Bearer KEY'")
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            return error(413, f"the request is {int(length) / 2**20:.1f} MB; the limit is {settings.max_upload_mb:g} MB")
        return await call_next(request)

    async def receive(upload: UploadFile) -> Path:
        """The upload in a file of our own (read in chunks, stopped at the size limit)."""
        suffix = Path(upload.filename or "").suffix.lower()  # kept for the session's original; the content decides
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else "",
                                    dir=uploads)
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := await upload.read(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise _TooLarge(settings.max_upload_mb)
                    f.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    @app.exception_handler(_TooLarge)
    async def too_large(request: Request, e: _TooLarge):
        return error(413, str(e))

    async def run(fn):
        """`fn` on the queue's worker; the event loop stays free to answer others (429s, health) meanwhile."""
        future = jobs.submit(fn)  # QueueFull at once when the queue is full
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), settings.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()
            raise QueueTimeout(f"the edit waited over {settings.timeout_s:g} s") from None

    def png(result) -> bytes:
        fd, name = tempfile.mkstemp(prefix="out-", suffix=".png", dir=uploads)
        os.close(fd)
        try:
            save_image(result.image, name, like=result.source, deep_samples=result.deep)
            return Path(name).read_bytes()
        finally:
            Path(name).unlink(missing_ok=True)

    def mask_png(alpha) -> bytes:
        from ..arrays import mask_to_image

        buf = io.BytesIO()
        mask_to_image(alpha).save(buf, format="PNG")
        return buf.getvalue()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    def wants_json(request: Request) -> bool:
        return "application/json" in request.headers.get("accept", "")

    def settings_of(seed, steps, guidance) -> dict[str, Any]:
        return {k: v for k, v in (("seed", seed), ("steps", steps), ("guidance", guidance)) if v is not None}

    # ------------------------------------------------------------------ routes
    @app.get("/healthz")
    def healthz():
        return {"ok": True, "queue": {"size": jobs.size, "waiting": jobs.waiting, "running": jobs.running}}

    @app.get("/v1/models")
    def models():
        return {"preset": settings.preset, "models": editor.models, "loaded": editor.loaded}

    @app.post("/v1/edit")
    async def edit(request: Request, image: UploadFile = File(...), instruction: str = Form(...),
                   seed: int | None = Form(None), steps: int | None = Form(None),
                   guidance: float | None = Form(None)):
        """Edit the image; the answer is the edited image as PNG (the input's size and mode), or with
        `Accept: application/json` the image and mask as base64 PNG with the plan, seed and timings."""
        path = await receive(image)
        try:
            result = await run(lambda: editor(str(path), instruction, **settings_of(seed, steps, guidance)))
            out = png(result)
        finally:
            path.unlink(missing_ok=True)
        if not wants_json(request):
            return Response(out, media_type="image/png", headers={"X-Lasso-Seed": str(result.seed)})
        summary = result.summary()
        return {**summary, "image": b64(out), "mask": b64(mask_png(result.alpha))}

    @app.post("/v1/plan")
    async def plan(image: UploadFile = File(...), instruction: str = Form(...)):
        """The dry run: what Lasso understood, the boxes, and SAM's candidate masks, nothing painted."""
        path = await receive(image)
        try:
            result = await run(lambda: editor(str(path), instruction, dry_run=True))
        finally:
            path.unlink(missing_ok=True)
        return _plan_json(result, mask_png, b64)

    @app.post("/v1/sessions", status_code=201)
    async def create_session(image: UploadFile = File(...)):
        path = await receive(image)
        try:
            session = store.create(path)
        finally:
            path.unlink(missing_ok=True)
        return session_json(session)

    def session_json(session) -> dict[str, Any]:
        d = session.to_dict()
        d.update(can_undo=session.can_undo, can_redo=session.can_redo)
        return d

    @app.get("/v1/sessions/{sid}")
    def get_session(sid: str):
        return session_json(store.get(sid))

    @app.post("/v1/sessions/{sid}/plan")
    async def session_plan(sid: str, instruction: str = Form(...)):
        session = store.get(sid)
        result = await run(lambda: editor(str(session.image()), instruction, dry_run=True))
        return _plan_json(result, mask_png, b64)

    @app.post("/v1/sessions/{sid}/edit")
    async def session_edit(sid: str, instruction: str = Form(...), seed: int | None = Form(None),
                           steps: int | None = Form(None), guidance: float | None = Form(None)):
        session = store.get(sid)
        await run(lambda: session.apply(editor, instruction, **settings_of(seed, steps, guidance)))
        return session_json(session)

    @app.post("/v1/sessions/{sid}/undo")
    def undo(sid: str):
        session = store.get(sid)
        session.undo()
        return session_json(session)

    @app.post("/v1/sessions/{sid}/redo")
    def redo(sid: str):
        session = store.get(sid)
        session.redo()
        return session_json(session)

    @app.get("/v1/sessions/{sid}/image")
    def session_image(sid: str, step: int | None = None):
        session = store.get(sid)
        path = session.image(step)
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media)

    @app.delete("/v1/sessions/{sid}", status_code=204)
    def delete_session(sid: str):
        store.delete(sid)
        return Response(status_code=204)

    return app


class _TooLarge(Exception):
    def __init__(self, limit_mb: float):
        super().__init__(f"the upload is over the {limit_mb:g} MB limit")


def _plan_json(result, mask_png, b64) -> dict[str, Any]:
    """The plan as `lasso plan --json` prints it, plus the boxes and the candidate masks."""
    out = {"edits": [e.brief() for e in result.plan.edits], "source": result.plan.source,
           "warnings": list(result.warnings), "groundings": [g.to_dict() if g else None for g in result.groundings]}
    out["masks"] = [b64(mask_png(step.region.astype("float32"))) for step in result.steps]
    out["candidates"] = [[b64(mask_png(c.astype("float32"))) for c in step.segmentation.candidates]
                         for step in result.steps]
    return out
