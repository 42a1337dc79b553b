"""The `lasso` command. Heavy modules are imported inside the commands: `lasso --help` is instant.

Exit codes: 0 ok, 2 bad input, 3 model unavailable, 4 target not found, 1 anything else.
Errors are one line on stderr; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import typer

from .registry import GROUNDERS, PARSERS  # names only: nothing heavy is imported


class _Group(typer.core.TyperGroup):
    def parse_args(self, ctx, args):  # `--ray` with or without its address (see _ray_argv)
        return super().parse_args(ctx, _ray_argv(list(args)))


app = typer.Typer(
    cls=_Group,
    add_completion=False,
    no_args_is_help=True,
    help="Lasso: edit a photo from a plain-language instruction (VLM -> SAM -> inpainting).",
    pretty_exceptions_enable=False,
)

PRESET_HELP = "Model set: tiny, fast, balanced, quality (see `lasso models`)."

# Options several commands take, declared once (typer only reads these defaults).
PRESET_OPT = typer.Option("balanced", "--preset", "-p", help=PRESET_HELP)
STEPS_OPT = typer.Option(None, help="Denoising steps (default: the preset's).")
GUIDANCE_OPT = typer.Option(None, help="Classifier-free guidance scale, 0-100 (default: the preset's).")
STRENGTH_OPT = typer.Option(0.65, help="Style edits: how far from the original, 0.01-1.")
DEVICE_OPT = typer.Option(None, help="cuda, cuda:1, mps or cpu (default: best available).")
DTYPE_OPT = typer.Option(None, help="fp16, bf16 or fp32 (default: fp16 on GPU, fp32 on CPU).")
VLM_OPT = typer.Option(
    None,
    help="Override the VLM: Hub id, local folder, or openai:MODEL@BASE_URL for an "
    "OpenAI-compatible server (vLLM, SGLang, ...).",
)
VLM_API_KEY_OPT = typer.Option(
    None,
    "--vlm-api-key",
    envvar="OPENAI_API_KEY",
    show_envvar=False,
    help="The key of an openai: VLM server (or OPENAI_API_KEY).",
)
SEGMENTER_OPT = typer.Option(None, help="Override SAM: Hub id or local folder.")
INPAINTER_OPT = typer.Option(None, help="Override the inpainting model: Hub id or local folder.")
DETECTOR_OPT = typer.Option(None, help="Override the detector: Hub id or local folder.")
PARSER_OPT = typer.Option(
    None,
    help=f"{', '.join(PARSERS.names())} (default: the preset's: rules-first for fast, auto otherwise).",
)
GROUNDER_OPT = typer.Option(None, help=f"{', '.join(GROUNDERS.names())} (default: the preset's; auto for real models).")
LORA_OPT = typer.Option(
    None,
    "--lora",
    help="A LoRA of your own (lasso train's folder, a .safetensors file or a Hub id), fused into the inpainter.",
)
LORA_SCALE_OPT = typer.Option(
    None, "--lora-scale", min=0.0, max=2.0, help="The LoRA's strength: 0 none, 1 as trained (default), up to 2."
)
ATTENTION_LAYERS_OPT = typer.Option(
    None,
    "--attention-layers",
    help="The VLM layers whose attention the attention "
    "grounder and auto's tie-break read: 14, 12-18 or 12,14,16 (default: 35-60% of the depth).",
)
BOX_THRESHOLD_OPT = typer.Option(
    None, help="Detector score below which a target counts as absent (default: the preset's)."
)
RECOLOR_OPT = typer.Option("texture", help="Recolour by 'texture' (keeps shading, default) or 'inpaint'.")
COMPILE_OPT = typer.Option(
    False,
    "--compile",
    metavar="",
    help="torch.compile the models: minutes of warm-up, faster edits after (servers, batches).",
)
LOW_VRAM_OPT = typer.Option(
    False,
    "--low-vram",
    metavar="",
    help="Fit an 8 GB GPU: CPU offload for diffusion, a 4-bit VLM (needs bitsandbytes).",
)
PNG_COMPRESS_OPT = typer.Option(
    1, "--png-compress", min=0, max=9, help="PNG compression 0-9: 1 (default) is fast, 9 is smallest."
)
DEEPCACHE_OPT = typer.Option(
    0,
    "--deepcache",
    min=0,
    help="N > 1: reuse the UNet's deep features for N-1 of every N steps (faster, approximate).",
)


def _attention(layers: Optional[str]):
    """--attention-layers -> AttentionSettings, or None for the defaults."""
    if layers is None:
        return None
    from .ground.attention import AttentionSettings

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


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
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


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {one_line(message)}", err=True)
    raise typer.Exit(code)


@contextmanager
def _guard(debug: bool, cleanup: list[Path] | None = None):
    """Turn Lasso's errors into one line and an exit code; remove partial outputs on failure."""
    from .errors import LassoError

    try:
        yield
    except (typer.Exit, BrokenPipeError):  # a closed pipe (`lasso models | head`) is handled in main()
        raise
    except BaseException as e:
        for p in cleanup or []:
            try:
                p.unlink()
            except OSError:
                pass
        if debug:
            raise
        from .errors import storage_error

        e = storage_error(e) or e  # a full disk where a library wrote: said as ours
        if isinstance(e, LassoError):
            _fail(str(e), e.exit_code)
        stop = _stop_signal(e)
        if stop is not None:
            _fail(*stop)
        if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
            _fail(f"out of memory ({type(e).__name__}); try --preset fast, --device cpu or a smaller image", 1)
        _fail(f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} (rerun with --debug)", 1)


def _need_extra(extra: str, command: str, *needs: tuple[str, str]) -> None:
    """Bad input (exit 2) before any work when a module of `extra` that the command's documented
    outputs need is missing: said, never skipped silently."""
    import importlib.util

    from .errors import InvalidInputError

    missing = [f"{module} ({what})" for module, what in needs if importlib.util.find_spec(module) is None]
    if missing:
        raise InvalidInputError(
            f"{command} needs the {extra} extra: pip install 'lasso-edit[{extra}]' (missing: {', '.join(missing)})"
        )


def _first_use(editor, quiet: bool) -> None:
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


def _progress(quiet: bool):
    """A spinner on stderr showing the current step; a no-op when quiet or not a terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        return None, _null_ctx()
    status = console.status("starting")
    return (lambda msg: status.update(msg)), status


@contextmanager
def _null_ctx():
    yield


def _warn(warnings: list[str]) -> None:
    for w in dict.fromkeys(warnings):
        typer.echo(f"warning: {one_line(w)}", err=True)


@app.command()
def edit(
    image: Path = typer.Argument(..., help="Input image (any format Pillow reads)."),
    instruction: str = typer.Argument(..., help='What to change, e.g. "make the car red".'),
    output: Optional[Path] = typer.Option(
        None,
        "-o",
        "--output",
        help="Where to write the edited image (a folder: NAME-edited.png in it). Required unless --dry-run.",
    ),
    preset: str = PRESET_OPT,
    seed: Optional[int] = typer.Option(None, help="Random seed (printed and saved in the plan when not given)."),
    steps: Optional[int] = STEPS_OPT,
    guidance: Optional[float] = GUIDANCE_OPT,
    strength: float = STRENGTH_OPT,
    device: Optional[str] = DEVICE_OPT,
    dtype: Optional[str] = DTYPE_OPT,
    vlm: Optional[str] = VLM_OPT,
    vlm_api_key: Optional[str] = VLM_API_KEY_OPT,
    segmenter: Optional[str] = SEGMENTER_OPT,
    inpainter: Optional[str] = INPAINTER_OPT,
    detector: Optional[str] = DETECTOR_OPT,
    parser: str = PARSER_OPT,
    grounder: Optional[str] = GROUNDER_OPT,
    attention_layers: Optional[str] = ATTENTION_LAYERS_OPT,
    box_threshold: Optional[float] = BOX_THRESHOLD_OPT,
    recolor: str = RECOLOR_OPT,
    compile: bool = COMPILE_OPT,
    low_vram: bool = LOW_VRAM_OPT,
    png_compress: int = PNG_COMPRESS_OPT,
    deepcache: int = DEEPCACHE_OPT,
    lora: Optional[str] = LORA_OPT,
    lora_scale: Optional[float] = LORA_SCALE_OPT,
    mask_out: Optional[Path] = typer.Option(
        None, "--mask-out", help="Write the compositing mask as PNG (0 = untouched)."
    ),
    plan_out: Optional[Path] = typer.Option(None, "--plan-out", help="Write the plan and run record as JSON."),
    dry_run: bool = typer.Option(
        False, "--dry-run", metavar="", help="Stop before painting: write the plan and mask only."
    ),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        metavar="",
        help="Print only the seed (on stdout, to reproduce the edit); warnings and errors still go to stderr.",
    ),
    server: Optional[str] = typer.Option(
        None,
        "--server",
        help="Send the edit to a running `lasso serve` at this URL (model options are then the server's).",
    ),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="LASSO_API_KEY", help="The server's API key."),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks."),
):
    """Edit IMAGE as INSTRUCTION says and write the result to -o."""
    _quiet_libraries(downloads_shown=not quiet and sys.stderr.isatty())
    with _guard(debug):
        from .errors import InvalidInputError
        from .imaging import check_outputs, output_mode
        from .inputs import check_inputs

        # 1. Check every input and output before loading a model (the editor's own first step).
        checked = check_inputs(image, instruction, seed=seed, steps=steps, guidance=guidance, strength=strength)
        loaded = checked.loaded
        if output is None and not dry_run:
            raise InvalidInputError("no output path: pass -o OUT.png (or --dry-run)")
        if output is not None and output.is_dir():  # a folder: the input's name, edited, as lossless PNG
            output = output / f"{image.stem}-edited.png"
        check_outputs(output, mask_out, plan_out, image, mode=output_mode(loaded), size=loaded.size)
        if server is not None:  # 2'. a shared server does the work
            from .client import remote_edit

            remote_edit(
                server, api_key, image, instruction, checked, output, mask_out, plan_out, png_compress, dry_run, quiet
            )
            return
        # 2. Build the editor (fails fast on unavailable models) and run.
        from .config import EditorConfig
        from .editor import Editor

        config = EditorConfig(
            preset=preset,
            device=device,
            dtype=dtype,
            vlm=vlm,
            vlm_api_key=vlm_api_key,
            segmenter=segmenter,
            inpainter=inpainter,
            detector=detector,
            parser=parser,
            grounder=grounder,
            attention=_attention(attention_layers),
            box_threshold=box_threshold,
            recolor=recolor,
            compile=compile,
            low_vram=low_vram,
            deepcache=deepcache,
            paint=not dry_run,
            lora=lora,
            lora_scale=lora_scale,
        )
        editor = Editor.from_config(config)
        _first_use(editor, quiet)
        say, status = _progress(quiet)
        with status:
            result = editor(
                loaded,
                instruction,
                seed=checked.seed,
                steps=checked.steps,
                guidance=checked.guidance,
                strength=checked.strength,
                dry_run=dry_run,
                progress=say,
            )
        # 3. Write every output to a temporary file, then rename them together: if one fails,
        # whatever was there before stays as it was.
        from .outputs import write_result

        warnings = list(result.warnings) + write_result(result, output, mask_out, plan_out, png_compress, dry_run)
        _warn(warnings)
        if quiet:
            typer.echo(result.seed)  # the one thing needed to reproduce the edit
        else:
            from .outputs import report_lines

            typer.echo("\n".join(report_lines(result.summary(), output if not dry_run else None, dry_run)))


RAY_ANY = "-"  # `--ray` with no address: the running cluster, or a new local one
RAY_OPT = typer.Option(
    None,
    "--ray",
    metavar="[ADDRESS]",
    help="Run on a Ray cluster: `--ray` alone joins the "
    "running one (or starts one here); `--ray auto`, `--ray HOST:6379` or `--ray ray://HOST:10001` "
    "name it. Needs the ray extra.",
)
_RAY_ADDRESS = re.compile(r"^(auto|local|ray://\S+|[\w.-]+:\d+)$")


def _ray_argv(argv: list[str]) -> list[str]:
    """`--ray` takes an optional address: `--ray` alone becomes `--ray=-`; `--ray ADDRESS` (auto,
    local, HOST:PORT, ray://...) becomes `--ray=ADDRESS`; anything else after it is left alone."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--ray":
            if i + 1 < len(argv) and _RAY_ADDRESS.match(argv[i + 1]):
                out.append(f"--ray={argv[i + 1]}")
                i += 2
                continue
            out.append(f"--ray={RAY_ANY}")
        else:
            out.append(argv[i])
        i += 1
    return out


def _ray_only(ray: Optional[str], **given) -> None:
    """Options that shape a Ray run, given without --ray: bad input, not silently ignored."""
    named = [f"--{k.replace('_', '-')}" for k, v in given.items() if v is not None]
    if ray is None and named:
        from .errors import InvalidInputError

        raise InvalidInputError(f"{', '.join(named)} {'applies' if len(named) == 1 else 'apply'} only with --ray")


BATCH_FAILED = 5  # `lasso batch`: some items failed (each recorded in results.jsonl)


@app.command()
def batch(
    source: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="A folder of images, or a JSONL / CSV manifest (image, instruction, id) with an instruction per image.",
    ),
    output: str = typer.Option(
        ...,
        "-o",
        "--output",
        help="Folder for the outputs, masks/ and results.jsonl (with --ray also a URI: s3://bucket/out, gs://...).",
    ),
    instruction: Optional[str] = typer.Option(
        None, "--instruction", "-i", help="The instruction for every image (a manifest row without one takes it)."
    ),
    preset: str = PRESET_OPT,
    seed: Optional[int] = typer.Option(None, help="One seed for every item (default: a random one each, recorded)."),
    steps: Optional[int] = STEPS_OPT,
    guidance: Optional[float] = GUIDANCE_OPT,
    strength: float = STRENGTH_OPT,
    device: Optional[str] = DEVICE_OPT,
    dtype: Optional[str] = DTYPE_OPT,
    vlm: Optional[str] = VLM_OPT,
    vlm_api_key: Optional[str] = VLM_API_KEY_OPT,
    segmenter: Optional[str] = SEGMENTER_OPT,
    inpainter: Optional[str] = INPAINTER_OPT,
    detector: Optional[str] = DETECTOR_OPT,
    parser: str = PARSER_OPT,
    grounder: Optional[str] = GROUNDER_OPT,
    attention_layers: Optional[str] = ATTENTION_LAYERS_OPT,
    box_threshold: Optional[float] = BOX_THRESHOLD_OPT,
    recolor: str = RECOLOR_OPT,
    compile: bool = COMPILE_OPT,
    low_vram: bool = LOW_VRAM_OPT,
    png_compress: int = PNG_COMPRESS_OPT,
    deepcache: int = DEEPCACHE_OPT,
    lora: Optional[str] = LORA_OPT,
    lora_scale: Optional[float] = LORA_SCALE_OPT,
    masks: bool = typer.Option(
        True, "--masks/--no-masks", help="Write each compositing mask to OUT/masks/ (default: yes)."
    ),
    ray: Optional[str] = RAY_OPT,
    workers: Optional[int] = typer.Option(
        None,
        "--workers",
        min=1,
        help="With --ray: editors to run (default: one per GPU of the cluster, or one per --cpus-per-worker cores).",
    ),
    gpus_per_worker: Optional[float] = typer.Option(
        None,
        "--gpus-per-worker",
        min=0,
        help="With --ray: GPUs each editor holds (default 1; 0.5 for the fast preset; 0 without GPUs).",
    ),
    cpus_per_worker: float = typer.Option(
        1.0, "--cpus-per-worker", min=0.01, help="With --ray: CPU cores each editor holds."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar; only the summary."),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks."),
):
    (
        """Edit every image of INPUT with the models loaded once; resumable; --ray: on a Ray cluster.

    Each item gets a line in OUT/results.jsonl (output, mask, plan, seed, timings, warnings, or its error). """
        """Running the same command again skips the items already done. """
        """Exit codes: 0 every item edited, 5 some failed, 2 a bad INPUT or option, 130 interrupted."""
    )
    _quiet_libraries()
    with _guard(debug):
        from .batch import BatchRunner, read_items
        from .config import EditorConfig
        from .editor import Editor
        from .errors import InvalidInputError
        from .inputs import check_settings
        from .uris import is_uri

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
        config = EditorConfig(
            preset=preset,
            device=device,
            dtype=dtype,
            vlm=vlm,
            vlm_api_key=vlm_api_key,
            segmenter=segmenter,
            inpainter=inpainter,
            detector=detector,
            parser=parser,
            grounder=grounder,
            attention=_attention(attention_layers),
            box_threshold=box_threshold,
            recolor=recolor,
            compile=compile,
            low_vram=low_vram,
            deepcache=deepcache,
            lora=lora,
            lora_scale=lora_scale,
        )
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
        runner: Any  # the local runner or the Ray one: the same check() and run()
        if ray is not None:
            from .scale.ray_batch import RayBatchRunner

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


@app.command("eval")
def eval_(
    data: Path = typer.Argument(
        ...,
        metavar="DATA",
        help="A MagicBrush copy (folder of parquet shards, or one "
        "shard) or a JSONL manifest (image, instruction, target, mask, caption).",
    ),
    output: Path = typer.Option(
        ...,
        "-o",
        "--output",
        help="Report folder: index.html, summary.md/json, samples.jsonl, plots/, images/, outputs/.",
    ),
    preset: str = PRESET_OPT,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Score only the first N samples."),
    turns: str = typer.Option(
        "single",
        "--turns",
        help="single: each turn from the ground-truth input; multi: chain the turns, score the last.",
    ),
    seed: int = typer.Option(0, help="Seed of every edit."),
    steps: Optional[int] = STEPS_OPT,
    clip: Optional[str] = typer.Option(
        None, help="CLIP for CLIP-I/CLIP-T (default openai/clip-vit-base-patch32; tiny preset: a tiny random one)."
    ),
    dino: Optional[str] = typer.Option(None, help="DINO for the DINO score (default facebook/dino-vits16)."),
    device: Optional[str] = DEVICE_OPT,
    parser: str = PARSER_OPT,
    grounder: Optional[str] = GROUNDER_OPT,
    attention_layers: Optional[str] = ATTENTION_LAYERS_OPT,
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar."),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks."),
):
    (
        """Score Lasso on an editing dataset with MagicBrush's metrics (L1, L2, CLIP-I, CLIP-T, DINO) """
        """and its own (L1 outside / inside the mask, mask IoU, target-not-found rate, seconds per edit)."""
    )
    _quiet_libraries()
    with _guard(debug):
        from .config import EditorConfig
        from .editor import Editor
        from .evaluation.data import load_chains, samples
        from .evaluation.metrics import Scorers
        from .evaluation.report import write_report
        from .evaluation.run import aggregate, evaluate
        from .inputs import check_settings
        from .loading import ensure_available, resolve_device

        # 1. Read the data and check the options before loading a model.
        _need_extra("eval", "lasso eval", ("matplotlib", "the report's plots"))
        steps, _, _, seed = check_settings(steps, None, 0.65, seed)
        items = samples(load_chains(data), turns)[:limit]
        if preset == "tiny" and (clip is None or dino is None):
            from .testing.tiny import ensure_tiny_eval_models

            tiny = ensure_tiny_eval_models()
            clip, dino = clip or tiny["clip"], dino or tiny["dino"]
        clip = clip or "openai/clip-vit-base-patch32"
        dino = dino or "facebook/dino-vits16"
        ensure_available({"clip": clip, "dino": dino})
        # 2. Load once, edit and score every sample.
        config = EditorConfig(
            preset, device=device, parser=parser, grounder=grounder, attention=_attention(attention_layers)
        )
        editor = Editor.from_config(config)
        _first_use(editor, quiet)
        scorers = Scorers(clip, dino, device=resolve_device(device))
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

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
        with bar:
            records = evaluate(
                editor,
                items,
                scorers,
                output,
                seed=seed,
                edit_kwargs={"steps": steps} if steps else {},
                on_sample=lambda rec: bar.advance(task),
            )
        summary = aggregate(records)
        meta = {
            "data": str(data),
            "turns": turns,
            "preset": preset,
            "seed": seed,
            "models": editor.models,
            "clip": clip,
            "dino": dino,
            "limit": limit,
        }
        write_report(output, records, summary, meta)
        # 3. The headline numbers.
        heads = ", ".join(
            f"{k} {summary[k]:.4f}"
            for k in ("l1", "l2", "clip_i", "clip_t", "dino", "l1_outside", "mask_iou")
            if summary.get(k) is not None
        )
        typer.echo(
            f"{summary['samples']} samples ({turns}-turn): {heads}; target not found "
            f"{summary['not_found_rate']:.1%}; report: {output / 'index.html'}"
        )


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
    parser: str = PARSER_OPT,
    as_json: bool = typer.Option(False, "--json", metavar="", help="Print the plan as JSON on stdout."),
    overlay: Optional[Path] = typer.Option(
        None, "--overlay", help="Draw boxes and masks over the image into this PNG."
    ),
    preset: str = PRESET_OPT,
    grounder: Optional[str] = GROUNDER_OPT,
    attention_layers: Optional[str] = ATTENTION_LAYERS_OPT,
    box_threshold: Optional[float] = BOX_THRESHOLD_OPT,
    device: Optional[str] = DEVICE_OPT,
    dtype: Optional[str] = DTYPE_OPT,
    vlm: Optional[str] = VLM_OPT,
    vlm_api_key: Optional[str] = VLM_API_KEY_OPT,
    segmenter: Optional[str] = SEGMENTER_OPT,
    detector: Optional[str] = DETECTOR_OPT,
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks."),
):
    """Show what Lasso understood, without painting: edits, and with --overlay the boxes and masks.
    Needs no inpainting model."""
    _quiet_libraries()
    written: list[Path] = []
    with _guard(debug, written):
        from .imaging import check_output_path, save_image
        from .inputs import check_inputs

        loaded = check_inputs(image, instruction).loaded
        attention = _attention(attention_layers)
        if overlay is not None:
            check_output_path(overlay, image)
        result = None
        if parser == "rules" and overlay is None:
            from .parse.rules import RulesParser

            the_plan = RulesParser().parse(loaded.rgb, instruction)
        else:
            from .config import EditorConfig
            from .editor import Editor

            config = EditorConfig(
                preset=preset,
                device=device,
                dtype=dtype,
                vlm=vlm,
                vlm_api_key=vlm_api_key,
                segmenter=segmenter,
                detector=detector,
                parser=parser,
                grounder=grounder,
                attention=attention,
                box_threshold=box_threshold,
                paint=False,
            )
            editor = Editor.from_config(config)
            if overlay is None:
                the_plan = editor.parser.parse(loaded.rgb, instruction)
            else:
                result = editor(loaded, instruction, dry_run=True)
                the_plan = result.plan
                from .overlay import draw_overlay

                save_image(draw_overlay(loaded.rgb, result), overlay)
                written.append(overlay)
        if as_json:
            out: dict[str, Any] = {
                "edits": [e.brief() for e in the_plan.edits],
                "source": the_plan.source,
                "warnings": the_plan.warnings,
            }
            if result is not None:
                out["groundings"] = [g.to_dict() if g else None for g in result.groundings]
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


@app.command()
def serve(
    preset: str = PRESET_OPT,
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(7860, min=1, max=65535, help="Port."),
    data_dir: Path = typer.Option(Path("~/.cache/lasso/serve"), "--data-dir", help="Sessions and uploads."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="LASSO_API_KEY", help="Require 'Authorization: Bearer KEY' on /v1 (or LASSO_API_KEY)."
    ),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        help="A host name this server answers changes for "
        "without an API key, besides its addresses, localhost and its own names "
        "(repeatable; '*' for any, behind a proxy that checks).",
    ),
    max_upload_mb: float = typer.Option(50.0, "--max-upload-mb", min=0.001, help="Largest upload, MB (413 above)."),
    queue: int = typer.Option(8, "--queue", min=1, help="Edits that may wait; more get 429 at once."),
    timeout: float = typer.Option(600.0, "--timeout", min=1, help="Seconds a request waits for its edit (503 after)."),
    device: Optional[str] = DEVICE_OPT,
    vlm: Optional[str] = VLM_OPT,
    vlm_api_key: Optional[str] = VLM_API_KEY_OPT,
    lora: Optional[str] = LORA_OPT,
    lora_scale: Optional[float] = LORA_SCALE_OPT,
    ray: Optional[str] = RAY_OPT,
    replicas: Optional[int] = typer.Option(
        None,
        "--replicas",
        min=1,
        help="With --ray: replicas at most, each a whole server (default: one per GPU of the cluster; 1 without GPUs).",
    ),
    min_replicas: Optional[int] = typer.Option(
        None,
        "--min-replicas",
        min=1,
        help="With --ray: replicas kept when idle (default 1); autoscaling on queue length in between.",
    ),
    gpus_per_replica: Optional[float] = typer.Option(
        None,
        "--gpus-per-replica",
        min=0,
        help="With --ray: GPUs each replica holds (default 1; 0.5 for the fast preset).",
    ),
    cpus_per_replica: float = typer.Option(
        1.0, "--cpus-per-replica", min=0.01, help="With --ray: CPU cores each replica holds."
    ),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks."),
):
    (
        """Serve the page (at /) and the HTTP API (OpenAPI at /docs): the models load once and stay warm; """
        """one log line per request; SIGTERM or Ctrl-C stops the running edit cleanly. """
        """--ray: as a Ray Serve deployment, one replica per GPU, sessions shared through --data-dir."""
    )
    _quiet_libraries()
    with _guard(debug):
        try:
            import uvicorn

            from .server.app import ServerSettings, create_app
        except ImportError as e:
            from .errors import InvalidInputError

            raise InvalidInputError(
                f"`lasso serve` needs the serve extra: pip install 'lasso-edit[serve]' ({e})"
            ) from None
        from .config import EditorConfig

        config = EditorConfig(preset, device=device, vlm=vlm, vlm_api_key=vlm_api_key, lora=lora, lora_scale=lora_scale)
        settings = ServerSettings(
            preset=preset,
            data_dir=str(data_dir.expanduser().resolve()),
            api_key=api_key,
            max_upload_mb=max_upload_mb,
            queue=queue,
            timeout_s=timeout,
            allowed_hosts=tuple(allow_host),
            editor=config,
        )
        _ray_only(
            ray,
            replicas=replicas,
            min_replicas=min_replicas,
            gpus_per_replica=gpus_per_replica,
            cpus_per_replica=None if cpus_per_replica == 1.0 else cpus_per_replica,
        )
        if ray is not None:
            return _serve_on_ray(
                settings,
                host,
                port,
                None if ray == RAY_ANY else ray,
                replicas,
                min_replicas,
                gpus_per_replica,
                cpus_per_replica,
            )
        app_ = create_app(settings)

        class Server(uvicorn.Server):
            def handle_exit(self, sig, frame):  # SIGTERM / Ctrl-C: the running edit stops at its next step
                app_.state.jobs.cancel_running()
                super().handle_exit(sig, frame)

        typer.echo(
            f"Lasso on http://{host}:{port} (the page; API docs at /docs); preset {preset}; Ctrl-C to stop", err=True
        )
        server = Server(
            uvicorn.Config(app_, host=host, port=port, log_level="info", access_log=True)
        )  # a line per request
        try:
            server.run()
        except (Terminated, KeyboardInterrupt):  # uvicorn shut down cleanly, then passed the signal on
            pass
        typer.echo("stopped", err=True)


def _serve_on_ray(settings, host, port, address, replicas, min_replicas, gpus, cpus) -> None:
    """`lasso serve --ray`: deploy, say where, and hold until SIGTERM or Ctrl-C, then take the app down."""
    import time

    from .scale import ray_serve

    typer.echo(
        f"Deploying Lasso on Ray Serve (preset {settings.preset}; sessions in {settings.data_dir}) ...", err=True
    )
    try:
        low, high = ray_serve.run(settings, host, port, address, replicas, min_replicas, gpus, cpus)
        span = f"{high} replica{'s' if high > 1 else ''}" if low == high else f"{low} to {high} replicas"
        typer.echo(f"Lasso on http://{host}:{port} via Ray Serve ({span}); Ctrl-C to stop", err=True)
        while True:
            time.sleep(1)
    except (Terminated, KeyboardInterrupt):
        pass
    finally:
        try:
            ray_serve.stop()
        except Exception:  # noqa: BLE001 - never deployed, or the cluster is gone already
            pass
    typer.echo("stopped", err=True)


@app.command()
def train(
    data: Path = typer.Argument(
        ...,
        metavar="DATA",
        help="Pairs to learn from: a MagicBrush copy (folder of parquet "
        "shards, or one) or a JSONL manifest (image, mask, target, instruction).",
    ),
    output: Path = typer.Option(
        ...,
        "-o",
        "--output",
        help="Folder for the LoRA (pytorch_lora_weights.safetensors), "
        "checkpoints/, validation/, loss.png, losses.jsonl.",
    ),
    preset: str = PRESET_OPT,
    inpainter: Optional[str] = INPAINTER_OPT,
    steps: int = typer.Option(1000, help="Optimizer steps."),
    batch_size: int = typer.Option(1, "--batch-size", help="Pairs per step (per GPU)."),
    grad_accum: int = typer.Option(1, "--grad-accum", help="Batches whose gradients add up to one step."),
    lr: float = typer.Option(1e-4, "--lr", help="Learning rate (AdamW, constant after a short warm-up)."),
    rank: int = typer.Option(8, "--rank", help="LoRA rank."),
    targets: str = typer.Option(
        "attention",
        "--targets",
        help="UNet layers the LoRA adapts: attention, or all "
        "(also the ResNet convolutions: more capacity, a larger file).",
    ),
    resolution: Optional[int] = typer.Option(
        None, "--resolution", help="Crop side in pixels (default: the model's native, 512 for SD 1.5, 1024 for SDXL)."
    ),
    mixed_precision: str = typer.Option(
        "auto", "--mixed-precision", help="auto, no, fp16 or bf16 (auto: bf16 or fp16 on a GPU, no on the CPU)."
    ),
    gradient_checkpointing: bool = typer.Option(
        False,
        "--gradient-checkpointing",
        metavar="",
        help="Recompute activations in the backward pass: less memory, slower.",
    ),
    adam_8bit: bool = typer.Option(False, "--adam-8bit", metavar="", help="8-bit AdamW (bitsandbytes): less memory."),
    fidelity_weight: float = typer.Option(1.0, "--fidelity-weight", help="w_fid: the denoising loss on the target."),
    inside_weight: float = typer.Option(4.0, "--inside-weight", help="Its weight inside the edit mask..."),
    outside_weight: float = typer.Option(
        1.0, "--outside-weight", help="...and outside it (0: the outside is ignored)."
    ),
    preservation_weight: float = typer.Option(
        0.25, "--preservation-weight", help="w_pres: the predicted clean image against the source, outside the mask."
    ),
    clip_weight: float = typer.Option(0.1, "--clip-weight", help="w_clip: CLIP's directional instruction alignment."),
    clip_model: Optional[str] = typer.Option(
        None, "--clip-model", help="A CLIP (Hub id or folder) for the alignment term (default: none, the term is off)."
    ),
    clip_every: float = typer.Option(0.25, "--clip-every", help="The fraction of steps that compute the CLIP term."),
    validation: int = typer.Option(2, "--validation", help="Pairs held out for the validation sheet."),
    validate_every: int = typer.Option(0, "--validate-every", help="Validation sheet every N steps (0: at the end)."),
    checkpoint_every: int = typer.Option(500, "--checkpoint-every", help="Checkpoint every N steps (0: none)."),
    resume: bool = typer.Option(False, "--resume", metavar="", help="Continue from the latest checkpoint in -o."),
    seed: int = typer.Option(0, help="Seed of the batches, noise and timesteps."),
    device: Optional[str] = DEVICE_OPT,
    quiet: bool = typer.Option(False, "--quiet", "-q", metavar="", help="No progress bar; only the summary."),
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks."),
):
    (
        """Fine-tune the inpainter on your own edits: a LoRA trained with Lasso's edit loss (fidelity inside """
        """the mask, preservation outside it; docs/training.md). Several GPUs: accelerate launch -m lasso_edit.cli train ... """
        """Use the result with: lasso edit --lora OUTPUT."""
    )
    _quiet_libraries()
    with _guard(debug):
        _need_extra("train", "lasso train", ("matplotlib", "loss.png"), ("tensorboard", "the logs"))
        from .train.loss import LossWeights
        from .train.trainer import TrainConfig, Trainer

        config = TrainConfig(
            data=data,
            output=output,
            preset=preset,
            inpainter=inpainter,
            steps=steps,
            batch_size=batch_size,
            grad_accum=grad_accum,
            lr=lr,
            rank=rank,
            targets=targets,
            resolution=resolution,
            mixed_precision=mixed_precision,
            gradient_checkpointing=gradient_checkpointing,
            adam_8bit=adam_8bit,
            seed=seed,
            checkpoint_every=checkpoint_every,
            validate_every=validate_every,
            validation=validation,
            weights=LossWeights(fidelity_weight, inside_weight, outside_weight, preservation_weight, clip_weight),
            clip_model=clip_model,
            clip_every=clip_every,
            resume=resume,
            device=device,
        )
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        bar = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
        )
        task = bar.add_task("train", total=steps, info="")

        def on_step(entry, total) -> None:
            bar.update(
                task,
                completed=entry.step,
                info=f"loss {entry.loss:.4f} (fid {entry.fidelity:.4f}, pres "
                f"{entry.preservation:.4f}) {1 / max(entry.seconds, 1e-9):.2f} it/s",
            )

        trainer = Trainer(config, on_step=on_step)
        trainer.setup()  # 1. read the data, load the model, check the folder, resume
        _warn(trainer.notes)
        bar.update(task, completed=trainer.step)
        try:
            with bar:
                out = trainer.train()  # 2. train; checkpoints and validation sheets on the way
        except BaseException as e:
            stop = _stop_signal(e)
            if stop is None:
                raise
            _fail(
                f"{stop[0].split(';')[0]}; a checkpoint at step {trainer.step} is in {output / 'checkpoints'}: "
                "add --resume to the same command to continue",
                stop[1],
            )
        last = trainer.losses[-1]
        typer.echo(
            f"trained {trainer.step} steps (final loss {last.loss:.4f}); LoRA in {out}; "
            f"use it with: lasso edit IMAGE INSTRUCTION --lora {out}"
        )


@app.command()
def models(
    debug: bool = typer.Option(False, "--debug", metavar="", help="Show tracebacks."),
):
    """List the presets, the model of each stage, and whether it is in the local cache."""
    with _guard(debug):
        from rich.console import Console
        from rich.table import Table

        from .loading import is_cached
        from .presets import DEFAULT_PRESET, PRESETS
        from .testing.tiny import default_tiny_dir

        table = Table(title="Lasso presets (default: %s)" % DEFAULT_PRESET)
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
        for p in PRESETS.values():
            typer.echo(f"{p.name}: {p.description}")
        typer.echo(
            "Models not cached are downloaded on first use; fetch one ahead of time with `hf download ID`, "
            "or pass a local folder with --vlm/--segmenter/--inpainter/--detector."
        )


class Terminated(BaseException):
    """SIGTERM (kill, timeout, docker stop, CI), raised where the program is, like Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _stop_signal(e: BaseException | None) -> tuple[str, int] | None:
    """(message, exit code) when `e` is, or was raised because of, SIGTERM or Ctrl-C.

    A library may wrap the exception our handler raised in its own (a callback run from C++, an
    import hook), so the chain of causes is searched too."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, Terminated):
            return "terminated; no output was written", 143
        if isinstance(e, KeyboardInterrupt):
            return "interrupted; no output was written", 130
        e = e.__cause__ or e.__context__
    return None


def _command():
    """The click command behind `app`, with `--help` shown as the flag it is (no `<bool>` type)."""
    command = typer.main.get_command(app)
    for cmd in (command, *getattr(command, "commands", {}).values()):
        help_option = cmd.get_help_option(cmd.context_class(cmd))
        if help_option is not None:
            help_option.metavar = ""
    return command


def main() -> None:  # console-script entry point
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)  # temporary files are removed, as on Ctrl-C
    try:
        code = _command()(standalone_mode=False)
    except (Terminated, KeyboardInterrupt) as e:  # outside a command's guard: before or after its work
        message, code = _stop_signal(e) or ("interrupted", 130)
        typer.echo(f"error: {message}", err=True)
        sys.exit(code)
    except BrokenPipeError:  # the reader went away (`lasso models | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
    except Exception as e:  # noqa: BLE001 - click's exceptions (typer vendors its own click): by their shape
        kind = type(e).__name__
        if kind == "NoArgsIsHelpError":  # `lasso` alone: the help
            typer.echo(getattr(e, "format_message")(), err=True)  # noqa: B009 - click's, by shape
            sys.exit(2)
        if kind == "Abort":
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        if not (hasattr(e, "format_message") and isinstance(getattr(e, "exit_code", None), int)):
            raise
        ctx = getattr(e, "ctx", None)  # usage errors: one line, like every Lasso error
        command = f" {ctx.info_name}" if ctx is not None and ctx.parent is not None else ""
        exit_code: int = getattr(e, "exit_code")  # noqa: B009 - click's, checked above
        hint = f" (see `lasso{command} --help`)" if exit_code == 2 else ""
        typer.echo(f"error: {' '.join(getattr(e, 'format_message')().split())}{hint}", err=True)  # noqa: B009
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
