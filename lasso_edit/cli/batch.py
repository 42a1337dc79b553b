"""`lasso batch`: a folder or a manifest, locally or on a Ray cluster."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .common import _attention, _fail, _first_use, _guard, _quiet_libraries, _ray_only, _say_chosen
from .core import RAY_ANY, _stop_signal, app
from .options import (
    ADVANCED,
    DEBUG_OPT,
    EDIT,
    MODELS,
    OUTPUTS,
    PNG_COMPRESS_OPT,
    RAY_OPT,
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
    from ..batch import BatchItem, BatchRunner, BatchSummary
    from ..pipeline.editor import Editor
    from ..scale.ray_batch import RayBatchRunner

RAY = "Ray cluster"

BATCH_FAILED = 5  # `lasso batch`: some items failed (each recorded in results.jsonl)


@app.command()
@with_groups
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
        True, "--masks/--no-masks", help="Write each compositing mask to OUT/masks/ (default).", rich_help_panel=OUTPUTS
    ),
    png_compress: int = in_panel(PNG_COMPRESS_OPT, OUTPUTS),
    signing: CredentialOptions = group(CredentialOptions, OUTPUTS),
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
    options: EditOptions = group(EditOptions, EDIT),
    models: ModelOptions = group(ModelOptions, MODELS),
    advanced: AdvancedOptions = group(AdvancedOptions, ADVANCED),
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
    debug: bool = in_panel(DEBUG_OPT, ADVANCED),
) -> None:
    (
        """Edit every image of INPUT with the models loaded once; resumable; --ray: on a Ray cluster.

    Each item gets a line in OUT/results.jsonl (output, mask, plan, seed, timings, warnings, or its error). """
        """Running the same command again skips the items already done. """
        """Exit codes: 0 every item edited, 5 some failed, 2 a bad INPUT or option, 130 interrupted."""
    )
    _quiet_libraries()
    with _guard(debug):
        cluster = _Cluster(ray, workers, gpus_per_worker, cpus_per_worker)
        # 1. Read and check everything before loading a model.
        items, options = _check(source, output, instruction, seed, options, cluster)
        # 2. The models, loaded once (here, or once per worker of the cluster), and the run.
        _say_chosen(models.preset, quiet)
        runner, editor = _runner(source, output, masks, png_compress, seed, options, models, advanced, cluster, signing)
        runner.check(items)  # no output is an input, before a cluster is joined or a model loads
        if cluster.ray is None:
            _first_use(editor, quiet)
        summary = _run_batch(runner, items, quiet)
        # 3. Say how it went.
        _report(summary, runner.results)


@dataclass(frozen=True)
class _Cluster:
    """--ray and the options that shape a run on a Ray cluster."""

    ray: Optional[str]
    workers: Optional[int]
    gpus: Optional[float]
    cpus: float

    def check(self) -> None:
        """Any of them given without --ray: bad input, not silently ignored."""
        _ray_only(
            self.ray,
            workers=self.workers,
            gpus_per_worker=self.gpus,
            cpus_per_worker=None if self.cpus == 1.0 else self.cpus,
        )


def _check(
    source: Path,
    output: str,
    instruction: Optional[str],
    seed: Optional[int],
    options: EditOptions,
    cluster: _Cluster,
) -> tuple[list[BatchItem], EditOptions]:
    """The items read and every option checked, before a model loads: the items, and the edit
    options with the settings as checked."""
    from ..batch import read_items
    from ..core.errors import InvalidInputError
    from ..core.uris import is_uri
    from ..pipeline.inputs import check_settings

    items = read_items(source, instruction)
    steps, guidance, strength, _ = check_settings(
        options.steps, options.guidance, options.strength, 0 if seed is None else seed
    )
    if is_uri(output) and cluster.ray is None:
        raise InvalidInputError(f"-o {output} is a URI: only `lasso batch --ray` writes to object stores")
    if not is_uri(output) and Path(output).expanduser().is_file():
        raise InvalidInputError(f"-o {output} is a file; batch writes a folder")
    cluster.check()
    if cluster.ray is None and any(is_uri(item.image) for item in items):
        raise InvalidInputError(f"{source} lists URIs: only `lasso batch --ray` reads from object stores")
    return items, replace(options, steps=steps, guidance=guidance, strength=strength)


def _credentials(signing: CredentialOptions, cluster: _Cluster) -> Any:
    """Who signs each output's Content Credentials, checked before any model loads. A Ray worker
    signs as its own LASSO_SIGN_CERT/LASSO_SIGN_KEY say: options it would not see are refused."""
    from ..core.errors import InvalidInputError

    if cluster.ray is not None and (signing.no_credentials or signing.timestamp_url):
        raise InvalidInputError(
            "--no-credentials and --timestamp-url do not reach Ray workers yet: each worker signs with its "
            "LASSO_SIGN_CERT/LASSO_SIGN_KEY, or its own local identity"
        )
    return signing.credentials()


def _runner(
    source: Path,
    output: str,
    masks: bool,
    png_compress: int,
    seed: Optional[int],
    options: EditOptions,
    models: ModelOptions,
    advanced: AdvancedOptions,
    cluster: _Cluster,
    signing: CredentialOptions,
) -> tuple[BatchRunner | RayBatchRunner, Editor]:
    """The runner, here or on the cluster, and the editor (it names its models; loads nothing yet).
    Who signs the outputs is checked first (a bad certificate: exit 2 before any model)."""
    credentials = _credentials(signing, cluster)
    from ..batch import BatchRunner
    from ..core.config import EditorConfig
    from ..pipeline.editor import Editor

    config = EditorConfig.from_params(
        params_of(options, models, advanced), attention=_attention(advanced.attention_layers)
    )
    editor = Editor.from_config(config)
    settings = {
        "preset": models.preset,
        "models": editor.models,
        "seed": seed,
        "steps": options.steps,
        "guidance": options.guidance,
        "strength": options.strength,
        "parser": editor.parser_name,
        "grounder": editor.grounder_name,
        "box_threshold": editor.box_threshold,
        "recolor": options.recolor,
        "deepcache": advanced.deepcache,
        "lora_scale": models.lora_scale,
    }
    edit_kwargs: dict[str, Any] = {
        "seed": seed,
        "steps": options.steps,
        "guidance": options.guidance,
        "strength": options.strength,
    }
    if options.skip_unknown:  # an item with a part Lasso cannot do is made without it (else: that item fails)
        edit_kwargs["skip_unknown"] = True
    if cluster.ray is None:
        local = BatchRunner(
            editor,
            Path(output).expanduser(),
            settings,
            masks=masks,
            png_compress=png_compress,
            edit_kwargs=edit_kwargs,
            protected=[source],
            credentials=credentials,
        )
        return local, editor
    from ..scale.ray_batch import RayBatchRunner

    on_ray = RayBatchRunner(
        config,
        output,
        settings,
        masks=masks,
        png_compress=png_compress,
        edit_kwargs=edit_kwargs,
        address=None if cluster.ray == RAY_ANY else cluster.ray,
        gpus=cluster.gpus,
        cpus=cluster.cpus,
        workers=cluster.workers,
        protected=[source],
    )
    return on_ray, editor


def _report(summary: BatchSummary, results: Path | str) -> None:
    """How it went: the counts and the rate on stdout, the first ten failures on stderr, and exit 5
    when some failed."""
    parts = [f"{summary.done} edited"] + [
        f"{n} {w}" for n, w in ((summary.skipped, "skipped (done before)"), (summary.failed, "failed")) if n
    ]
    rate = f"; {summary.seconds / summary.done:.2f} s per edited item" if summary.done else ""
    typer.echo(f"{summary.total} items: {', '.join(parts)}{rate}; results in {results}")
    for rec in summary.failures[:10]:
        typer.echo(f"failed: {rec['image']}: {rec['error']}", err=True)
    if summary.failed:
        raise typer.Exit(BATCH_FAILED)


def _run_batch(runner: BatchRunner | RayBatchRunner, items: list[BatchItem], quiet: bool) -> BatchSummary:
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

    def advance(rec: dict[str, Any]) -> None:
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
