"""The API's routes, a router per resource. A new route is a function in one of these (or a new
module listed here), its test, and the page's script if the page calls it (CONTRIBUTING.md)."""

from __future__ import annotations

from . import contain, edits, jobs, openai, sessions, system

ROUTERS = [system.router, edits.router, contain.router, sessions.router, jobs.router, openai.router]
