"""The HTTP API (FastAPI): one editor, its models loaded once and kept warm, behind one bounded queue.

    create_app(ServerSettings(preset="tiny", data_dir="~/.cache/lasso/serve"))   # `lasso serve` runs this

Routes (OpenAPI at /docs): GET / (the page, page.py); GET /healthz; GET /v1/models; POST /v1/edit;
POST /v1/plan; sessions: POST /v1/sessions, GET /v1/sessions/{id}, POST /v1/sessions/{id}/plan,
/edit, /undo, /redo, /go, GET /v1/sessions/{id}/image?step=N, /mask?step=N, DELETE /v1/sessions/{id};
GET /v1/jobs/{id}.

The edit and plan routes take optional form fields beside the image and instruction: `seed`,
`steps`, `guidance`, `parser`, `grounder`, `plan` (the JSON plan a preview answered, so the edit
paints what the person saw) and `corrections` (JSON: one object, or a list of them, each with
`points` [[x, y], ...], `labels` [1 keep / 0 leave out, ...], `box` [x0, y0, x1, y1], `candidate`,
and `edit`, the index of the edit it fixes, default 0).

Progress: a session edit sent with `Prefer: respond-async` answers 202 at once with a job
(Location: /v1/jobs/{id}); polling it gives the editor's message and the denoising step, then the
session or the error. Polling, not server-sent events: the page's fetch() can send the API key,
which an EventSource cannot (docs/decisions.md).

Errors under /v1 are JSON `{"detail": "..."}` in Lasso's words, never a traceback: 400/422 bad input,
401 without the API key, 403 a change from another site or host (a keyless server), 404 unknown
session, job or route, 413 too large (from Content-Length before the body is read, and counted as
it arrives by guards.BodyLimit), 415 not an image, 429 queue full and 503 queue timeout or
shutdown (both with Retry-After), 503 model unavailable, 507 no space left.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import re
import secrets
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, File, Form, Request, UploadFile  # the serve extra; this module is its only user
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import EditorConfig
from ..errors import (
    ImageTooLargeError,
    InvalidInputError,
    LassoError,
    ModelUnavailableError,
    StorageError,
    TargetNotFoundError,
    UnreadableImageError,
    storage_error,
)
from ..imaging import write_atomic
from ..plan import Correction, EditPlan
from ..session import SessionNotFoundError, SessionStore
from . import guards
from .jobs import Cancelled, Job, JobQueue, QueueFull, QueueTimeout
from .page import add_page

JOBS_KEPT_S = 15 * 60  # a finished job can be polled this long


@dataclass
class ServerSettings:
    preset: str = "balanced"
    data_dir: str = "~/.cache/lasso/serve"
    api_key: str | None = None
    max_upload_mb: float = 50.0
    queue: int = 8
    timeout_s: float = 600.0  # how long a request waits for its edit before a 503
    device: str | None = None
    vlm: str | None = None  # another VLM than the preset's: Hub id, folder or openai:MODEL@BASE_URL
    vlm_api_key: str | None = None
    lora: str | None = None  # a LoRA of your own (lasso train) fused into the inpainter
    lora_scale: float | None = None
    session_ttl_s: float = 7 * 24 * 3600
    session_max_bytes: int = 20 * 2**30
    # Several servers (the replicas of `lasso serve --ray`) share data_dir: uploads go to a folder of
    # this instance's own, and background jobs are written there too, so any replica answers a poll.
    shared: bool = False
    instance: str | None = None  # this server's name, sent as X-Lasso-Replica
    # Host names a keyless server answers changes for, besides IP addresses, localhost and this
    # machine's own names (guards.py: DNS rebinding); "*" for any (behind a proxy that checks).
    allowed_hosts: tuple[str, ...] = ()
    # The editor's whole configuration (config.py), as `lasso serve` builds it; None: one made of
    # the fields above (preset, device, vlm, vlm_api_key, lora, lora_scale), for callers that set those.
    editor: EditorConfig | None = None

    def editor_config(self) -> EditorConfig:
        """The EditorConfig this server builds its editor from (the detector always offered: the
        page's grounder choice may ask for it)."""
        if self.editor is not None:
            return self.editor.replace(optional=tuple({*self.editor.optional, "detector"}))
        return EditorConfig(
            self.preset,
            device=self.device,
            optional=("detector",),
            vlm=self.vlm,
            vlm_api_key=self.vlm_api_key,
            lora=self.lora,
            lora_scale=self.lora_scale,
        )


def _status(e: BaseException) -> int:
    if isinstance(e, (SessionNotFoundError, JobNotFoundError)):
        return 404
    if isinstance(e, ImageTooLargeError):
        return 413
    if isinstance(e, UnreadableImageError):
        return 415
    if isinstance(e, (InvalidInputError, TargetNotFoundError)):
        return 422
    if isinstance(e, ModelUnavailableError):
        return 503
    if isinstance(e, StorageError):
        return 507  # Insufficient Storage
    return 500


class JobNotFoundError(LassoError):
    """No job with that id (never made, or finished long ago)."""

    exit_code = 2


def _answer(e: BaseException) -> tuple[int, str, int | None, int | None]:
    """(HTTP status, detail, exit code, Retry-After) for an error a route or a job raised."""
    e = storage_error(e, "the server's disk") or e  # a full disk where a library wrote
    if isinstance(e, LassoError):
        return _status(e), str(e), e.exit_code, None
    if isinstance(e, QueueFull):
        return 429, f"{e}; try again shortly", None, 5
    if isinstance(e, QueueTimeout):
        return 503, f"{e}; the server is busy, try again shortly", None, 30
    if isinstance(e, Cancelled):
        return 503, str(e), None, 30
    return 500, f"internal error ({type(e).__name__}); the server log has the details", None, None


def parse_corrections(text: str | None) -> dict[int, Correction]:
    """The `corrections` form field: JSON, one object or a list; each may name its `edit` (default 0)."""
    if not text:
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInputError(
            "corrections must be JSON: an object with points, labels, box or candidate, or a list of them"
        ) from None
    out: dict[int, Correction] = {}
    for item in data if isinstance(data, list) else [data]:
        edit = item.get("edit", 0) if isinstance(item, dict) else 0
        if isinstance(edit, bool) or not isinstance(edit, int) or edit < 0:
            raise InvalidInputError(f"a correction's edit must be an edit's index (0 = the first), got {edit!r}")
        if edit in out:
            raise InvalidInputError(f"two corrections for edit {edit}; send one with all its points")
        out[edit] = Correction.from_dict(item)
    return out


def parse_plan(text: str | None) -> EditPlan | None:
    """The `plan` form field: a plan as a preview answered it (its `plan` object), to paint what was
    seen; checked against the one plan schema (plan_schema.py)."""
    if not text:
        return None
    from ..plan_schema import plan_from_json

    return plan_from_json(text)


def create_app(settings: ServerSettings, editor=None):
    """The FastAPI app. `editor`: an Editor to use (default: one built from `settings.preset`)."""
    from ..editor import Editor
    from ..imaging import save_image

    data = Path(settings.data_dir).expanduser()
    uploads = data / "uploads"
    if settings.shared:
        uploads = _own_uploads(uploads, settings.instance or f"{socket.gethostname()}-{os.getpid()}")
    uploads.mkdir(parents=True, exist_ok=True)
    for leftover in uploads.iterdir():  # a previous run's, stopped mid-request
        if leftover.is_file():
            leftover.unlink(missing_ok=True)
    shared_jobs = data / "jobs" if settings.shared else None
    if shared_jobs is not None:
        shared_jobs.mkdir(exist_ok=True)
    if editor is None:
        editor = Editor.from_config(settings.editor_config())
    store = SessionStore(data / "sessions", ttl_s=settings.session_ttl_s, max_bytes=settings.session_max_bytes)
    jobs = JobQueue(settings.queue)
    background: dict[str, Job] = {}  # jobs a client polls (Prefer: respond-async)
    max_bytes = int(settings.max_upload_mb * 2**20)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        jobs.close()  # the running edit finishes; the waiting ones are cancelled

    app = FastAPI(
        title="Lasso",
        version="0.1.0",
        lifespan=lifespan,
        description="Edit a photo from a plain-language instruction; pixels outside the mask stay bit-identical.",
    )
    app.state.editor, app.state.store, app.state.jobs = editor, store, jobs
    app.state.settings = settings
    app.add_middleware(guards.BodyLimit, max_bytes=max_bytes, limit_mb=settings.max_upload_mb)

    # ------------------------------------------------------------------ errors and guards
    server_paths = re.compile(r"(?:\b(?:the )?(?:image|file) )?" + re.escape(str(data)) + r"[^\s:;,)'\"]*")

    def scrub(detail: str) -> str:
        """The server's own paths (temporary uploads, session folders) are no business of a client:
        "image /data/uploads/upload-x is over ..." reads "the uploaded image is over ..."."""
        return server_paths.sub("the uploaded image", detail)

    def error(status: int, detail: str, retry_after: int | None = None, exit_code: int | None = None) -> JSONResponse:
        headers = {"Retry-After": str(retry_after)} if retry_after else None
        body: dict[str, Any] = {"detail": scrub(detail)}
        if exit_code is not None:  # what `lasso edit` would exit with: `lasso edit --server` does
            body["exit_code"] = exit_code
        return JSONResponse(body, status_code=status, headers=headers)

    async def known(request: Request, e: Exception):
        status, detail, exit_code, retry_after = _answer(e)
        return error(status, detail, retry_after=retry_after, exit_code=exit_code)

    for kind in (LassoError, QueueFull, QueueTimeout, Cancelled):
        app.add_exception_handler(kind, known)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError):
        parts = [
            "{}: {}".format(".".join(str(x) for x in err.get("loc", ())[1:]) or "request", err.get("msg", ""))
            for err in e.errors()
        ]
        return error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        return error(e.status_code, str(e.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception):  # never a traceback to the client
        if storage_error(e) is not None:
            return await known(request, e)
        return error(500, f"internal error ({type(e).__name__}); the server log has the details")

    trusted_hosts = guards.trusted_hosts(settings.allowed_hosts)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        path = request.url.path
        if settings.api_key and path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode()):
                return error(401, "missing or wrong API key: send 'Authorization: Bearer KEY'")
        elif not settings.api_key and request.method not in ("GET", "HEAD", "OPTIONS"):
            refused = guards.cross_site(request.headers, trusted_hosts)  # DNS rebinding, another site's form
            if refused:
                return error(403, refused)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            return error(
                413, f"the request is {int(length) / 2**20:.1f} MB; the limit is {settings.max_upload_mb:g} MB"
            )
        response = await call_next(request)
        if settings.instance:
            response.headers["X-Lasso-Replica"] = settings.instance
        guards.secure_headers(response.headers, page=path == "/")
        return response

    async def receive(upload: UploadFile) -> Path:
        """The upload in a file of our own, read in chunks (the body's size limit is guards.BodyLimit's)."""
        fd, name = tempfile.mkstemp(prefix="upload-", dir=uploads)  # the client's file name is never used
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := await upload.read(1 << 20):
                    f.write(chunk)
        except BaseException as e:
            Path(name).unlink(missing_ok=True)
            full = storage_error(e, "the server's disk (its upload folder)")
            if full is not None:
                raise full from None
            raise
        return Path(name)

    def queued(work, job: Job | None = None):
        """`work(progress)` as a queue job: the progress callback feeds `job`, and stops the edit on
        shutdown or once its request has given up on it (timed out)."""
        submitted = time.monotonic()
        mine: list = []  # the job's future, once submitted

        def progress(message: str) -> None:
            jobs.check(mine[0] if mine else None)  # raises Cancelled on SIGTERM, or when the request timed out
            if job is not None:
                job.report(message)
                publish(job)

        def fn():
            if time.monotonic() - submitted > settings.timeout_s:  # waited too long: never start it
                raise QueueTimeout(f"the edit waited over {settings.timeout_s:g} s")
            if job is not None:
                job.state = "running"
                job.report("starting")
                publish(job, now=True)
            return work(progress)

        mine.append(jobs.submit(fn))  # QueueFull at once when the queue is full
        return mine[0]

    async def run(work):
        """`work(progress)` on the queue's worker; the event loop stays free to answer others meanwhile.
        A request that times out (503) takes its edit with it: waiting, it never starts; running, it
        stops at its next step, and nothing is written."""
        future = queued(work)
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), settings.timeout_s)
        except asyncio.TimeoutError:
            jobs.stop(future)
            raise QueueTimeout(f"the edit waited over {settings.timeout_s:g} s") from None
        except asyncio.CancelledError:  # the client went away: nobody will read the answer
            jobs.stop(future)
            raise

    def start_job(work, finish) -> Job:
        """`work` in the background; `finish(result)` makes the job's answer. The job is polled at /v1/jobs/{id}."""
        now = time.time()
        for jid in [j for j, job in background.items() if job.finished and now - job.finished > JOBS_KEPT_S]:
            background.pop(jid, None)
        if shared_jobs is not None:  # every replica's, a gone one's too: untouched past any poll's use
            for f in shared_jobs.glob("*.json"):
                with contextlib.suppress(OSError):
                    if now - f.stat().st_mtime > JOBS_KEPT_S + settings.timeout_s:
                        f.unlink()
        job = Job()
        future = queued(work, job)
        background[job.id] = job
        publish(job, now=True)

        def done(f):
            try:
                job.result = finish(f.result())
                job.state = "done"
                job.message = "done"
            except BaseException as e:  # noqa: BLE001 - the job says what the synchronous route would
                status, detail, exit_code, retry_after = _answer(e)
                job.error = {
                    "status": status,
                    "detail": scrub(detail),
                    "exit_code": exit_code,
                    "retry_after": retry_after,
                }
                job.state = "failed"
                job.message = job.error["detail"]
            job.finished = time.time()
            publish(job, now=True)

        future.add_done_callback(done)
        return job

    def wants_async(request: Request) -> bool:
        return "respond-async" in request.headers.get("prefer", "").lower()

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

    def options(
        seed=None, steps=None, guidance=None, parser=None, grounder=None, plan=None, corrections=None
    ) -> dict[str, Any]:
        """The editor's keyword arguments from the optional form fields (JSON ones parsed and checked)."""
        given = {
            "seed": seed,
            "steps": steps,
            "guidance": guidance,
            "parser": parser or None,
            "grounder": grounder or None,
            "plan": parse_plan(plan),
            "corrections": parse_corrections(corrections),
        }
        return {k: v for k, v in given.items() if v is not None and v != {}}

    # ------------------------------------------------------------------ routes
    @app.get("/healthz")
    def healthz():
        return {"ok": True, "queue": {"size": jobs.size, "waiting": jobs.waiting, "running": jobs.running}}

    @app.get("/v1/models")
    def models():
        return {
            "preset": settings.preset,
            "models": editor.models,
            "loaded": editor.loaded,
            "max_upload_mb": settings.max_upload_mb,
        }

    @app.post("/v1/edit")
    async def edit(
        request: Request,
        image: UploadFile = File(...),
        instruction: str = Form(""),
        seed: int | None = Form(None),
        steps: int | None = Form(None),
        guidance: float | None = Form(None),
        parser: str | None = Form(None),
        grounder: str | None = Form(None),
        plan: str | None = Form(None),
        corrections: str | None = Form(None),
    ):
        """Edit the image; the answer is the edited image as PNG (the input's size and mode), or with
        `Accept: application/json` the image and mask as base64 PNG with the plan, seed and timings."""
        kwargs = options(seed, steps, guidance, parser, grounder, plan, corrections)
        path = await receive(image)
        try:
            result = await run(lambda say: editor(str(path), instruction, progress=say, **kwargs))
            out = png(result)
        finally:
            path.unlink(missing_ok=True)
        if not wants_json(request):
            return Response(out, media_type="image/png", headers={"X-Lasso-Seed": str(result.seed)})
        summary = result.summary()
        return {**summary, "image": b64(out), "mask": b64(mask_png(result.alpha))}

    @app.post("/v1/plan")
    async def plan_route(
        image: UploadFile = File(...),
        instruction: str = Form(""),
        parser: str | None = Form(None),
        grounder: str | None = Form(None),
        plan: str | None = Form(None),
        corrections: str | None = Form(None),
    ):
        """The dry run: what Lasso understood, the boxes, and SAM's candidate masks, nothing painted.
        With `plan` and `corrections`, the masks the corrected edit would paint."""
        kwargs = options(parser=parser, grounder=grounder, plan=plan, corrections=corrections)
        path = await receive(image)
        try:
            result = await run(lambda say: editor(str(path), instruction, dry_run=True, progress=say, **kwargs))
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
        d.update(can_undo=session.can_undo, can_redo=session.can_redo, path=[s.id for s in session.path_to()])
        return d

    @app.get("/v1/sessions")
    def list_sessions(request: Request, limit: int = 20):
        """The most recently used sessions, newest first: id, created, touched, the current step, the
        number of steps and the last instruction. A session id is the key to its photos, so a server
        without an API key lists them only to its own machine (loopback)."""
        if not settings.api_key and not guards.is_loopback(request.client.host if request.client else ""):
            raise StarletteHTTPException(
                403,
                "listing sessions needs --api-key on a server shared beyond this "
                "machine (each session's own link still works)",
            )
        if not 1 <= limit <= 100:
            raise InvalidInputError(f"limit must be in 1..100, got {limit}")
        return {"sessions": store.recent(limit)}

    @app.get("/v1/sessions/{sid}")
    def get_session(sid: str):
        return session_json(store.get(sid))

    @app.post("/v1/sessions/{sid}/plan")
    async def session_plan(
        request: Request,
        sid: str,
        instruction: str = Form(""),
        parser: str | None = Form(None),
        grounder: str | None = Form(None),
        plan: str | None = Form(None),
        corrections: str | None = Form(None),
    ):
        """A preview of the next step on the current image: the plan and masks, nothing painted. With
        `Prefer: respond-async`: 202 and a job to poll, whose messages say what runs (the first one
        also which model loads: minutes on a first run)."""
        kwargs = options(parser=parser, grounder=grounder, plan=plan, corrections=corrections)
        session = store.get(sid)

        def work(say):
            return editor(str(session.image()), instruction, dry_run=True, progress=say, **kwargs)

        if wants_async(request):
            job = start_job(work, lambda result: _plan_json(result, mask_png, b64))
            return JSONResponse(
                job.to_dict(position=position(job)), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
            )
        return _plan_json(await run(work), mask_png, b64)

    @app.post("/v1/sessions/{sid}/edit")
    async def session_edit(
        request: Request,
        sid: str,
        instruction: str = Form(""),
        seed: int | None = Form(None),
        steps: int | None = Form(None),
        guidance: float | None = Form(None),
        parser: str | None = Form(None),
        grounder: str | None = Form(None),
        plan: str | None = Form(None),
        corrections: str | None = Form(None),
    ):
        """Apply an instruction (or a previewed `plan`, with `corrections`) to the current image. With
        `Prefer: respond-async`: 202 and a job to poll for progress (Location: /v1/jobs/{id})."""
        kwargs = options(seed, steps, guidance, parser, grounder, plan, corrections)
        session = store.get(sid)

        def work(say):
            return session.apply(editor, instruction, progress=say, **kwargs)

        if wants_async(request):
            job = start_job(work, lambda _: session_json(session))
            return JSONResponse(
                job.to_dict(position=position(job)), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
            )
        await run(work)
        return session_json(session)

    published: dict[str, float] = {}

    def publish(job: Job, now: bool = False) -> None:
        """A shared store's copy of the job, for the other replicas' polls (progress at most 4 times a second)."""
        if shared_jobs is None or (not now and time.monotonic() - published.get(job.id, 0.0) < 0.25):
            return
        published[job.id] = time.monotonic()
        if job.finished:
            published.pop(job.id, None)
        text = json.dumps(job.to_dict()).encode()
        try:
            write_atomic(shared_jobs / f"{job.id}.json", lambda f: f.write(text))
        except OSError:  # a full or gone disk: this replica still answers its own polls
            pass

    @app.get("/v1/jobs/{jid}")
    def get_job(jid: str):
        job = background.get(jid)
        if job is not None:
            return job.to_dict(position=position(job))
        if shared_jobs is not None and re.fullmatch(r"[A-Za-z0-9_-]{22}", jid):  # another replica's
            try:
                found = json.loads((shared_jobs / f"{jid}.json").read_text())
                if not found.get("finished") or time.time() - found["finished"] <= JOBS_KEPT_S:
                    return found
            except (OSError, ValueError):
                pass
        raise JobNotFoundError("no such job (unknown, or finished over 15 minutes ago)")

    def position(job: Job) -> int:
        """Edits ahead of a queued job: the running one and the background jobs queued before it
        (a synchronous request waiting in the queue is not counted)."""
        ahead = sum(1 for j in background.values() if j.state == "queued" and j.created < job.created)
        return ahead + jobs.running

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

    @app.post("/v1/sessions/{sid}/go")
    def go(sid: str, step: int = Form(...)):
        """Make any step of any branch current (0 = the original)."""
        session = store.get(sid)
        session.go(step)
        return session_json(session)

    @app.get("/v1/sessions/{sid}/image")
    def session_image(sid: str, step: int | None = None, view: bool = False):
        """The image at `step` (default: the current one) as stored: the upload byte for byte for step 0,
        a lossless PNG after. `view=true`: in a format browsers show (a TIFF upload as PNG)."""
        session = store.get(sid)
        path = session.view(step) if view else session.image(step)
        return stored_file(path, f"{sid[:8]}-step-{session.cursor if step is None else step}")

    @app.get("/v1/sessions/{sid}/mask")
    def session_mask(sid: str, step: int | None = None):
        """The mask of a step (white where it may have changed pixels); none for the original."""
        session = store.get(sid)
        path = session.mask(step)
        if path is None:
            raise InvalidInputError("the original has no mask; ask for a step from 1 on")
        return stored_file(path, f"{sid[:8]}-mask-{session.cursor if step is None else step}")

    def stored_file(path: Path, stem: str) -> FileResponse:
        """A stored image with the type of what it decodes as (never of its name), so a file that
        is not an image is a download, not a page; nosniff is on every response (guard)."""
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

    add_page(app)

    @app.delete("/v1/sessions/{sid}", status_code=204)
    def delete_session(sid: str):
        store.delete(sid)
        return Response(status_code=204)

    return app


def _own_uploads(root: Path, instance: str) -> Path:
    """This instance's folder under a shared uploads folder; those of instances gone a day are removed."""
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    for other in root.iterdir():
        if other.is_dir() and time.time() - other.stat().st_mtime > 24 * 3600:
            shutil.rmtree(other, ignore_errors=True)
    return root / re.sub(r"[^A-Za-z0-9._-]+", "_", instance)


def _plan_json(result, mask_png, b64) -> dict[str, Any]:
    """The plan as `lasso plan --json` prints it, plus the boxes, the masks and SAM's candidates.

    `describe`: each edit in words; `plan`: the whole plan, to send back with corrections or to
    apply; `masks`: what each edit would paint; `candidates` / `candidate_scores` / `chosen`: SAM's
    alternatives for each edit (empty where an edit is not segmented: whole-image and added objects);
    `heatmaps`: where the VLM looked for each edit's target (a see-through PNG), or null where its
    attention was not read."""
    out = {
        "edits": [e.brief() for e in result.plan.edits],
        "source": result.plan.source,
        "warnings": list(result.warnings),
        "groundings": [g.to_dict() if g else None for g in result.groundings],
    }
    summary = result.summary()  # the record a local dry run prints and writes (`lasso edit --server --dry-run`)
    out.update({k: summary[k] for k in ("steps", "seed", "timings", "models", "changed_pixels")})
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


def heat_png(heat) -> bytes:
    """Where the VLM looked, as a see-through PNG at the heatmap's own resolution (the page scales it)."""
    import numpy as np
    from PIL import Image

    from ..overlay import heat_colors

    m = heat.render()
    rgba = np.dstack([heat_colors(m), np.round(255 * 0.6 * (0.25 + 0.75 * m)).astype(np.uint8)])
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()
