"""`lasso plan`: what Lasso understood, before it paints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from .common import _attention, _guard, _quiet_libraries, _warn
from .core import app
from .options import (
    ADVANCED,
    DEBUG_OPT,
    EDIT,
    MODELS,
    OUTPUTS,
    SKIP_UNKNOWN_OPT,
    AdvancedOptions,
    ModelOptions,
    group,
    in_panel,
    params_of,
    with_groups,
)

if TYPE_CHECKING:
    from ..core.plan import EditPlan, Grounding
    from ..ground.attention import AttentionSettings
    from ..imaging import LoadedImage
    from ..pipeline.result import EditResult

# The models `lasso plan` may need (never the inpainter) and the advanced options it takes.
_MODELS = ("preset", "device", "dtype", "vlm", "vlm_api_key", "segmenter", "detector")
_ADVANCED = ("parser", "grounder", "attention_layers", "box_threshold")


def _grounding_line(g: Grounding) -> str:
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
@with_groups
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
    models: ModelOptions = group(ModelOptions, MODELS, only=_MODELS),
    advanced: AdvancedOptions = group(AdvancedOptions, ADVANCED, only=_ADVANCED),
    debug: bool = in_panel(DEBUG_OPT, ADVANCED),
) -> None:
    """Show what Lasso understood, without painting: edits, and with --overlay the boxes and masks.
    Needs no inpainting model."""
    _quiet_libraries()
    written: list[Path] = []
    with _guard(debug, written):
        from ..imaging import check_output_path
        from ..pipeline.inputs import check_inputs

        loaded = check_inputs(image, instruction).loaded
        attention = _attention(advanced.attention_layers)
        if overlay is not None:
            check_output_path(overlay, image)
        result = None
        if advanced.parser == "rules" and overlay is None:
            from ..parse.rules import RulesParser

            the_plan = RulesParser().parse(loaded.rgb, instruction, skip_unknown=skip_unknown)
        else:
            the_plan, result = _understand(loaded, instruction, models, advanced, attention, overlay, skip_unknown)
            if overlay is not None:
                written.append(overlay)
        if as_json:
            typer.echo(json.dumps(the_plan.brief(result.groundings if result is not None else None), indent=2))
        else:
            _show(the_plan, result, overlay)


def _understand(
    loaded: LoadedImage,
    instruction: str,
    models: ModelOptions,
    advanced: AdvancedOptions,
    attention: Optional[AttentionSettings],
    overlay: Optional[Path],
    skip_unknown: bool,
) -> tuple[EditPlan, Optional[EditResult]]:
    """The plan from the editor's parser; with --overlay, a dry run too (the targets found and
    masked), drawn into the overlay."""
    from ..core.config import EditorConfig
    from ..pipeline.editor import Editor

    config = EditorConfig.from_params(params_of(models, advanced, attention=attention), paint=False)
    editor = Editor.from_config(config)
    if overlay is None:
        from ..parse.unknown import parse_with

        return parse_with(editor.parser, loaded.rgb, instruction, skip_unknown=skip_unknown), None
    from ..imaging import save_image
    from ..pipeline.overlay import draw_overlay

    result = editor(loaded, instruction, dry_run=True, skip_unknown=skip_unknown)
    save_image(draw_overlay(loaded.rgb, result), overlay)
    return result.plan, result


def _show(the_plan: EditPlan, result: Optional[EditResult], overlay: Optional[Path]) -> None:
    """The plan in words: its warnings, then an edit a line (with how its target was found, after
    a dry run) and where the overlay went."""
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
