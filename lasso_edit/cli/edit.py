"""`lasso edit`: one photo, one instruction."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Optional

import typer

from .common import _attention, _first_use, _guard, _progress, _quiet_libraries, _say_chosen, _warn
from .core import app
from .options import (
    ADVANCED,
    DEBUG_OPT,
    EDIT,
    MODELS,
    OUTPUTS,
    PNG_COMPRESS_OPT,
    AdvancedOptions,
    CredentialOptions,
    EditOptions,
    ModelOptions,
    group,
    in_panel,
    params_of,
    with_groups,
)

if TYPE_CHECKING:
    from ..core.config import Credentials
    from ..pipeline.inputs import CheckedInputs
    from ..pipeline.result import EditResult


@app.command()
@with_groups
def edit(
    image: Path = typer.Argument(..., help="Input image (any format Pillow reads)."),
    instruction: str = typer.Argument(..., help='What to change, e.g. "make the car red".'),
    # Outputs
    output: Optional[Path] = typer.Option(
        None,
        "-o",
        "--output",
        help="Where to write the edited image (a folder: NAME-edited.png in it). Required unless --dry-run.",
        rich_help_panel=OUTPUTS,
    ),
    mask_out: Optional[Path] = typer.Option(
        None, "--mask-out", help="Write the compositing mask as PNG (0 = untouched).", rich_help_panel=OUTPUTS
    ),
    plan_out: Optional[Path] = typer.Option(
        None, "--plan-out", help="Write the plan and run record as JSON.", rich_help_panel=OUTPUTS
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        metavar="",
        help="Stop before painting: write the plan and mask only.",
        rich_help_panel=OUTPUTS,
    ),
    png_compress: int = in_panel(PNG_COMPRESS_OPT, OUTPUTS),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        metavar="",
        help="Print only the seed (on stdout, to reproduce the edit); warnings and errors still go to stderr.",
        rich_help_panel=OUTPUTS,
    ),
    signing: CredentialOptions = group(CredentialOptions, OUTPUTS),
    # Edit
    seed: Optional[int] = typer.Option(
        None, help="Random seed (printed and saved in the plan when not given).", rich_help_panel=EDIT
    ),
    options: EditOptions = group(EditOptions, EDIT),
    models: ModelOptions = group(ModelOptions, MODELS),
    advanced: AdvancedOptions = group(AdvancedOptions, ADVANCED),
    server: Optional[str] = typer.Option(
        None,
        "--server",
        help="Send the edit to a running `lasso serve` at this URL (model options are then the server's).",
        rich_help_panel=ADVANCED,
    ),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="LASSO_API_KEY", help="The server's API key.", rich_help_panel=ADVANCED
    ),
    debug: bool = in_panel(DEBUG_OPT, ADVANCED),
) -> None:
    """Edit IMAGE as INSTRUCTION says and write the result to -o.

    \b
    Examples:
      lasso edit photo.jpg "make the car red" -o out.png
      lasso edit photo.jpg "remove the dog, blur the background" -o out/ -p fast
      lasso edit photo.jpg "make the sky stormy" --dry-run --mask-out mask.png
    """
    _quiet_libraries(downloads_shown=not quiet and sys.stderr.isatty())
    with _guard(debug):
        # 1. Check every input and output before loading a model (the editor's own first step).
        checked, output = _check(image, instruction, output, mask_out, plan_out, dry_run, seed, options)
        outputs = _Outputs(output, mask_out, plan_out, png_compress, dry_run)
        credentials = signing.credentials() if not dry_run else None  # who signs, checked before any model
        if server is not None:  # 2'. a shared server does the work
            from ..client import remote_edit

            skip = options.skip_unknown
            remote_edit(server, api_key, image, instruction, checked, *outputs, quiet, skip, credentials)
            return
        # 2. Build the editor (fails fast on unavailable models) and run.
        result = _run(checked, instruction, options, models, advanced, dry_run, quiet)
        # 3. Write every output and say what was done.
        _write_and_report(result, outputs, quiet, credentials)


class _Outputs(NamedTuple):
    """Where `lasso edit` writes, and how (in the order remote_edit takes them)."""

    output: Optional[Path]
    mask_out: Optional[Path]
    plan_out: Optional[Path]
    png_compress: int
    dry_run: bool


def _check(
    image: Path,
    instruction: str,
    output: Optional[Path],
    mask_out: Optional[Path],
    plan_out: Optional[Path],
    dry_run: bool,
    seed: Optional[int],
    options: EditOptions,
) -> tuple[CheckedInputs, Optional[Path]]:
    """The inputs and the outputs checked, and the output path (a folder: the input's name, edited,
    as lossless PNG in it); a part of the instruction Lasso cannot do stops it here, before a model loads."""
    from ..core.errors import InvalidInputError
    from ..imaging import check_outputs, output_mode
    from ..parse.unknown import set_aside
    from ..pipeline.inputs import check_inputs

    o = options
    checked = check_inputs(image, instruction, seed=seed, steps=o.steps, guidance=o.guidance, strength=o.strength)
    loaded = checked.loaded
    if output is None and not dry_run:
        raise InvalidInputError("no output path: pass -o OUT.png (or --dry-run)")
    if output is not None and output.is_dir():
        output = output / f"{image.stem}-edited.png"
    check_outputs(output, mask_out, plan_out, image, mode=output_mode(loaded), size=loaded.size)
    set_aside(instruction, o.skip_unknown)
    return checked, output


def _run(
    checked: CheckedInputs,
    instruction: str,
    options: EditOptions,
    models: ModelOptions,
    advanced: AdvancedOptions,
    dry_run: bool,
    quiet: bool,
) -> EditResult:
    """The editor built from the options (failing fast on unavailable models), run with a spinner."""
    from ..core.config import EditorConfig
    from ..pipeline.editor import Editor

    params = params_of(options, models, advanced)
    config = EditorConfig.from_params(params, attention=_attention(advanced.attention_layers), paint=not dry_run)
    _say_chosen(config.preset, quiet)
    editor = Editor.from_config(config)
    _first_use(editor, quiet)
    say, status = _progress(quiet)
    with status:
        return editor(
            checked.loaded,
            instruction,
            dry_run=dry_run,
            progress=say,
            skip_unknown=options.skip_unknown,
            seed=checked.seed,
            steps=checked.steps,
            guidance=checked.guidance,
            strength=checked.strength,
        )


def _write_and_report(
    result: EditResult, outputs: _Outputs, quiet: bool, credentials: Credentials | None = None
) -> None:
    """Every output written to a temporary file, then all renamed together (if one fails, whatever
    was there before stays as it was); the warnings, then the seed alone (quiet: the one thing
    needed to reproduce the edit) or the report."""
    from ..pipeline.outputs import report_lines, write_and_prove

    warnings = list(result.warnings) + write_and_prove(result, *outputs, credentials=credentials)
    _warn(warnings)
    if quiet:
        typer.echo(result.seed)
    else:
        shown = outputs.output if not outputs.dry_run else None
        typer.echo("\n".join(report_lines(result.summary(), shown, outputs.dry_run)))
