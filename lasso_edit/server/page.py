"""The page at `/`: plain HTML, CSS and JS shipped in the package (static/), no CDN, no build step.

The page calls the same /v1 API as any client (docs/decisions.md, "The page"); it is served
without the API key, and asks for the key when the API answers 401.
"""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import FileResponse

STATIC = Path(__file__).with_name("static")
FILES = {"app.js": "text/javascript", "app.css": "text/css", "favicon.svg": "image/svg+xml"}


def add_page(app) -> None:
    """Routes for the page: `/` and its few files by exact name (no path is built from the request)."""

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        from fastapi import HTTPException

        if name not in FILES:
            raise HTTPException(404, "no such file")
        return FileResponse(STATIC / name, media_type=FILES[name], headers={"Cache-Control": "no-cache"})
