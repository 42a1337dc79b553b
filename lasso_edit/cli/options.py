"""Options several commands take, declared once. Every list of choices in their help (presets,
parsers, grounders, recolour modes) is read from its registry, so a new entry is listed with no
change here; `in_panel` puts a shared option in one command's help panel."""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import typer
from typer.models import OptionInfo

from ..core.actions import RECOLOR_MODES
from ..core.presets import DEFAULT_PRESET, PRESETS
from ..core.registry import GROUNDERS, PARSERS

# The panels `lasso edit --help` and `lasso batch --help` group their options into, in this order.
MODELS = "Models"
EDIT = "Edit"
OUTPUTS = "Outputs"
ADVANCED = "Advanced"


def in_panel(option: OptionInfo, panel: str) -> Any:
    """A copy of a shared option, shown in `panel` of one command's help (the shared one stays in
    the plain Options panel of the commands that do not group theirs). Typed Any, as typer.Option is:
    it is a parameter's default."""
    placed = copy.copy(option)
    placed.rich_help_panel = panel
    return placed


def per_preset(field: str) -> str:
    """What the presets choose for `field`, as `--help` says it: "rules-first for fast, auto otherwise"."""
    chosen = {name: getattr(p, field) for name, p in PRESETS.items()}
    usual = Counter(chosen.values()).most_common(1)[0][0]
    odd = [f"{value} for {name}" for name, value in chosen.items() if value != usual]
    return ", ".join([*odd, f"{usual} otherwise"]) if odd else usual


PRESET_HELP = f"Model set: {', '.join(PRESETS)} (see `lasso models`)."


# Options several commands take, declared once (typer only reads these defaults).
PRESET_OPT = typer.Option(DEFAULT_PRESET, "--preset", "-p", help=PRESET_HELP)


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
    help=f"{', '.join(PARSERS.names())} (default: the preset's: {per_preset('parser')}).",
)


GROUNDER_OPT = typer.Option(
    None, help=f"{', '.join(GROUNDERS.names())} (default: the preset's: {per_preset('grounder')})."
)


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


RECOLOR_OPT = typer.Option(
    "texture",
    help="How a recolour is painted: " + "; ".join(f"{mode}: {what}" for mode, what in RECOLOR_MODES.items()) + ".",
)


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


RAY_OPT = typer.Option(
    None,
    "--ray",
    metavar="[ADDRESS]",
    help="Run on a Ray cluster: `--ray` alone joins the "
    "running one (or starts one here); `--ray auto`, `--ray HOST:6379` or `--ray ray://HOST:10001` "
    "name it. Needs the ray extra.",
)


SKIP_UNKNOWN_OPT = typer.Option(
    False,
    "--skip-unknown",
    metavar="",
    help="Leave out, with a warning, any part of the instruction Lasso cannot do (rotate, crop, upscale, 4K, "
    "sharpen, ...) and make the rest. Without it such an instruction stops with exit 2 and nothing is written.",
)
