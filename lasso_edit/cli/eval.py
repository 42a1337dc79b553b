"""`lasso eval`: edit and score a benchmark (MagicBrush, PIE-Bench or JSONL)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .common import _attention, _fail, _first_use, _guard, _need_extra, _quiet_libraries, _say_chosen, one_line
from .core import _stop_signal, app
from .options import ATTENTION_LAYERS_OPT, DEBUG_OPT, DEVICE_OPT, GROUNDER_OPT, PARSER_OPT, PRESET_OPT, STEPS_OPT

if TYPE_CHECKING:
    from ..evaluation.data import Sample, StoredOutputs
    from ..evaluation.metrics import Scorers
    from ..pipeline.editor import Editor


CONTAIN_OPT = typer.Option(
    False,
    "--contain",
    help="With --outputs: score each output as given and after `lasso contain` (aligned on its input, its "
    "colour drift undone, pasted back inside the dataset's mask, or where it changed without one), side by "
    "side; the contained pictures go to contained/. No model: CPU only.",
)


@app.command("eval")
def eval_(
    data: Path = typer.Argument(
        ...,
        metavar="DATA",
        help="A MagicBrush copy (folder of parquet shards, or one shard), a PIE-Bench folder (mapping_file.json "
        "and annotation_images/) or a JSONL manifest (image, instruction, target, mask, caption, id). A sample "
        "that cannot be read is that sample's error in the report; the others still run.",
    ),
    output: Path = typer.Option(
        ...,
        "-o",
        "--output",
        help="Report folder: index.html, summary.md/json, samples.jsonl, plots/, images/, outputs/ (contained/ with --contain).",
    ),
    preset: str = PRESET_OPT,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score only the first N samples."),
    turns: str = typer.Option(
        "single",
        "--turns",
        help="single: each turn from the ground-truth input; multi: chain the turns, score the last.",
    ),
    seed: int = typer.Option(0, help="Seed of every edit."),
    outputs: Optional[Path] = typer.Option(
        None,
        "--outputs",
        help="Score another editor's outputs in this folder instead of editing (at each input's path in the "
        "dataset, or named by sample id): the same table as Lasso's.",
    ),
    contain: bool = CONTAIN_OPT,
    steps: Optional[int] = STEPS_OPT,
    clip: Optional[str] = typer.Option(
        None, help="CLIP for CLIP-I/CLIP-T (default openai/clip-vit-base-patch32; tiny preset: a tiny random one)."
    ),
    dino: Optional[str] = typer.Option(None, help="DINO for the DINO score (default facebook/dino-vits16)."),
    lpips: Optional[str] = typer.Option(
        None,
        "--lpips",
        help="LPIPS outside the mask on PIE-Bench-style data: squeeze (default; the lpips package's, backbone "
        "downloaded by torchvision on first use) or tiny (a random stand-in; the tiny preset's default).",
    ),
    device: Optional[str] = DEVICE_OPT,
    parser: str = PARSER_OPT,
    grounder: Optional[str] = GROUNDER_OPT,
    attention_layers: Optional[str] = ATTENTION_LAYERS_OPT,
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar."),
    debug: bool = DEBUG_OPT,
) -> None:
    (
        """Score Lasso on an editing dataset with MagicBrush's metrics (L1, L2, CLIP-I, CLIP-T, DINO) """
        """and its own (L1 outside / inside the mask, mask IoU, target-not-found rate, seconds per edit)."""
    )
    _quiet_libraries()
    with _guard(debug):
        from ..core.loading import resolve_device
        from ..evaluation.metrics import Scorers
        from ..evaluation.report import write_report
        from ..evaluation.run import aggregate
        from ..pipeline.inputs import check_settings

        # 1. Read the data and check the options before loading a model.
        _need_extra("eval", "lasso eval", ("matplotlib", "the report's plots"))
        steps, _, _, seed = check_settings(steps, None, 0.65, seed)
        items, stored = _read(data, output, turns, limit, outputs, contain)
        clip, dino = _scorer_models(preset, clip, dino)
        # 2. Load once, edit and score every sample.
        editor = _editor(preset, device, parser, grounder, attention_layers, stored is None, quiet)
        lpips = lpips or ("tiny" if preset == "tiny" else "squeeze")
        pie = any(t.kind is not None for item in items for t in item.turns)  # LPIPS is PIE-Bench's
        scorers = Scorers(clip, dino, device=resolve_device(device), lpips=lpips if pie else None)
        records = _score(editor, items, scorers, output, seed, steps, stored, quiet, contain)
        summary = aggregate(records)
        meta = _meta(data, turns, preset, seed, editor, outputs, clip, dino, lpips if pie else None, limit)
        meta["contain"] = contain
        write_report(output, records, summary, meta)
        # 3. The headline numbers.
        _headline(records, summary, turns, output)


def _read(
    data: Path, output: Path, turns: str, limit: Optional[int], outputs: Optional[Path], contain: bool = False
) -> tuple[list[Sample], Optional[StoredOutputs]]:
    """The samples (the first `limit`), and with --outputs the other editor's outputs; every file
    the run reads checked to lie outside -o and not to be written over."""
    from ..core.errors import InvalidInputError
    from ..evaluation.data import check_apart, load_chains, output_names, samples
    from ..evaluation.run import written

    if contain and outputs is None:
        raise InvalidInputError("--contain puts another editor's outputs back into their inputs: give --outputs DIR")
    reads: list[Path] = []
    items = samples(load_chains(data, keep_going=True, reads=reads), turns)[:limit]
    names = output_names(items)
    stored = None
    if outputs is not None:
        from ..evaluation.data import StoredOutputs

        if turns != "single":
            raise InvalidInputError("--outputs scores one output per sample: use --turns single")
        stored = StoredOutputs(outputs)
        reads += filter(None, (stored.find(s, n) for s, n in zip(items, names) if not s.error))
    check_apart(output, reads, written(output, names, contain))
    return items, stored


def _scorer_models(preset: str, clip: Optional[str], dino: Optional[str]) -> tuple[str, str]:
    """The CLIP and the DINO that score (the tiny preset's: tiny random ones), checked to be had."""
    from ..core.loading import ensure_available

    if preset == "tiny" and (clip is None or dino is None):
        from ..testing.tiny import ensure_tiny_eval_models

        tiny = ensure_tiny_eval_models()
        clip, dino = clip or tiny["clip"], dino or tiny["dino"]
    clip = clip or "openai/clip-vit-base-patch32"
    dino = dino or "facebook/dino-vits16"
    ensure_available({"clip": clip, "dino": dino})
    return clip, dino


def _editor(
    preset: str,
    device: Optional[str],
    parser: Optional[str],
    grounder: Optional[str],
    attention_layers: Optional[str],
    editing: bool,
    quiet: bool,
) -> Optional[Editor]:
    """The editor, its models downloaded on first use; None when another editor's outputs are
    scored (no model)."""
    from ..core.config import EditorConfig
    from ..pipeline.editor import Editor

    config = EditorConfig.from_params(locals(), attention=_attention(attention_layers))
    if not editing:
        return None
    _say_chosen(config.preset, quiet)
    editor = Editor.from_config(config)
    _first_use(editor, quiet)
    return editor


def _score(
    editor: Optional[Editor],
    items: list[Sample],
    scorers: Scorers,
    output: Path,
    seed: int,
    steps: Optional[int],
    stored: Optional[StoredOutputs],
    quiet: bool,
    contain: bool = False,
) -> list[dict[str, Any]]:
    """Every sample edited (or its stored output taken) and scored, with a progress bar; an
    interrupt ends the run with the samples done so far written, but no report."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from ..evaluation.run import evaluate

    console = Console(stderr=True)
    bar = Progress(
        "scoring",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet or not console.is_terminal,
    )
    task = bar.add_task("eval", total=len(items))
    try:
        with bar:
            return evaluate(
                editor,
                items,
                scorers,
                output,
                seed=seed,
                edit_kwargs={"steps": steps} if steps else {},
                on_sample=lambda rec: bar.advance(task),
                stored=stored,
                contain=contain,
            )
    except BaseException as e:
        stop = _stop_signal(e)
        if stop is None:
            raise
        _fail(  # the samples done so far were written; their report was not
            f"{stop[0].split(';')[0]}; the samples done so far are in {output}, without a report: "
            "run the same command again for the whole report",
            stop[1],
        )


def _meta(
    data: Path,
    turns: str,
    preset: str,
    seed: int,
    editor: Optional[Editor],
    outputs: Optional[Path],
    clip: str,
    dino: str,
    lpips: Optional[str],
    limit: Optional[int],
) -> dict[str, Any]:
    """What the report says of the run: the data, the editor (Lasso's models, or another's
    outputs), the scorers."""
    return {
        "data": str(data),
        "turns": turns,
        "preset": preset if outputs is None else "-",
        "seed": seed,
        "models": editor.models if editor is not None else {"outputs": str(outputs)},
        "editor": "Lasso" if outputs is None else f"the outputs in {outputs}",
        "clip": clip,
        "dino": dino,
        "lpips": (lpips if lpips != "tiny" else "tiny random stand-in (not comparable)") if lpips is not None else None,
        "limit": limit,
    }


def _headline(records: list[dict[str, Any]], summary: dict[str, Any], turns: str, output: Path) -> None:
    """The failed samples on stderr, each on one line (an id may hold a newline), and the headline
    numbers on stdout."""
    from ..evaluation.report import failed, failed_line

    heads = ", ".join(
        f"{k} {summary[k]:.4f}"
        for k in ("l1", "l2", "clip_i", "clip_t", "dino", "l1_outside", "mask_iou")
        if summary.get(k) is not None
    )
    bad = failed(records)
    for rec in bad:
        typer.echo(f"failed: {one_line(failed_line(rec))}", err=True)
    said = f"; {len(bad)} sample{'' if len(bad) == 1 else 's'} failed (listed in summary.md)" if bad else ""
    typer.echo(
        f"{summary['samples']} samples ({turns}-turn): {heads}; target not found "
        f"{summary['not_found_rate']:.1%}{said}{_contained_line(summary)}; report: {output / 'index.html'}"
    )


def _contained_line(summary: dict[str, Any]) -> str:
    """With --contain: the preservation numbers as given and contained, and how many were not contained."""
    both = summary.get("contained")
    if both is None:
        return ""

    def said(s: dict[str, Any]) -> str:
        same = s.get("identical_outside_rate")
        psnr = f"{s['psnr_outside']:.2f} dB" if s.get("psnr_outside") is not None else "∞" if same == 1 else "-"
        return f"PSNR outside {psnr}" + ("" if same is None else f", identical outside {same:.0%}")

    return (
        f"; as given: {said(summary)}; contained: {said(both)} ({both['not_contained']} of {both['samples']} "
        "could not be contained)"
    )
