"""`lasso batch`: a folder or a manifest, locally or on a Ray cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .common import _attention, _fail, _first_use, _guard, _quiet_libraries, _ray_only
from .core import RAY_ANY, _stop_signal, app
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
    RAY_OPT,
    RECOLOR_OPT,
    SEGMENTER_OPT,
    SKIP_UNKNOWN_OPT,
    STEPS_OPT,
    STRENGTH_OPT,
    VLM_API_KEY_OPT,
    VLM_OPT,
    in_panel,
)

RAY = "Ray cluster"

BATCH_FAILED = 5  # `lasso batch`: some items failed (each recorded in results.jsonl)


@app.command()
def batch(
    source: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="A folder of images, or a JSONL / CSV manifest (image, instruction, id) with an instruction per image.",
    ),
    # Outputs
    output: str = typer.Option(
        ...,
        "-o",
        "--output",
        help="Folder for the outputs, masks/ and results.jsonl (with --ray also a URI: s3://bucket/out, gs://...).",
        rich_help_panel=OUTPUTS,
    ),
    masks: bool = typer.Option(
        True,
        "--masks/--no-masks",
        help="Write each compositing mask to OUT/masks/ (default: yes).",
        rich_help_panel=OUTPUTS,
    ),
    png_compress: int = in_panel(PNG_COMPRESS_OPT, OUTPUTS),
    # Edit
    instruction: Optional[str] = typer.Option(
        None,
        "--instruction",
        "-i",
        help="The instruction for every image (a manifest row without one takes it).",
        rich_help_panel=EDIT,
    ),
    seed: Optional[int] = typer.Option(
        None, help="One seed for every item (default: a random one each, recorded).", rich_help_panel=EDIT
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
    # A Ray cluster
    ray: Optional[str] = in_panel(RAY_OPT, RAY),
    workers: Optional[int] = typer.Option(
        None,
        "--workers",
        min=1,
        help="With --ray: editors to run (default: one per GPU of the cluster, or one per --cpus-per-worker cores).",
        rich_help_panel=RAY,
    ),
    gpus_per_worker: Optional[float] = typer.Option(
        None,
        "--gpus-per-worker",
        min=0,
        help="With --ray: GPUs each editor holds (default 1; 0.5 for the fast preset; 0 without GPUs).",
        rich_help_panel=RAY,
    ),
    cpus_per_worker: float = typer.Option(
        1.0, "--cpus-per-worker", min=0.01, help="With --ray: CPU cores each editor holds.", rich_help_panel=RAY
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", metavar="", help="No progress bar; only the summary.", rich_help_panel=OUTPUTS
    ),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks.", rich_help_panel=ADVANCED),
):
    (
        """Edit every image of INPUT with the models loaded once; resumable; --ray: on a Ray cluster.

    Each item gets a line in OUT/results.jsonl (output, mask, plan, seed, timings, warnings, or its error). """
        """Running the same command again skips the items already done. """
        """Exit codes: 0 every item edited, 5 some failed, 2 a bad INPUT or option, 130 interrupted."""
    )
    _quiet_libraries()
    with _guard(debug):
        from ..batch import BatchRunner, read_items
        from ..core.config import EditorConfig
        from ..core.errors import InvalidInputError
        from ..core.uris import is_uri
        from ..pipeline.editor import Editor
        from ..pipeline.inputs import check_settings

        # 1. Read and check everything before loading a model.
        items = read_items(source, instruction)
        steps, guidance, strength, _ = check_settings(steps, guidance, strength, 0 if seed is None else seed)
        if is_uri(output) and ray is None:
            raise InvalidInputError(f"-o {output} is a URI: only `lasso batch --ray` writes to object stores")
        if not is_uri(output) and Path(output).expanduser().is_file():
            raise InvalidInputError(f"-o {output} is a file; batch writes a folder")
        _ray_only(
            ray,
            workers=workers,
            gpus_per_worker=gpus_per_worker,
            cpus_per_worker=None if cpus_per_worker == 1.0 else cpus_per_worker,
        )
        if ray is None and any(is_uri(item.image) for item in items):
            raise InvalidInputError(f"{source} lists URIs: only `lasso batch --ray` reads from object stores")
        # 2. The models, loaded once (here, or once per worker of the cluster), and the run.
        config = EditorConfig.from_params(locals(), attention=_attention(attention_layers))
        editor = Editor.from_config(config)  # names its models; loads nothing yet
        settings = {
            "preset": preset,
            "models": editor.models,
            "seed": seed,
            "steps": steps,
            "guidance": guidance,
            "strength": strength,
            "parser": editor.parser_name,
            "grounder": editor.grounder_name,
            "box_threshold": editor.box_threshold,
            "recolor": recolor,
            "deepcache": deepcache,
            "lora_scale": lora_scale,
        }
        edit_kwargs = {"seed": seed, "steps": steps, "guidance": guidance, "strength": strength}
        if skip_unknown:  # an item with a part Lasso cannot do is made without it (else: that item fails)
            edit_kwargs["skip_unknown"] = True
        runner: Any  # the local runner or the Ray one: the same check() and run()
        if ray is not None:
            from ..scale.ray_batch import RayBatchRunner

            runner = RayBatchRunner(
                config,
                output,
                settings,
                masks=masks,
                png_compress=png_compress,
                edit_kwargs=edit_kwargs,
                address=None if ray == RAY_ANY else ray,
                gpus=gpus_per_worker,
                cpus=cpus_per_worker,
                workers=workers,
                protected=[source],
            )
            runner.check(items)  # no output is an input, before a cluster is joined
        else:
            runner = BatchRunner(
                editor,
                Path(output).expanduser(),
                settings,
                masks=masks,
                png_compress=png_compress,
                edit_kwargs=edit_kwargs,
                protected=[source],
            )
            runner.check(items)  # no output is an input, before a model loads
            _first_use(editor, quiet)
        summary = _run_batch(runner, items, quiet)
        # 3. Say how it went.
        parts = [f"{summary.done} edited"] + [
            f"{n} {w}" for n, w in ((summary.skipped, "skipped (done before)"), (summary.failed, "failed")) if n
        ]
        rate = f"; {summary.seconds / summary.done:.2f} s per edited item" if summary.done else ""
        typer.echo(f"{summary.total} items: {', '.join(parts)}{rate}; results in {runner.results}")
        for rec in summary.failures[:10]:
            typer.echo(f"failed: {rec['image']}: {rec['error']}", err=True)
        if summary.failed:
            raise typer.Exit(BATCH_FAILED)


def _run_batch(runner, items, quiet: bool):
    """The runner with a progress bar (count, rate, ETA) on a terminal; an interrupt ends the run
    with every finished item recorded, and says how to resume."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    show = not quiet and console.is_terminal
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.speed_per_min}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
        transient=False,
    )
    task = bar.add_task("editing", total=len(items), speed_per_min="")

    def advance(rec: dict) -> None:
        task_ = bar.tasks[0]
        speed = task_.speed
        bar.update(
            task,
            advance=1,
            description="skipping" if rec.get("skipped") else "editing",
            speed_per_min=f"{speed * 60:.1f}/min" if speed else "",
        )

    try:
        with bar:
            return runner.run(items, on_item=advance)
    except BaseException as e:
        stop = _stop_signal(e)
        if stop is None:
            raise
        _fail(
            f"{stop[0].split(';')[0]}; the finished items are recorded in {runner.results}: "
            "run the same command again to do the rest",
            stop[1],
        )
