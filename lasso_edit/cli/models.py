"""`lasso models`: the presets and their models."""

from __future__ import annotations

import typer

from .common import _guard
from .core import app
from .options import DEBUG_OPT


@app.command()
def models(
    debug: bool = DEBUG_OPT,
) -> None:
    """List the presets, the model of each stage, its licence, whether the Hub gates it, and whether it is
    in the local cache."""
    with _guard(debug):
        from rich.console import Console
        from rich.table import Table

        from ..core.licences import licence
        from ..core.loading import is_cached
        from ..core.presets import DEFAULT_PRESET, PRESETS
        from ..testing.tiny import default_tiny_dir

        table = Table(title=f"Lasso presets (default: {DEFAULT_PRESET}: balanced with a CUDA GPU, lite without)")
        for col in ("preset", "stage", "model", "cached"):
            table.add_column(col, overflow="fold")  # full ids: users copy them into `hf download`
        for p in PRESETS.values():
            for stage, model in p.models().items():
                if model.startswith("tiny:"):
                    path = default_tiny_dir() / model.split(":", 1)[1]
                    cached = "yes" if (path / ".complete").exists() else "built on use"
                else:
                    cached = "yes" if is_cached(model) else "no"
                table.add_row(p.name, stage, model, cached)
        Console().print(table)
        terms = Table(title="Licences (from each model's card; gated: accept its terms on its Hub page first)")
        for col in ("model", "licence", "gated"):
            terms.add_column(col, overflow="fold")
        for model in dict.fromkeys(
            m for p in PRESETS.values() for m in p.models().values() if not m.startswith("tiny:")
        ):
            known = licence(model)
            terms.add_row(model, known.name if known else "see its card", "yes" if known and known.gated else "no")
        Console().print(terms)
        for p in PRESETS.values():
            typer.echo(f"{p.name}: {p.description}")
        typer.echo(
            "Models not cached are downloaded on first use; fetch one ahead of time with `hf download ID`, "
            "or pass a local folder with --vlm/--segmenter/--inpainter/--detector."
        )
