"""`lasso train`: a LoRA for the inpainter."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import typer

from .common import _fail, _guard, _need_extra, _quiet_libraries, _warn
from .core import _stop_signal, app
from .options import DEBUG_OPT, DEVICE_OPT, INPAINTER_OPT, PRESET_OPT

if TYPE_CHECKING:
    from ..train.trainer import StepLog, TrainConfig


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
    debug: bool = DEBUG_OPT,
) -> None:
    (
        """Fine-tune the inpainter on your own edits: a LoRA trained with Lasso's edit loss (fidelity inside """
        """the mask, preservation outside it; docs/training.md). Several GPUs: accelerate launch -m lasso_edit.cli train ... """
        """Use the result with: lasso edit --lora OUTPUT."""
    )
    _quiet_libraries()
    with _guard(debug):
        _need_extra("train", "lasso train", ("matplotlib", "loss.png"), ("tensorboard", "the logs"))
        _train(_train_config(locals()), quiet)


def _train_config(params: dict[str, Any]) -> TrainConfig:
    """The training config from the command's parameters (its `locals()`), each taken by its
    field's name, the five loss weights as one."""
    from ..train.loss import LossWeights
    from ..train.trainer import TrainConfig

    weights = LossWeights(*(params[f"{w}_weight"] for w in ("fidelity", "inside", "outside", "preservation", "clip")))
    names = {f.name for f in fields(TrainConfig)} - {"weights"}
    return TrainConfig(**{k: v for k, v in params.items() if k in names}, weights=weights)


def _train(config: TrainConfig, quiet: bool) -> None:
    """Read the data, load the model, resume; train with a progress bar (checkpoints and validation
    sheets on the way), and say where the LoRA is. An interrupt says how to resume."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..train.trainer import Trainer

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
    task = bar.add_task("train", total=config.steps, info="")

    def on_step(entry: StepLog, total: int) -> None:
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
            f"{stop[0].split(';')[0]}; a checkpoint at step {trainer.step} is in {config.output / 'checkpoints'}: "
            "add --resume to the same command to continue",
            stop[1],
        )
    last = trainer.losses[-1]
    typer.echo(
        f"trained {trainer.step} steps (final loss {last.loss:.4f}); LoRA in {out}; "
        f"use it with: lasso edit IMAGE INSTRUCTION --lora {out}"
    )
