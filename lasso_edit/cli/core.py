"""The typer app, its entry point (`main`) and how a stop signal or a usage error ends a run."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from types import FrameType
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:  # typer's own click (it vendors one), whose classes the app's group extends
    from typer._click import Command, Context

ORDER = ["edit", "batch", "eval", "plan", "verify", "serve", "train", "models"]


class _Group(typer.core.TyperGroup):
    def parse_args(
        self, ctx: Context, args: list[str]
    ) -> list[str]:  # `--ray` with or without its address (see _ray_argv)
        return super().parse_args(ctx, _ray_argv(list(args)))

    def list_commands(
        self, ctx: Context
    ) -> list[str]:  # the help's order: the order a user meets them, not the alphabet's
        names = super().list_commands(ctx)
        return [n for n in ORDER if n in names] + [n for n in names if n not in ORDER]


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    help="Lasso: edit a photo from a plain-language instruction (VLM -> SAM -> inpainting).",
    pretty_exceptions_enable=False,
)


RAY_ANY = "-"  # `--ray` with no address: the running cluster, or a new local one


_RAY_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[\w.-]+:\d+)$")


def _ray_argv(argv: list[str]) -> list[str]:
    """`--ray` takes an optional address: `--ray` alone becomes `--ray=-`; `--ray ADDRESS` (auto,
    local, HOST:PORT, ray://...) becomes `--ray=ADDRESS`; anything else after it is left alone."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--ray":
            if i + 1 < len(argv) and _RAY_ADDRESS.fullmatch(argv[i + 1]):
                out.append(f"--ray={argv[i + 1]}")
                i += 2
                continue
            out.append(f"--ray={RAY_ANY}")
        else:
            out.append(argv[i])
        i += 1
    return out


class Terminated(BaseException):
    """SIGTERM (kill, timeout, docker stop, CI), raised where the program is, like Ctrl-C."""


def _on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    raise Terminated()


def _chain(e: BaseException | None) -> Iterator[BaseException]:
    """`e`, then what it was raised from or while handling, and so on: a library may wrap the
    exception that says what happened (a callback run from C++, an import hook, a pipe's SystemExit)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _stop_signal(e: BaseException | None) -> tuple[str, int] | None:
    """(message, exit code) when `e` is, or was raised because of, SIGTERM or Ctrl-C (the chain of
    causes is searched too)."""
    for cause in _chain(e):
        if isinstance(cause, Terminated):
            return "terminated; no output was written", 143
        if isinstance(cause, KeyboardInterrupt):
            return "interrupted; no output was written", 130
    return None


def _command() -> Command:
    """The click command behind `app`, with `--help` shown as the flag it is (no `<bool>` type)."""
    command = typer.main.get_command(app)
    for cmd in (command, *getattr(command, "commands", {}).values()):
        help_option = cmd.get_help_option(cmd.context_class(cmd))
        if help_option is not None:
            help_option.metavar = ""
    return command


CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `seq 1000000 | head -1`, as 130 and 143 are for stops


def _reader_gone() -> bool | None:
    """Whether stdout is a pipe or socket whose reader has closed it (None where poll() is missing)."""
    import select

    if not hasattr(select, "poll"):  # Windows
        return None
    poller = select.poll()
    poller.register(1, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _closed_pipe(e: BaseException) -> bool:
    """Whether `e` is how a run ended because stdout's reader went away (`lasso models | head -1`):
    the BrokenPipeError itself, or the SystemExit(1) that click and rich answer it with (rich first puts
    /dev/null in stdout's place). A broken socket (a VLM server gone) is an error like any other."""
    if not isinstance(e, (BrokenPipeError, SystemExit)):
        return False
    gone = _reader_gone()
    if gone:
        return True
    if not any(isinstance(cause, BrokenPipeError) for cause in _chain(e)):
        return False
    try:
        return gone is None or os.path.samestat(os.fstat(1), os.stat(os.devnull))
    except OSError:
        return False


def main() -> None:  # console-script entry point
    """`lasso`. A closed stdout pipe ends any command here, the one place: no message (the reader has
    what it wanted) and exit 141, as for a command SIGPIPE ends."""
    try:
        code = _main()
    except BaseException as e:
        if not _closed_pipe(e):
            raise
        try:  # what is still buffered goes nowhere, not into "Exception ignored" at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        except OSError:
            pass
        code = CLOSED_PIPE
    sys.exit(code)


def _main() -> int:
    """The command's exit code; usage errors and stops said in one line."""
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)  # temporary files are removed, as on Ctrl-C
    try:
        code = _command()(standalone_mode=False)
        if sys.stdout is not None:  # None when the shell closed it (`lasso models >&-`): nothing to flush
            sys.stdout.flush()  # a closed pipe shows here, in main(), not at the interpreter's exit
    except (Terminated, KeyboardInterrupt) as e:  # outside a command's guard: before or after its work
        message, code = _stop_signal(e) or ("interrupted", 130)
        typer.echo(f"error: {message}", err=True)
        return code
    except Exception as e:  # noqa: BLE001 - click's exceptions (typer vendors its own click): by their shape
        kind = type(e).__name__
        if kind == "NoArgsIsHelpError":  # `lasso` alone: the help
            typer.echo(getattr(e, "format_message")(), err=True)  # noqa: B009 - click's, by shape
            return 2
        if kind == "Abort":
            typer.echo("error: aborted", err=True)
            return 1
        if not (hasattr(e, "format_message") and isinstance(getattr(e, "exit_code", None), int)):
            raise
        ctx = getattr(e, "ctx", None)  # usage errors: one line, like every Lasso error
        command = f" {ctx.info_name}" if ctx is not None and ctx.parent is not None else ""
        exit_code: int = getattr(e, "exit_code")  # noqa: B009 - click's, checked above
        hint = f" (see `lasso{command} --help`)" if exit_code == 2 else ""
        typer.echo(f"error: {' '.join(getattr(e, 'format_message')().split())}{hint}", err=True)  # noqa: B009
        return exit_code
    return code if isinstance(code, int) else 0
