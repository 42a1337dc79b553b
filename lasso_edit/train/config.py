"""What a training run is told (`lasso train`'s options), checked before anything loads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import InvalidInputError, ModelUnavailableError
from .loss import LossWeights

if TYPE_CHECKING:
    import torch

TARGET_MODULES = {  # peft module names; "attention" as diffusers' LoRA examples
    "attention": ["to_k", "to_q", "to_v", "to_out.0"],
    # also the transformers' projections and feed-forward layers, and the ResNet blocks
    "all": [
        "to_k",
        "to_q",
        "to_v",
        "to_out.0",
        "proj_in",
        "proj_out",
        "ff.net.0.proj",
        "ff.net.2",
        "conv1",
        "conv2",
        "conv_shortcut",
        "time_emb_proj",
    ],
}


@dataclass
class TrainConfig:
    data: Path
    output: Path
    preset: str = "balanced"
    inpainter: str | None = None  # a Hub id or folder instead of the preset's
    steps: int = 1000
    batch_size: int = 1
    grad_accum: int = 1
    lr: float = 1e-4
    rank: int = 8
    targets: str = "attention"  # the UNet layers the LoRA adapts: "attention", or "all" (also the ResNet convs)
    alpha: float | None = None  # LoRA alpha (None: the rank, a scale of 1)
    resolution: int | None = None  # the crop's target side (None: the model's native, 512 for SD 1.5)
    mixed_precision: str = "auto"  # no, fp16, bf16; auto: bf16 or fp16 on CUDA, no elsewhere
    gradient_checkpointing: bool = False
    adam_8bit: bool = False
    seed: int = 0
    checkpoint_every: int = 500
    validate_every: int = 0  # 0: once, at the end
    validation: int = 2  # pairs held out for the validation sheet (never trained on)
    weights: LossWeights = field(default_factory=LossWeights)
    clip_model: str | None = None  # a CLIP id or folder: the instruction-alignment term
    clip_every: float = 0.25  # the fraction of steps that compute it
    resume: bool = False
    device: str | None = None
    max_grad_norm: float = 1.0


def check(c: TrainConfig) -> None:
    checks = [
        (c.steps >= 1, "--steps must be at least 1"),
        (c.batch_size >= 1, "--batch-size must be at least 1"),
        (c.grad_accum >= 1, "--grad-accum must be at least 1"),
        (c.lr > 0, "--lr must be positive"),
        (c.rank >= 1, "--rank must be at least 1"),
        (c.targets in TARGET_MODULES, "--targets is attention or all"),
        (c.validation >= 0, "--validation must be 0 or more"),
        (0 <= c.clip_every <= 1, "--clip-every is a fraction of the steps, 0 to 1"),
        (c.mixed_precision in ("auto", "no", "fp16", "bf16"), "--mixed-precision is auto, no, fp16 or bf16"),
        (
            c.resolution is None or (c.resolution >= 64 and c.resolution % 8 == 0),
            "--resolution must be a multiple of 8, at least 64",
        ),
    ]
    w = c.weights
    checks.append((min(w.fidelity, w.inside, w.outside, w.preservation, w.clip) >= 0, "loss weights must be >= 0"))
    for ok, message in checks:
        if not ok:
            raise InvalidInputError(message)
    if not Path(c.data).exists():
        raise InvalidInputError(f"no such training data: {c.data}")
    import importlib.util

    if c.adam_8bit and importlib.util.find_spec("bitsandbytes") is None:  # before the model loads
        raise ModelUnavailableError("--adam-8bit needs bitsandbytes: pip install 'lasso-edit[low-vram]'")
    if Path(c.output).exists() and not Path(c.output).is_dir():
        raise InvalidInputError(f"-o {c.output} is a file; the LoRA is written into a folder")


def mixed_precision_for(mode: str, device: str | None) -> str:
    import torch

    if mode != "auto":
        if mode == "fp16" and (device == "cpu" or not torch.cuda.is_available()):
            raise InvalidInputError("--mixed-precision fp16 needs a CUDA GPU; use bf16 or no on the CPU")
        return mode
    if device != "cpu" and torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def has_tensorboard() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


def optimizer_for(params: Iterable[torch.nn.Parameter], lr: float, adam_8bit: bool) -> torch.optim.Optimizer:
    import torch

    if adam_8bit:
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise ModelUnavailableError("--adam-8bit needs bitsandbytes: pip install 'lasso-edit[low-vram]'") from None
        return bnb.optim.AdamW8bit(params, lr=lr, weight_decay=1e-2)
    return torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
