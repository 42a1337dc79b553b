"""What keeps a server's answers from being used by another web site, and its requests within bounds.

- `cross_site`: a server without an API key takes changes (POST, DELETE) only from a Host it
  knows (an IP address, localhost, this machine's own names, or --allow-host) and, when the
  browser says where the request comes from (Origin), only from the same origin. A page on
  another site can neither post a form to it (cross-site request forgery) nor rebind its own
  name to 127.0.0.1 and drive it from script (DNS rebinding): the Host header then carries the
  other site's name. A server with an API key is guarded by the key instead.
- `secure_headers`: nothing is sniffed into another type (nosniff) and the page is not framed.
- `BodyLimit`: an ASGI middleware that counts the body's bytes as they arrive and answers 413 at
  the limit, chunked uploads (no Content-Length) included, before anything is spooled to disk;
  request headers over HEADER_LIMIT get 431.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER_LIMIT = 64 * 1024  # bytes of request headers, all together (nginx's default is 8-32 KB)

# The page: its own scripts and styles only, images from itself and the data: / blob: URLs it
# makes, and no framing (clickjacking). /docs (FastAPI's Swagger UI, from a CDN) is not the page.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def trusted_hosts(extra: tuple[str, ...] | list[str] = ()) -> set[str]:
    names = {"localhost", socket.gethostname().lower(), socket.getfqdn().lower()}
    return names | {h.lower().rstrip(".") for h in extra}


def _host_name(host: str) -> str:
    """The name in a Host header, without the port: "[::1]:7860" -> "::1", "Box:80" -> "box"."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") == 1 else host.rstrip(".")


def is_loopback(host: str) -> bool:
    """Whether a client address is this machine's own (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cross_site(headers: Mapping[str, str], trusted: set[str]) -> str | None:
    """Why a change request to a keyless server is refused, or None when it may go on."""
    host = headers.get("host", "")
    name = _host_name(host)
    if "*" not in trusted and name not in trusted:
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return (
                f"this server answers changes for its own addresses only, not for the host name {name!r} "
                "(start it with --allow-host NAME, or with --api-key)"
            )
    origin = headers.get("origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != host.strip().lower()):
        return "a page of another origin may not change anything here (start the server with --api-key to allow it)"
    return None


def secure_headers(headers: MutableHeaders, page: bool = False) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if page:
        headers.setdefault("Content-Security-Policy", PAGE_CSP)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")


class BodyLimit:
    """ASGI middleware: requests whose body passes `max_bytes` (counted as it arrives) get 413 and
    the connection is closed; the app's own answer, if it started one, is dropped."""

    def __init__(self, app: ASGIApp, max_bytes: int, limit_mb: float) -> None:
        self.app, self.max_bytes, self.limit_mb = app, max_bytes, limit_mb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if sum(len(k) + len(v) for k, v in scope.get("headers", ())) > HEADER_LIMIT:
            return await _answer(send, 431, f"the request's headers are over {HEADER_LIMIT // 1024} KB")
        seen, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise _Over()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # the app answered the broken body; ours goes instead
            started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except _Over:
            pass
        except Exception:
            if not over:
                raise
        if over and not started:
            await _answer(send, 413, f"the upload is over the {self.limit_mb:g} MB limit")


class _Over(Exception):
    pass


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
