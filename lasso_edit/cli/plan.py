"""`lasso plan`: what Lasso understood, before it paints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import _attention, _guard, _quiet_libraries, _warn
from .core import app
from .options import (
    ADVANCED,
    ATTENTION_LAYERS_OPT,
    BOX_THRESHOLD_OPT,
    DETECTOR_OPT,
    DEVICE_OPT,
    DTYPE_OPT,
    EDIT,
    GROUNDER_OPT,
    MODELS,
    OUTPUTS,
    PARSER_OPT,
    PRESET_OPT,
    SEGMENTER_OPT,
    SKIP_UNKNOWN_OPT,
    VLM_API_KEY_OPT,
    VLM_OPT,
    in_panel,
)


def _grounding_line(g) -> str:
    """How an edit's target was found, in one line for `lasso plan`."""
    boxes = "; ".join("[" + ", ".join(f"{v:.0f}" for v in b) + "]" for b in g.boxes) or "none"
    line = f"found by {g.source}: box {boxes}"
    if g.points:
        line += f", {g.labels.count(1)} points on it and {g.labels.count(0)} off it"
    if g.attention:
        k = int(max(range(len(g.attention)), key=g.attention.__getitem__))
        line += (
            f"; of {len(g.attention)} candidates the VLM looked most at #{k + 1} "
            f"({g.attention[k]:.0%} of its attention)"
        )
    return line


@app.command()
def plan(
    image: Path = typer.Argument(..., help="Input image."),
    instruction: str = typer.Argument(..., help="What to change."),
    # Outputs
    as_json: bool = typer.Option(
        False, "--json", metavar="", help="Print the plan as JSON on stdout.", rich_help_panel=OUTPUTS
    ),
    overlay: Optional[Path] = typer.Option(
        None, "--overlay", help="Draw boxes and masks over the image into this PNG.", rich_help_panel=OUTPUTS
    ),
    # Edit
    skip_unknown: bool = in_panel(SKIP_UNKNOWN_OPT, EDIT),
    # Models
    preset: str = in_panel(PRESET_OPT, MODELS),
    device: Optional[str] = in_panel(DEVICE_OPT, MODELS),
    dtype: Optional[str] = in_panel(DTYPE_OPT, MODELS),
    vlm: Optional[str] = in_panel(VLM_OPT, MODELS),
    vlm_api_key: Optional[str] = in_panel(VLM_API_KEY_OPT, MODELS),
    segmenter: Optional[str] = in_panel(SEGMENTER_OPT, MODELS),
    detector: Optional[str] = in_panel(DETECTOR_OPT, MODELS),
    # Advanced
    parser: str = in_panel(PARSER_OPT, ADVANCED),
    grounder: Optional[str] = in_panel(GROUNDER_OPT, ADVANCED),
    attention_layers: Optional[str] = in_panel(ATTENTION_LAYERS_OPT, ADVANCED),
    box_threshold: Optional[float] = in_panel(BOX_THRESHOLD_OPT, ADVANCED),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks.", rich_help_panel=ADVANCED),
):
    """Show what Lasso understood, without painting: edits, and with --overlay the boxes and masks.
    Needs no inpainting model."""
    _quiet_libraries()
    written: list[Path] = []
    with _guard(debug, written):
        from ..imaging import check_output_path, save_image
        from ..pipeline.inputs import check_inputs

        loaded = check_inputs(image, instruction).loaded
        attention = _attention(attention_layers)
        if overlay is not None:
            check_output_path(overlay, image)
        result = None
        if parser == "rules" and overlay is None:
            from ..parse.rules import RulesParser

            the_plan = RulesParser().parse(loaded.rgb, instruction, skip_unknown=skip_unknown)
        else:
            from ..core.config import EditorConfig
            from ..pipeline.editor import Editor

            config = EditorConfig.from_params(locals(), paint=False)
            editor = Editor.from_config(config)
            if overlay is None:
                from ..parse.unknown import parse_with

                the_plan = parse_with(editor.parser, loaded.rgb, instruction, skip_unknown=skip_unknown)
            else:
                result = editor(loaded, instruction, dry_run=True, skip_unknown=skip_unknown)
                the_plan = result.plan
                from ..pipeline.overlay import draw_overlay

                save_image(draw_overlay(loaded.rgb, result), overlay)
                written.append(overlay)
        if as_json:
            out = the_plan.brief(result.groundings if result is not None else None)
            typer.echo(json.dumps(out, indent=2))
        else:
            _warn(the_plan.warnings)
            typer.echo(f"plan from {the_plan.source}:")
            for i, e in enumerate(the_plan.edits, 1):
                extra = "".join(
                    f", {k} {v!r}"
                    for k, v in (("qualifier", e.qualifier), ("relation", e.relation), ("subject", e.subject))
                    if v
                )
                typer.echo(
                    f"{i}. {e.action.value}: target {e.target!r}, value {e.value!r}{extra}"
                    + (" (all instances)" if e.select_all else "")
                )
                g = result.steps[i - 1].grounding if result is not None and i <= len(result.steps) else None
                if g is not None:
                    typer.echo(f"   {_grounding_line(g)}")
            if overlay is not None:
                typer.echo(f"wrote {overlay}")
