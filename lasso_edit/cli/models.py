"""`lasso models`: the presets and their models."""

from __future__ import annotations

from typing import Optional

import typer

from .common import _guard
from .core import app
from .options import DEBUG_OPT


@app.command()
def models(
    preset: Optional[str] = typer.Option(
        None, "--preset", "-p", help="One preset's models only (auto: the one this machine would run)."
    ),
    debug: bool = DEBUG_OPT,
) -> None:
    """List the presets, the model of each stage, what it weighs to download, its licence, whether the
    Hub gates it, and whether it is in the local cache."""
    with _guard(debug):
        from rich.console import Console

        from ..core.presets import PRESETS, choose_preset, get_preset

        chosen = [get_preset(choose_preset(preset))] if preset else list(PRESETS.values())
        rows = [(p.name, stage, model) for p in chosen for stage, model in _stages(p)]
        console = Console()
        if not console.is_terminal:  # piped: full ids on one line each, for `hf download` and scripts
            console = Console(width=200)
        console.print(_models_table(rows))
        console.print(_licences_table(rows))
        for p in chosen:
            typer.echo(f"{p.name}: {p.description}")
        sized = [_download_gb(model) for _, _, model in rows]
        if preset and all(gb is not None for gb in sized):
            typer.echo(
                f"download in all: about {sum(gb or 0 for gb in sized):.1f} GB (from the models' parameter counts)"
            )
        typer.echo(
            "Models not cached are downloaded on first use; fetch one ahead of time with `hf download ID`, "
            "or pass a local folder with --vlm/--segmenter/--inpainter/--detector."
        )


def _stages(p: object) -> list[tuple[str, str]]:
    """(stage, model) of a preset, with what its painter loads besides its checkpoint (TAESD for
    `turbo`), and without a VLM the preset does not load by default (its parser is the rules)."""
    from ..core.presets import Preset
    from ..edit.painters import PAINTERS, painter_spec

    assert isinstance(p, Preset)
    out = [(s, m) for s, m in p.models().items() if not (s == "vlm" and p.parser == "rules")]
    name, _ = painter_spec(p.inpainter)
    vae = getattr(PAINTERS.get(name), "tiny_vae", None) if name and not p.inpainter.startswith("openai:") else None
    if vae:
        out.append(("inpainter's vae", vae))
    return out


def _hub_id(model: str) -> str | None:
    """The Hub id a model value downloads (a painter's NAME:ID names ID; a server and a tiny model none)."""
    from ..edit.painters import painter_spec

    if model.startswith(("tiny:", "openai:")):
        return None
    _, checkpoint = painter_spec(model)
    return checkpoint


def _download_gb(model: str) -> float | None:
    from ..core.licences import DOWNLOAD_GB

    hub = _hub_id(model)
    return 0.0 if hub is None else DOWNLOAD_GB.get(hub)


def _models_table(rows: list[tuple[str, str, str]]) -> object:
    from rich.table import Table

    from ..core.loading import is_cached
    from ..core.presets import DEFAULT_PRESET
    from ..testing.tiny import default_tiny_dir

    table = Table(title=f"Lasso presets (default: {DEFAULT_PRESET}: balanced with a CUDA GPU, lite without)")
    for col in ("preset", "stage", "model", "download", "cached"):
        table.add_column(col, overflow="fold")  # full ids: users copy them into `hf download`
    for name, stage, model in rows:
        hub = _hub_id(model)
        if model.startswith("tiny:"):
            path = default_tiny_dir() / model.split(":", 1)[1]
            cached = "yes" if (path / ".complete").exists() else "built on use"
        elif hub is None:
            cached = "a server"
        else:
            cached = "yes" if is_cached(hub) else "no"
        gb = _download_gb(model)
        size = "-" if hub is None else ("?" if gb is None else f"{gb:.2f} GB")
        table.add_row(name, stage, model, size, cached)
    return table


def _licences_table(rows: list[tuple[str, str, str]]) -> object:
    from rich.table import Table

    from ..core.licences import licence

    terms = Table(title="Licences (from each model's card; gated: accept its terms on its Hub page first)")
    for col in ("model", "licence", "gated"):
        terms.add_column(col, overflow="fold")
    for hub in dict.fromkeys(h for _, _, m in rows if (h := _hub_id(m)) is not None):
        known = licence(hub)
        terms.add_row(hub, known.name if known else "see its card", "yes" if known and known.gated else "no")
    return terms
