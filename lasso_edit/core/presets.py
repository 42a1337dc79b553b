"""Named model sets. Every stage can be overridden by a Hub id or a local folder.

Ids are the ones docs/models.md lists. `tiny` builds random tiny models locally (testing/tiny.py):
no download, noise for pictures, the real plumbing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .errors import InvalidInputError


@dataclass(frozen=True)
class Preset:
    name: str
    vlm: str  # LLaVA-family checkpoint (parse, and the VLM's own box)
    segmenter: str  # SAM / SAM 2 checkpoint
    inpainter: str  # SD / SDXL inpainting pipeline
    detector: str | None  # open-vocabulary detector for grounding (None: the VLM's box alone)
    steps: int  # default denoising steps
    guidance: float  # default classifier-free guidance scale
    box_threshold: float = 0.3  # detector score below which a target counts as absent (per detector family)
    grounder: str = "auto"  # default grounding strategy
    parser: str = "auto"  # default parser (registry.PARSERS): "rules-first" asks the VLM only when needed
    description: str = ""
    scheduler: str | None = None  # diffusion sampler (edit/inpaint.py SCHEDULERS); None: the checkpoint's own
    lora: str | None = None  # a few-step LoRA fused into the inpainting UNet (Hub id or folder)
    guidance_end: float = 1.0  # classifier-free guidance stops after this fraction of the steps
    eta: float | None = None  # the sampler's stochasticity (TCD's gamma), where it takes one
    adapter: str | None = None  # a LoRA of your own (`lasso train`): folder, .safetensors file or Hub id
    adapter_scale: float = 1.0  # its strength, fused into the UNet (0: none, 1: as trained)
    random_weights: bool = False  # random models by design (tiny): one notice, not the warnings of their noise
    # On a CPU, the detector's linear layers in dynamic int8 (torch's quantize_dynamic): where it
    # wins 1.5x or more on the same model (bench/lite.py: OWL-ViT B/32 2.5x); deterministic.
    cpu_int8: bool = False
    # On a CPU with bf16 instructions (loading.cpu_bf16), the painter in bf16 where the CPU's fp32
    # was to run it: SD-Turbo's UNet step 1.9x and TAESD 1.7-2x faster (bench/lite.py);
    # deterministic for a seed, but not fp32's bytes.
    cpu_bf16: bool = False
    # A painter for remove alone (None: the inpainter removes too): a fill network, not a diffusion model
    remover: str | None = None

    def models(self) -> dict[str, str]:
        """stage -> id or path, for the stages that have a model."""
        out = {"vlm": self.vlm, "segmenter": self.segmenter, "inpainter": self.inpainter}
        if self.detector:
            out["detector"] = self.detector
        if self.remover:
            out["remover"] = self.remover
        if self.lora:
            out["lora"] = self.lora
        if self.adapter:
            out["adapter"] = self.adapter
        return out


# The remote preset's servers and models (any OpenAI-compatible server can stand in: --vlm, --inpainter).
OPENAI_URL = "https://api.openai.com/v1"
REMOTE_VLM = "gpt-4.1-mini"  # a vision model that takes temperature 0 and max_tokens (reasoning models do not)
REMOTE_PAINTER = "gpt-image-1.5"

PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        "tiny",
        vlm="tiny:vlm",
        segmenter="tiny:segmenter",
        inpainter="tiny:inpainter",
        detector="tiny:detector",
        # A random detector's boxes are noise and may all fall outside a thin image, so the tiny
        # preset grounds with the VLM strategy, whose whole-image fallback always completes.
        # `--grounder detector` / `auto` still run the tiny OWLv2 for real, and its threshold sits
        # above what a random OWLv2 scores (about 0.53 for any word): there it finds nothing, so
        # the not-found path (exit 4, the page's "could not find") can be seen offline;
        # `--box-threshold 0` makes it find every box (docs/decisions.md).
        steps=3,
        guidance=7.5,
        box_threshold=0.6,
        grounder="vlm",
        description="random tiny models built locally: offline smoke runs and tests (pictures are noise)",
        random_weights=True,
    ),
    "fast": Preset(
        "fast",
        vlm="llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
        segmenter="Zigeng/SlimSAM-uniform-77",
        inpainter="stable-diffusion-v1-5/stable-diffusion-inpainting",
        detector="google/owlv2-base-patch16-ensemble",
        # TCD-LoRA at 4 steps without guidance, as its model card runs it (docs/decisions.md, "fast preset").
        steps=4,
        guidance=1.0,
        scheduler="tcd",
        lora="h1t/TCD-SD15-LoRA",
        eta=0.3,
        box_threshold=0.12,  # OWLv2 scores run low; its model card uses 0.1
        parser="rules-first",  # the VLM only when the rules cannot read it or it needs the picture (issue 17)
        description="0.5B VLM, pruned SAM, SD 1.5 inpainting with a 4-step TCD LoRA: ~8 GB GPUs",
    ),
    "balanced": Preset(
        "balanced",
        vlm="llava-hf/llava-1.5-7b-hf",
        segmenter="facebook/sam-vit-large",
        inpainter="stable-diffusion-v1-5/stable-diffusion-inpainting",
        detector="IDEA-Research/grounding-dino-tiny",
        # DPM++ 2M at 25 steps in place of the checkpoint's PNDM at 50; guidance off for the last 20%.
        steps=25,
        guidance=7.5,
        scheduler="dpm++2m",
        guidance_end=0.8,
        description="LLaVA-1.5 7B, SAM ViT-L, SD 1.5 inpainting: 24 GB GPUs (default)",
    ),
    "quality": Preset(
        "quality",
        vlm="llava-hf/llava-v1.6-mistral-7b-hf",
        segmenter="facebook/sam-vit-huge",
        inpainter="diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
        detector="IDEA-Research/grounding-dino-base",
        steps=30,
        guidance=7.0,
        scheduler="dpm++2m",
        description="LLaVA-NeXT 7B, SAM ViT-H, SDXL inpainting: 40 GB+ GPUs",
    ),
    "best": Preset(
        "best",
        vlm="Qwen/Qwen3-VL-8B-Instruct",
        segmenter="facebook/sam3",
        inpainter="black-forest-labs/FLUX.2-klein-4B",
        # the fallback's detector (SAM 3 gated and not accepted: licences.py), and `--grounder detector`
        detector="openmmlab-community/mm_grounding_dino_large_o365v2",
        steps=4,  # FLUX.2 klein is step-distilled: its own 4 steps and guidance 1 (edit/painters/flow.py)
        guidance=1.0,
        grounder="sam3",  # SAM 3 finds every instance; the VLM checks attributes and relations
        parser="auto",
        description="Qwen3-VL 8B (points), SAM 3 (finds concepts; gated), FLUX.2 klein 4B: 40 GB+ GPUs (estimate)",
    ),
    "lite": Preset(
        "lite",
        # Small real models for a CPU, chosen by numbers (bench/lite.py; docs/decisions.md, "lite
        # preset"): the rules plan (no VLM unless asked for: --parser vlm loads this one), OWL-ViT
        # B/32 finds the target, EdgeTAM masks it, LaMa fills what is removed (one pass on ONNX
        # Runtime), SD-Turbo with TAESD paints the rest in one step.
        vlm="llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
        segmenter="yonigozlan/EdgeTAM-hf",
        inpainter="turbo:stabilityai/sd-turbo",
        detector="google/owlvit-base-patch32",
        steps=1,
        guidance=0.0,
        box_threshold=0.1,  # OWL-ViT's scores run low: its model card's example keeps boxes above 0.1
        grounder="detector",
        parser="rules",
        cpu_int8=True,
        cpu_bf16=True,
        remover="lama:Carve/LaMa-ONNX",
        description="small models for a laptop without a GPU: rules, OWL-ViT B/32, EdgeTAM, LaMa, SD-Turbo + TAESD",
    ),
    "remote": Preset(
        "remote",
        # A hosted VLM plans and points (boxes in its answer: loop.py asks for them), so no local
        # detector; EdgeTAM masks on the CPU (the lightest segmenter measured, bench/segmenters.py);
        # a hosted editor paints, and its answer is aligned and composited like any painter's.
        # One key (OPENAI_API_KEY) for both, or --vlm / --inpainter at servers of your own.
        vlm=f"openai:{REMOTE_VLM}@{OPENAI_URL}",
        segmenter="yonigozlan/EdgeTAM-hf",
        inpainter=f"openai:{REMOTE_PAINTER}@{OPENAI_URL}",
        detector=None,
        steps=1,  # a hosted painter takes no steps or guidance of ours: these are unused
        guidance=1.0,
        grounder="vlm",  # the planner's own box, traced by EdgeTAM
        parser="vlm",  # always the VLM: the rules read no box
        description="no GPU: a hosted VLM plans and points, EdgeTAM masks here, a hosted editor paints "
        "(the photo leaves the machine; an API call or two per edit)",
    ),
}
# The default: `balanced` where there is a CUDA GPU for it, `lite` (a real edit in seconds on a
# CPU) where there is not (choose_preset). A named preset is always taken as named.
AUTO = "auto"
DEFAULT_PRESET = AUTO


def choose_preset(name: str | Preset) -> str | Preset:
    """`auto` as this machine resolves it: `balanced` with a CUDA device, `lite` without; any other
    name (or Preset) as given."""
    if not isinstance(name, str) or name != AUTO:
        return name
    import torch

    return "balanced" if torch.cuda.is_available() else "lite"


def auto_notice(preset: Preset) -> str:
    """What `auto` says once, when it picked `lite`: the models, and how to choose another set."""
    return (
        f"no CUDA GPU here, so the {preset.name} preset: {preset.description}; its models download on first "
        "use (`lasso models` lists them). --preset balanced for the GPU models, --preset remote for hosted "
        "ones, --preset tiny to try the plumbing offline"
    )


def get_preset(name: str | Preset, **overrides: Any) -> Preset:
    """The named preset (or a Preset given) with any field overridden that is given (`vlm=`,
    `segmenter=`, `inpainter=`, `detector=`, `remover=`, `adapter=`, `adapter_scale=`)."""
    name = choose_preset(name)
    if isinstance(name, Preset):
        preset = name
    elif name not in PRESETS:
        raise InvalidInputError(f"unknown preset {name!r}; choose one of: {', '.join([AUTO, *PRESETS])}")
    else:
        preset = PRESETS[name]
    changes = {k: v for k, v in overrides.items() if v is not None and v != ""}
    return replace(preset, **changes) if changes else preset
