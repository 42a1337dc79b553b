"""The typer app, its entry point (`main`) and how a stop signal or a usage error ends a run."""

from __future__ import annotations

import os
import re
import sys

import typer

ORDER = ["edit", "batch", "eval", "plan", "verify", "serve", "train", "models"]


class _Group(typer.core.TyperGroup):
    def parse_args(self, ctx, args):  # `--ray` with or without its address (see _ray_argv)
        return super().parse_args(ctx, _ray_argv(list(args)))

    def list_commands(self, ctx):  # the help's order: the order a user meets them, not the alphabet's
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
            if i + 1 < len(argv) and _RAY_ADDRESS.match(argv[i + 1]):
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


def _on_sigterm(signum, frame):
    raise Terminated()


def _stop_signal(e: BaseException | None) -> tuple[str, int] | None:
    """(message, exit code) when `e` is, or was raised because of, SIGTERM or Ctrl-C.

    A library may wrap the exception our handler raised in its own (a callback run from C++, an
    import hook), so the chain of causes is searched too."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, Terminated):
            return "terminated; no output was written", 143
        if isinstance(e, KeyboardInterrupt):
            return "interrupted; no output was written", 130
        e = e.__cause__ or e.__context__
    return None


def _command():
    """The click command behind `app`, with `--help` shown as the flag it is (no `<bool>` type)."""
    command = typer.main.get_command(app)
    for cmd in (command, *getattr(command, "commands", {}).values()):
        help_option = cmd.get_help_option(cmd.context_class(cmd))
        if help_option is not None:
            help_option.metavar = ""
    return command


def main() -> None:  # console-script entry point
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)  # temporary files are removed, as on Ctrl-C
    try:
        code = _command()(standalone_mode=False)
    except (Terminated, KeyboardInterrupt) as e:  # outside a command's guard: before or after its work
        message, code = _stop_signal(e) or ("interrupted", 130)
        typer.echo(f"error: {message}", err=True)
        sys.exit(code)
    except BrokenPipeError:  # the reader went away (`lasso models | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except Exception as e:  # noqa: BLE001 - click's exceptions (typer vendors its own click): by their shape
        kind = type(e).__name__
        if kind == "NoArgsIsHelpError":  # `lasso` alone: the help
            typer.echo(getattr(e, "format_message")(), err=True)  # noqa: B009 - click's, by shape
            sys.exit(2)
        if kind == "Abort":
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        if not (hasattr(e, "format_message") and isinstance(getattr(e, "exit_code", None), int)):
            raise
        ctx = getattr(e, "ctx", None)  # usage errors: one line, like every Lasso error
        command = f" {ctx.info_name}" if ctx is not None and ctx.parent is not None else ""
        exit_code: int = getattr(e, "exit_code")  # noqa: B009 - click's, checked above
        hint = f" (see `lasso{command} --help`)" if exit_code == 2 else ""
        typer.echo(f"error: {' '.join(getattr(e, 'format_message')().split())}{hint}", err=True)  # noqa: B009
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else 0)
