"""The page at `/`: plain HTML, CSS and JS shipped in the package (static/), no CDN, no build step.

The page calls the same /v1 API as any client (docs/decisions.md, "The page"); it is served
without the API key, and asks for the key when the API answers 401.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(__file__).with_name("static")
FILES = {"app.js": "text/javascript", "app.css": "text/css", "favicon.svg": "image/svg+xml"}


def render_index() -> str:
    """index.html with its lists written from the registries: a grounder registered is offered."""
    from ..core.registry import GROUNDERS

    options = "\n".join(
        f'            <option value="{html.escape(name)}">{html.escape(label)}</option>'
        for name, label in GROUNDERS.labels().items()
    )
    marker = "            <!-- GROUNDERS: written by server/page.py from registry.GROUNDERS -->"
    return (STATIC / "index.html").read_text(encoding="utf-8").replace(marker, options)


def add_page(app: FastAPI) -> None:
    """Routes for the page: `/` and its few files by exact name (no path is built from the request)."""

    page = render_index()

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        from fastapi import HTTPException

        if name not in FILES:
            raise HTTPException(404, "no such file")
        return FileResponse(STATIC / name, media_type=FILES[name], headers={"Cache-Control": "no-cache"})
