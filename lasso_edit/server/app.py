"""The HTTP API (FastAPI): one editor, its models loaded once and kept warm, behind one bounded queue.

    create_app(ServerSettings(preset="tiny", data_dir="~/.cache/lasso/serve"))   # `lasso serve` runs this

Routes (OpenAPI at /docs): GET / (the page, page.py); GET /healthz; GET /v1/models; POST /v1/edit;
POST /v1/plan; POST /v1/contain (another app's edit kept to its region, no model); sessions: POST
/v1/sessions, GET /v1/sessions/{id}, POST /v1/sessions/{id}/plan, /edit, /undo, /redo, /go, GET
/v1/sessions/{id}/image?step=N, /mask?step=N, DELETE /v1/sessions/{id}; GET /v1/jobs/{id}.

The edit and plan routes take optional form fields beside the image and instruction (forms.py):
`seed`, `steps`, `guidance`, `parser`, `grounder`, `plan` and `corrections`.

Layout: this module makes the app (its guard middleware, error handlers and routers); settings.py
(ServerSettings), service.py (the editor, sessions, queue and jobs every route shares), routes/ (a
router per resource: system, edits, contain, sessions, jobs, openai), forms.py (the form fields as
pydantic models), answers.py (PNG and JSON answers), errors.py (exceptions -> status and JSON),
guards.py, jobs.py, page.py.

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

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request  # the serve extra; this package is its only user
from fastapi.responses import JSONResponse
from starlette.responses import Response

from . import errors, guards
from .page import add_page
from .routes import ROUTERS
from .service import Service
from .settings import ServerSettings

if TYPE_CHECKING:
    from ..pipeline.editor import Editor

__all__ = ["ServerSettings", "create_app"]


def create_app(settings: ServerSettings, editor: Editor | None = None) -> FastAPI:
    """The FastAPI app. `editor`: an Editor to use (default: one built from `settings.editor_config()`)."""
    srv = Service(settings, editor)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        srv.jobs.close()  # the running edit finishes; the waiting ones are cancelled

    app = FastAPI(
        title="Lasso",
        version="0.1.0",
        lifespan=lifespan,
        description="Edit a photo from a plain-language instruction; pixels outside the mask stay bit-identical.",
    )
    app.state.service = srv
    app.state.editor, app.state.store, app.state.jobs = srv.editor, srv.store, srv.jobs
    app.state.settings = settings
    app.add_middleware(guards.BodyLimit, max_bytes=srv.max_bytes, limit_mb=settings.max_upload_mb)
    errors.install(app, srv.scrub)
    trusted_hosts = guards.trusted_hosts(settings.allowed_hosts)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path

        def refuse(status: int, detail: str) -> JSONResponse:
            return errors.error(srv.scrub, status, detail, path=path)

        if settings.api_key and path.startswith("/v1/"):
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode()):
                return refuse(401, "missing or wrong API key: send 'Authorization: Bearer KEY'")
        elif not settings.api_key and request.method not in ("GET", "HEAD", "OPTIONS"):
            refused = guards.cross_site(request.headers, trusted_hosts)  # DNS rebinding, another site's form
            if refused:
                return refuse(403, refused)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > srv.max_bytes:
            return refuse(
                413, f"the request is {int(length) / 2**20:.1f} MB; the limit is {settings.max_upload_mb:g} MB"
            )
        response = await call_next(request)
        if settings.instance:
            response.headers["X-Lasso-Replica"] = settings.instance
        guards.secure_headers(response.headers, page=path == "/")
        return response

    for router in ROUTERS:
        app.include_router(router)
    add_page(app)
    return app
