"""Errors as the HTTP API answers them: JSON `{"detail": "...", "exit_code": N}` in Lasso's words,
never a traceback, the server's own paths scrubbed. `answer()` maps an exception to its status;
`install()` sets the app's handlers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core.errors import (
    ImageTooLargeError,
    InvalidInputError,
    LassoError,
    ModelUnavailableError,
    Scrubber,
    StorageError,
    TargetNotFoundError,
    UnreadableImageError,
    storage_error,
)
from ..sessions.session import SessionNotFoundError
from .jobs import Cancelled, QueueFull, QueueTimeout


class JobNotFoundError(LassoError):
    """No job with that id (never made, or finished long ago)."""

    exit_code = 2


def status_of(e: BaseException) -> int:
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


def answer(e: BaseException) -> tuple[int, str, int | None, int | None]:
    """(HTTP status, detail, exit code, Retry-After) for an error a route or a job raised."""
    e = storage_error(e, "the server's disk") or e  # a full disk where a library wrote
    if isinstance(e, LassoError):
        return status_of(e), str(e), e.exit_code, None
    if isinstance(e, QueueFull):
        return 429, f"{e}; try again shortly", None, 5
    if isinstance(e, QueueTimeout):
        return 503, f"{e}; the server is busy, try again shortly", None, 30
    if isinstance(e, Cancelled):
        return 503, str(e), None, 30
    return 500, f"internal error ({type(e).__name__}); the server log has the details", None, None


OPENAI_PATHS = "/v1/images/"  # answered in OpenAI's error shape, for its clients
_OPENAI_TYPES = {401: "authentication_error", 429: "rate_limit_error"}


def error(
    scrub: Scrubber,
    status: int,
    detail: str,
    retry_after: int | None = None,
    exit_code: int | None = None,
    path: str = "",
    param: str | None = None,
) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    if path.startswith(OPENAI_PATHS):  # {"error": {"message", "type", "param", "code"}}
        kind = _OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
        shaped = {"error": {"message": scrub(detail), "type": kind, "param": param, "code": None}}
        return JSONResponse(shaped, status_code=400 if status == 422 else status, headers=headers)
    body: dict[str, Any] = {"detail": scrub(detail)}
    if exit_code is not None:  # what `lasso edit` would exit with: `lasso edit --server` does
        body["exit_code"] = exit_code
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI, scrub: Scrubber) -> None:
    """The app's exception handlers: every error a JSON answer."""

    async def known(request: Request, e: Exception) -> JSONResponse:
        status, detail, exit_code, retry_after = answer(e)
        return error(scrub, status, detail, retry_after, exit_code, request.url.path, getattr(e, "param", None))

    for kind in (LassoError, QueueFull, QueueTimeout, Cancelled):
        app.add_exception_handler(kind, known)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> JSONResponse:
        parts = [
            "{}: {}".format(".".join(str(x) for x in err.get("loc", ())[1:]) or "request", err.get("msg", ""))
            for err in e.errors()
        ]
        return error(scrub, 422, "; ".join(parts) or "invalid request", path=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return error(scrub, e.status_code, str(e.detail), path=request.url.path)

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception) -> JSONResponse:  # never a traceback to the client
        if storage_error(e) is not None:
            return await known(request, e)
        return error(
            scrub, 500, f"internal error ({type(e).__name__}); the server log has the details", path=request.url.path
        )
