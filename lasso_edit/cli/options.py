"""Options several commands take, declared once. Every list of choices in their help (presets,
parsers, grounders, recolour modes) is read from its registry, so a new entry is listed with no
change here; `in_panel` puts a shared option in one command's help panel.

The options `lasso edit` and `lasso batch` (and in part `lasso plan`) share panel by panel are
declared once more, as groups (`EditOptions`, `ModelOptions`, `AdvancedOptions`): a command names a
group with one parameter, `models: ModelOptions = group(ModelOptions, MODELS)`, and `@with_groups`
spreads it into the group's options where that parameter stands (so `--help` lists them in that
place and panel) and hands the command the group, filled in, as that parameter."""

from __future__ import annotations

import copy
import functools
import inspect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional, TypeVar, get_type_hints

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


PRESET_HELP = f"Model set: {', '.join(PRESETS)}, or auto: balanced with a CUDA GPU, lite without (see `lasso models`)."


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


INPAINTER_OPT = typer.Option(
    None,
    help="Override the painter: a painter's name (sd, sdxl, flux2-klein, ...), NAME:CHECKPOINT, a Hub id or "
    "local folder, or openai:MODEL@BASE_URL for a hosted painter (OpenAI's images API: the crop leaves "
    "this machine, one call per edit).",
)


REMOVER_OPT = typer.Option(
    None,
    help="Override the painter for remove alone (lite: lama, LaMa on ONNX Runtime): the forms --inpainter takes.",
)


INPAINTER_API_KEY_OPT = typer.Option(
    None,
    "--inpainter-api-key",
    envvar="OPENAI_API_KEY",
    show_envvar=False,
    help="The key of an openai: painter's server (or OPENAI_API_KEY).",
)


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


NO_CREDENTIALS_OPT = typer.Option(
    False,
    "--no-credentials",
    metavar="",
    help="Write no Content Credentials (the signed C2PA manifest that says which pixels each edit changed).",
)
SIGN_CERT_OPT = typer.Option(
    None,
    "--sign-cert",
    envvar="LASSO_SIGN_CERT",
    help="Sign Content Credentials with this PEM certificate chain, leaf first (your organisation's); "
    "default: Lasso's local identity in the config folder.",
)
SIGN_KEY_OPT = typer.Option(None, "--sign-key", envvar="LASSO_SIGN_KEY", help="The --sign-cert's PEM private key.")
TIMESTAMP_URL_OPT = typer.Option(
    None, "--timestamp-url", help="A time-stamp authority for the signature (default none: Lasso works offline)."
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


DEBUG_OPT = typer.Option(False, "--debug", metavar="", help="Show tracebacks.")


# --- Groups of options, each declared once and spread into every command that names it.


def _member(option: OptionInfo) -> Any:
    """A field of an option group: the option's default, with the option itself kept for `--help`."""
    return field(default=option.default, metadata={"option": option})


@dataclass(frozen=True)
class EditOptions:
    """How an edit is painted: the Edit panel `lasso edit` and `lasso batch` share."""

    steps: Optional[int] = _member(STEPS_OPT)
    guidance: Optional[float] = _member(GUIDANCE_OPT)
    strength: float = _member(STRENGTH_OPT)
    recolor: str = _member(RECOLOR_OPT)
    skip_unknown: bool = _member(SKIP_UNKNOWN_OPT)


@dataclass(frozen=True)
class ModelOptions:
    """Which models, where: the Models panel `lasso edit` and `lasso batch` share (`lasso plan` part of it)."""

    preset: str = _member(PRESET_OPT)
    device: Optional[str] = _member(DEVICE_OPT)
    dtype: Optional[str] = _member(DTYPE_OPT)
    low_vram: bool = _member(LOW_VRAM_OPT)
    vlm: Optional[str] = _member(VLM_OPT)
    vlm_api_key: Optional[str] = _member(VLM_API_KEY_OPT)
    segmenter: Optional[str] = _member(SEGMENTER_OPT)
    inpainter: Optional[str] = _member(INPAINTER_OPT)
    inpainter_api_key: Optional[str] = _member(INPAINTER_API_KEY_OPT)
    remover: Optional[str] = _member(REMOVER_OPT)
    detector: Optional[str] = _member(DETECTOR_OPT)
    lora: Optional[str] = _member(LORA_OPT)
    lora_scale: Optional[float] = _member(LORA_SCALE_OPT)


@dataclass(frozen=True)
class AdvancedOptions:
    """The parser, the grounder and the speed-ups: the Advanced panel `lasso edit` and `lasso batch`
    share (`lasso plan` the first four)."""

    parser: Optional[str] = _member(PARSER_OPT)
    grounder: Optional[str] = _member(GROUNDER_OPT)
    attention_layers: Optional[str] = _member(ATTENTION_LAYERS_OPT)
    box_threshold: Optional[float] = _member(BOX_THRESHOLD_OPT)
    compile: bool = _member(COMPILE_OPT)
    deepcache: int = _member(DEEPCACHE_OPT)


@dataclass(frozen=True)
class CredentialOptions:
    """Who signs the Content Credentials: the panel `lasso edit`, `lasso batch` and `lasso contain` share."""

    no_credentials: bool = _member(NO_CREDENTIALS_OPT)
    sign_cert: Optional[Path] = _member(SIGN_CERT_OPT)
    sign_key: Optional[Path] = _member(SIGN_KEY_OPT)
    timestamp_url: Optional[str] = _member(TIMESTAMP_URL_OPT)

    def credentials(self) -> Any:
        """These options as core/config.py's Credentials, the identity checked now (before any model
        loads): an unreadable, mismatched or expired certificate or key is exit 2 naming the file."""
        from ..core.config import Credentials
        from ..pipeline.credentials import identity

        made = Credentials.of(
            not self.no_credentials,
            cert=str(self.sign_cert) if self.sign_cert else None,
            key=str(self.sign_key) if self.sign_key else None,
            timestamp_url=self.timestamp_url,
        )
        identity(made)
        return made


@dataclass(frozen=True)
class _Group:
    """Where a group stands in a command's parameters, in which panel, and which of its options."""

    cls: type
    panel: str
    only: tuple[str, ...]

    def parameters(self) -> list[inspect.Parameter]:
        hints = get_type_hints(self.cls)
        return [
            inspect.Parameter(
                f.name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=in_panel(f.metadata["option"], self.panel),
                annotation=hints[f.name],
            )
            for f in fields(self.cls)
            if not self.only or f.name in self.only
        ]


def group(cls: type, panel: str, *, only: tuple[str, ...] = ()) -> Any:
    """A command's parameter that stands for the options of group `cls` (`only` those named, when
    given), shown in `panel`; `@with_groups` spreads it. Typed Any, as typer.Option is."""
    return _Group(cls, panel, only)


R = TypeVar("R")


def with_groups(command: Callable[..., R]) -> Callable[..., R]:
    """`command` as typer sees it: each `group(...)` parameter spread into the group's options in its
    place; called, it gathers them back into the group (the options left out keep their defaults)."""
    signature = inspect.signature(command, eval_str=True)
    spread: dict[str, tuple[type, list[str]]] = {}
    parameters: list[inspect.Parameter] = []
    for p in signature.parameters.values():
        if isinstance(p.default, _Group):
            members = p.default.parameters()
            spread[p.name] = (p.default.cls, [m.name for m in members])
            parameters += members
        else:
            parameters.append(p)

    @functools.wraps(command)
    def gathered(**options: Any) -> R:
        for name, (cls, members) in spread.items():
            options[name] = cls(**{m: options.pop(m) for m in members})
        return command(**options)

    gathered.__dict__["__signature__"] = signature.replace(parameters=parameters)
    gathered.__annotations__ = {p.name: p.annotation for p in parameters}
    return gathered


def params_of(*groups: Any, **more: Any) -> dict[str, Any]:
    """The options of `groups` (and `more`) by name, as a command's `locals()` would hold them were
    they its own parameters: what `EditorConfig.from_params` takes."""
    return {**{f.name: getattr(g, f.name) for g in groups for f in fields(g)}, **more}
