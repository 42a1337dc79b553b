"""The `lasso` command, a module per command: edit.py, plan.py, batch.py, eval.py, serve.py,
train.py, models.py, verify.py, contain.py, mcp.py; the app and its entry point in core.py, the shared options in options.py and
the error guard and progress in common.py. Heavy modules are imported inside the commands:
`lasso --help` is instant.

Exit codes: 0 ok, 2 bad input, 3 model unavailable, 4 target not found, 5 some batch items failed,
6 `lasso verify` found changes outside the mask, 130/143 Ctrl-C/SIGTERM, 141 stdout's reader went away
(`lasso models | head -1`: nothing said, as for a command SIGPIPE ends), 1 anything else.
Errors are one line on stderr; `--debug` shows the traceback.
"""

from __future__ import annotations

from . import batch, contain, edit, eval, mcp, models, plan, serve, train, verify  # noqa: F401 - each registers its command
from .common import _quiet_libraries, _said, one_line
from .core import RAY_ANY, Terminated, _ray_argv, _stop_signal, app, main
from .options import GROUNDER_OPT, PARSER_OPT

__all__ = [
    "GROUNDER_OPT",
    "PARSER_OPT",
    "RAY_ANY",
    "Terminated",
    "_quiet_libraries",
    "_ray_argv",
    "_said",
    "_stop_signal",
    "app",
    "main",
    "one_line",
]
