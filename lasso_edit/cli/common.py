"""What every command shares: the error guard (one line, an exit code, no traceback), warnings
said once, progress, the first model download's notice."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Optional, TextIO

import typer

from .core import _closed_pipe, _stop_signal

if TYPE_CHECKING:
    from ..ground.attention import AttentionSettings
    from ..pipeline.editor import Editor


def _attention(layers: Optional[str]) -> Optional[AttentionSettings]:
    """--attention-layers -> AttentionSettings, or None for the defaults."""
    if layers is None:
        return None
    from ..ground.attention import AttentionSettings

    return AttentionSettings(layers=AttentionSettings.parse_layers(layers))


def _quiet_libraries(downloads_shown: bool = False) -> None:
    """Libraries' chatter off. `downloads_shown`: the Hub's download bars (bytes, per file) and the
    loaders' progress stay on, for a first run on a terminal."""
    if not downloads_shown:
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    warnings.showwarning = _warning_line


_said: set[str] = set()


def _warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Optional[TextIO] = None,
    line: Optional[str] = None,
) -> None:
    """Any Python warning a library raises: one line on stderr, like Lasso's own, each text once
    (not the default's file, line number and source line)."""
    text = " ".join(str(message).split()) or category.__name__
    if len(text) > 300:
        text = text[:297] + "..."
    if text not in _said:
        _said.add(text)
        typer.echo(f"warning: {text}", err=True)


def one_line(text: str) -> str:
    """A message on one line: a newline or other control character (in a file name, say) is shown
    escaped, as repr() would, instead of breaking the line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


@contextmanager
def _guard(debug: bool, cleanup: list[Path] | None = None) -> Iterator[None]:
    """Turn Lasso's errors into one line and an exit code; remove partial outputs on failure."""
    from ..core.errors import LassoError

    try:
        yield
    except typer.Exit:
        raise
    except BaseException as e:
        if _closed_pipe(e):  # `lasso models | head -1`: main() ends every command the same way
            raise
        for p in cleanup or []:
            try:
                p.unlink()
            except OSError:
                pass
        if debug:
            raise
        from ..core.errors import sentence, storage_error

        if not isinstance(storage_error(e) or e, LassoError):
            stop = _stop_signal(e)
            if stop is not None:
                _fail(*stop)
        _fail(*sentence(e))


def _need_extra(extra: str, command: str, *needs: tuple[str, str]) -> None:
    """Bad input (exit 2) before any work when a module of `extra` that the command's documented
    outputs need is missing: said, never skipped silently."""
    import importlib.util

    from ..core.errors import InvalidInputError

    missing = [f"{module} ({what})" for module, what in needs if importlib.util.find_spec(module) is None]
    if missing:
        raise InvalidInputError(
            f"{command} needs the {extra} extra: pip install 'lasso-edit[{extra}]' (missing: {', '.join(missing)})"
        )


def _say_chosen(preset: Any, quiet: bool) -> None:
    """`--preset auto` (the default) on a machine without CUDA: say once, before any model is looked
    for, that it runs the lite preset, with what it is and how to choose another."""
    from ..core.presets import AUTO, auto_notice, choose_preset, get_preset

    if quiet or preset != AUTO or choose_preset(AUTO) != "lite":
        return
    typer.echo(f"note: {auto_notice(get_preset('lite'))}", err=True)


def _first_use(editor: Editor, quiet: bool) -> None:
    """Models not in the cache yet are downloaded and loaded now, before the spinner starts, so the
    Hub's progress bars (bytes, per file; on a terminal) have the screen to themselves."""
    missing = editor.downloads_needed()
    if not missing:
        return
    if not quiet:
        from huggingface_hub import constants

        typer.echo(
            f"first use: downloading {', '.join(missing)} into {constants.HF_HUB_CACHE} "
            "(once; later runs load from there)",
            err=True,
        )
    editor.preload()


def _progress(quiet: bool) -> tuple[Optional[Callable[[str], None]], AbstractContextManager[Any]]:
    """A spinner on stderr showing the current step; a no-op when quiet or not a terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return None, _null_ctx()
    status = console.status("starting")
    return (lambda msg: status.update(msg)), status


@contextmanager
def _null_ctx() -> Iterator[None]:
    yield


def _warn(warnings: list[str]) -> None:
    from ..core.plan import Notice

    for w in dict.fromkeys(warnings):
        typer.echo(f"{Notice.of(w).label}: {one_line(w)}", err=True)


def _ray_only(ray: Optional[str], **given: Optional[float]) -> None:
    """Options that shape a Ray run, given without --ray: bad input, not silently ignored."""
    named = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
    if ray is None and named:
        from ..core.errors import InvalidInputError

        raise InvalidInputError(f"{', '.join(named)} {'applies' if len(named) == 1 else 'apply'} only with --ray")
