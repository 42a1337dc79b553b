"""`lasso edit`: one photo, one instruction."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .common import _attention, _first_use, _guard, _progress, _quiet_libraries, _warn
from .core import app
from .options import (
    ADVANCED,
    ATTENTION_LAYERS_OPT,
    BOX_THRESHOLD_OPT,
    COMPILE_OPT,
    DEEPCACHE_OPT,
    DETECTOR_OPT,
    DEVICE_OPT,
    DTYPE_OPT,
    EDIT,
    GROUNDER_OPT,
    GUIDANCE_OPT,
    INPAINTER_OPT,
    LORA_OPT,
    LORA_SCALE_OPT,
    LOW_VRAM_OPT,
    MODELS,
    OUTPUTS,
    PARSER_OPT,
    PNG_COMPRESS_OPT,
    PRESET_OPT,
    RECOLOR_OPT,
    SEGMENTER_OPT,
    SKIP_UNKNOWN_OPT,
    STEPS_OPT,
    STRENGTH_OPT,
    VLM_API_KEY_OPT,
    VLM_OPT,
    in_panel,
)


@app.command()
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
    # Edit
    seed: Optional[int] = typer.Option(
        None, help="Random seed (printed and saved in the plan when not given).", rich_help_panel=EDIT
    ),
    steps: Optional[int] = in_panel(STEPS_OPT, EDIT),
    guidance: Optional[float] = in_panel(GUIDANCE_OPT, EDIT),
    strength: float = in_panel(STRENGTH_OPT, EDIT),
    recolor: str = in_panel(RECOLOR_OPT, EDIT),
    skip_unknown: bool = in_panel(SKIP_UNKNOWN_OPT, EDIT),
    # Models
    preset: str = in_panel(PRESET_OPT, MODELS),
    device: Optional[str] = in_panel(DEVICE_OPT, MODELS),
    dtype: Optional[str] = in_panel(DTYPE_OPT, MODELS),
    low_vram: bool = in_panel(LOW_VRAM_OPT, MODELS),
    vlm: Optional[str] = in_panel(VLM_OPT, MODELS),
    vlm_api_key: Optional[str] = in_panel(VLM_API_KEY_OPT, MODELS),
    segmenter: Optional[str] = in_panel(SEGMENTER_OPT, MODELS),
    inpainter: Optional[str] = in_panel(INPAINTER_OPT, MODELS),
    detector: Optional[str] = in_panel(DETECTOR_OPT, MODELS),
    lora: Optional[str] = in_panel(LORA_OPT, MODELS),
    lora_scale: Optional[float] = in_panel(LORA_SCALE_OPT, MODELS),
    # Advanced
    parser: str = in_panel(PARSER_OPT, ADVANCED),
    grounder: Optional[str] = in_panel(GROUNDER_OPT, ADVANCED),
    attention_layers: Optional[str] = in_panel(ATTENTION_LAYERS_OPT, ADVANCED),
    box_threshold: Optional[float] = in_panel(BOX_THRESHOLD_OPT, ADVANCED),
    compile: bool = in_panel(COMPILE_OPT, ADVANCED),
    deepcache: int = in_panel(DEEPCACHE_OPT, ADVANCED),
    server: Optional[str] = typer.Option(
        None,
        "--server",
        help="Send the edit to a running `lasso serve` at this URL (model options are then the server's).",
        rich_help_panel=ADVANCED,
    ),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="LASSO_API_KEY", help="The server's API key.", rich_help_panel=ADVANCED
    ),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks.", rich_help_panel=ADVANCED),
):
    """Edit IMAGE as INSTRUCTION says and write the result to -o.

    \b
    Examples:
      lasso edit photo.jpg "make the car red" -o out.png
      lasso edit photo.jpg "remove the dog, blur the background" -o out/ -p fast
      lasso edit photo.jpg "make the sky stormy" --dry-run --mask-out mask.png
    """
    _quiet_libraries(downloads_shown=not quiet and sys.stderr.isatty())
    with _guard(debug):
        from ..core.errors import InvalidInputError
        from ..imaging import check_outputs, output_mode
        from ..pipeline.inputs import check_inputs

        # 1. Check every input and output before loading a model (the editor's own first step).
        checked = check_inputs(image, instruction, seed=seed, steps=steps, guidance=guidance, strength=strength)
        loaded = checked.loaded
        if output is None and not dry_run:
            raise InvalidInputError("no output path: pass -o OUT.png (or --dry-run)")
        if output is not None and output.is_dir():  # a folder: the input's name, edited, as lossless PNG
            output = output / f"{image.stem}-edited.png"
        check_outputs(output, mask_out, plan_out, image, mode=output_mode(loaded), size=loaded.size)
        from ..parse.unknown import set_aside

        set_aside(instruction, skip_unknown)  # a part Lasso cannot do stops it here, before a model loads
        if server is not None:  # 2'. a shared server does the work
            from ..client import remote_edit

            remote_edit(
                server,
                api_key,
                image,
                instruction,
                checked,
                output,
                mask_out,
                plan_out,
                png_compress,
                dry_run,
                quiet,
                skip_unknown=skip_unknown,
            )
            return
        # 2. Build the editor (fails fast on unavailable models) and run.
        from ..core.config import EditorConfig
        from ..pipeline.editor import Editor

        config = EditorConfig.from_params(locals(), attention=_attention(attention_layers), paint=not dry_run)
        editor = Editor.from_config(config)
        _first_use(editor, quiet)
        say, status = _progress(quiet)
        with status:
            result = editor(
                loaded, instruction, dry_run=dry_run, progress=say, skip_unknown=skip_unknown, **checked.settings()
            )
        # 3. Write every output to a temporary file, then rename them together: if one fails,
        # whatever was there before stays as it was.
        from ..pipeline.outputs import write_and_prove

        warnings = list(result.warnings) + write_and_prove(result, output, mask_out, plan_out, png_compress, dry_run)
        _warn(warnings)
        if quiet:
            typer.echo(result.seed)  # the one thing needed to reproduce the edit
        else:
            from ..pipeline.outputs import report_lines

            typer.echo("\n".join(report_lines(result.summary(), output if not dry_run else None, dry_run)))
