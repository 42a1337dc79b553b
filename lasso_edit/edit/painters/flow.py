"""The flow-matching painters of 2024-2026, one diffusers pipeline each, behind the Painter interface:

| painter       | pipeline                          | reads       | guidance             | steps |
|---------------|-----------------------------------|-------------|----------------------|-------|
| sd3           | StableDiffusion3InpaintPipeline   | caption     | CFG 7.0              | 28    |
| flux-fill     | FluxFillPipeline                  | caption     | distilled, 30        | 50    |
| flux-kontext  | FluxKontextInpaintPipeline        | instruction | distilled, 2.5       | 28    |
| flux2-klein   | Flux2KleinInpaintPipeline         | instruction | distilled (4 steps)  | 4     |
| qwen-image-edit | QwenImageEditInpaintPipeline    | instruction | true CFG 4.0         | 50    |

(docs/models.md has the sources.) What every painter gets from the executor is the same: the crop
at its native size, and a hard composite after it, so whatever a model does to the rest of its
input (the whole-frame shifts and colour changes instruction editors are known for), no pixel
outside the mask changes. This module only paints: it pads the crop to the multiple the
transformer's patches need (the pipelines would otherwise cut the edge off), runs the pipeline,
and cuts the padding away.

A painter declares its own step count and guidance (`default_steps`, `default_guidance`): they
replace a preset's, which were chosen for Stable Diffusion, unless the user gives `--steps` or
`--guidance`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...core.errors import ModelUnavailableError
from ...core.loading import is_local, load
from ...imaging.arrays import from_pil, mask_to_image, resize_rgb, to_pil
from .base import Painter, PaintRequest

if TYPE_CHECKING:
    import torch

NATIVE_FILE = "lasso.json"  # a checkpoint's own facts for Lasso: {"native_size": N} (the tiny models')


def native_size(model_id: str, default: int) -> int:
    """The side a checkpoint paints at: its folder's lasso.json says so when it differs from the
    family's (the tiny test models); else the family's."""
    if is_local(model_id):
        f = Path(model_id).expanduser() / NATIVE_FILE
        if f.is_file():
            try:
                return int(json.loads(f.read_text())["native_size"])
            except (ValueError, KeyError, TypeError):
                raise ModelUnavailableError(f'{f}: expected {{"native_size": N}}') from None
    return default


class FlowPainter(Painter):
    """A flow-matching inpainting pipeline. Subclasses name the pipeline and what it reads."""

    native = 1024
    default_steps: int | None = 28
    default_guidance: float | None = 3.5
    negative_prompt = False  # the pipeline takes a negative prompt (with true CFG or CFG)
    true_cfg = False  # guidance is `true_cfg_scale` (two passes), the distilled scale stays at 1
    takes_strength = True
    tiny = ""  # the testing/flow.py builder of its tiny checkpoint

    def __init__(self, pipe: Any, native: int | None = None) -> None:
        self.pipe = pipe
        self.pipe.set_progress_bar_config(disable=True)
        if native is not None:
            self.native = native
        self.multiple = int(getattr(pipe, "vae_scale_factor", 8)) * 2  # latents packed 2x2 into patches

    @classmethod
    def from_pretrained(
        cls,
        model_id: str,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        *,
        offload: bool = False,
        **options: Any,
    ) -> FlowPainter:
        """Load the checkpoint's pipeline (the bf16 or fp16 dtype given; full precision on the CPU)."""
        import diffusers

        pipe_cls = getattr(diffusers, cls.pipeline, None)
        if pipe_cls is None:
            raise ModelUnavailableError(f"the {cls.name} painter needs a diffusers with {cls.pipeline}; upgrade it")
        pipe = load("inpainting", model_id, pipe_cls.from_pretrained, torch_dtype=dtype)
        if offload and str(device).startswith("cuda"):
            pipe.enable_model_cpu_offload()
        else:
            pipe = pipe.to(device)
        return cls(pipe, native=native_size(model_id, cls.native))

    @classmethod
    def tiny_checkpoint(cls, folder: Path) -> Path:
        """Its tiny random checkpoint, built by the testing/flow.py builder its `tiny` names."""
        from ...testing import flow

        return getattr(flow, cls.tiny)(folder)

    def compile(self) -> None:
        import torch

        self.pipe.transformer = torch.compile(self.pipe.transformer)

    def max_steps(self) -> int:
        return 1000  # flow-matching schedulers take any number of steps

    def _text(self, request: PaintRequest) -> str:
        return request.instruction if self.prompting == "instruction" and request.instruction else request.prompt

    def _call_options(self, request: PaintRequest, height: int, width: int) -> dict[str, Any]:
        """The pipeline's prompt and guidance arguments for this request, painting height x width."""
        kwargs: dict[str, Any] = {"prompt": self._text(request)}
        if self.true_cfg:
            kwargs["true_cfg_scale"] = request.guidance
            kwargs["negative_prompt"] = request.negative if request.guidance > 1 else None
        else:
            kwargs["guidance_scale"] = request.guidance
            if self.negative_prompt:
                kwargs["negative_prompt"] = request.negative
        if self.takes_strength:
            kwargs["strength"] = request.strength
        return kwargs

    def paint(self, image: np.ndarray, mask: np.ndarray, request: PaintRequest) -> np.ndarray:
        import torch

        h, w = mask.shape
        m = self.multiple
        ph, pw = -h % m, -w % m  # padded with the edge, never painted (the mask is False there)
        padded = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="edge") if ph or pw else image
        pmask = np.pad(mask, ((0, ph), (0, pw))) if ph or pw else mask
        total = max(1, int(request.steps * (request.strength if self.takes_strength else 1.0)))

        def callback(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if request.on_step is not None:
                request.on_step(i + 1, total)
            return kwargs

        out = self.pipe(
            image=to_pil(padded),
            mask_image=mask_to_image(pmask),
            height=h + ph,
            width=w + pw,
            num_inference_steps=request.steps,
            generator=torch.Generator(device="cpu").manual_seed(int(request.seed)),
            callback_on_step_end=callback,
            **self._call_options(request, h + ph, w + pw),
        )
        painted = from_pil(out.images[0])
        if painted.shape[:2] != (h + ph, w + pw):  # a pipeline that paints at its own size (Qwen-Image-Edit's 1 MP)
            painted = resize_rgb(painted, (w + pw, h + ph))
        return painted[:h, :w]


class SD3Painter(FlowPainter):
    """Stable Diffusion 3 / 3.5 inpainting (MMDiT; CLIP-L, CLIP-G and T5-XXL, T5 optional)."""

    name = "sd3"
    pipeline = "StableDiffusion3InpaintPipeline"
    base_pipelines = ("StableDiffusion3Pipeline",)
    checkpoint = "stabilityai/stable-diffusion-3.5-medium"
    prompting = "caption"
    guidance = "cfg"
    default_steps = 28
    default_guidance = 7.0
    negative_prompt = True

    tiny = "build_tiny_sd3_inpaint"  # testing/flow.py


class FluxFillPainter(FlowPainter):
    """FLUX.1 Fill [dev]: the masked image and the mask are channels of the transformer's input."""

    name = "flux-fill"
    pipeline = "FluxFillPipeline"
    checkpoint = "black-forest-labs/FLUX.1-Fill-dev"
    prompting = "caption"
    guidance = "distilled"
    default_steps = 50
    default_guidance = 30.0  # the model card's (50 steps, 30): guidance is an input of the distilled model

    tiny = "build_tiny_flux_fill"  # testing/flow.py


class FluxKontextPainter(FlowPainter):
    """FLUX.1 Kontext [dev] inpainting: an instruction editor, the crop as its reference."""

    name = "flux-kontext"
    pipeline = "FluxKontextInpaintPipeline"
    base_pipelines = ("FluxKontextPipeline",)
    checkpoint = "black-forest-labs/FLUX.1-Kontext-dev"
    prompting = "instruction"
    guidance = "distilled"
    default_steps = 28
    default_guidance = 2.5

    def _call_options(self, request: PaintRequest, height: int, width: int) -> dict[str, Any]:
        kwargs = super()._call_options(request, height, width)
        # The crop is at the native size already: neither it nor the output is resized to 1 MP
        # (the pipeline sizes its output to max_area at the given aspect, auto-resize or not).
        kwargs.update(_auto_resize=False, max_area=height * width)
        return kwargs

    tiny = "build_tiny_flux_kontext"  # testing/flow.py


class Flux2KleinPainter(FlowPainter):
    """FLUX.2 [klein] 4B inpainting (Apache-2.0): step-distilled, 4 steps, a Qwen3 text encoder."""

    name = "flux2-klein"
    pipeline = "Flux2KleinInpaintPipeline"
    base_pipelines = ("Flux2KleinPipeline",)
    checkpoint = "black-forest-labs/FLUX.2-klein-4B"
    prompting = "instruction"
    guidance = "distilled"
    default_steps = 4
    default_guidance = 1.0

    def _call_options(self, request: PaintRequest, height: int, width: int) -> dict[str, Any]:
        kwargs = super()._call_options(request, height, width)
        kwargs["text_encoder_out_layers"] = self.text_layers()
        return kwargs

    def text_layers(self) -> tuple[int, ...]:
        """The text encoder's hidden layers the transformer reads: klein's (9, 18, 27) of Qwen3's 36,
        or as many evenly spaced as the transformer's text width holds for a smaller encoder."""
        enc = self.pipe.text_encoder.config
        k = max(1, int(self.pipe.transformer.config.joint_attention_dim) // int(enc.hidden_size))
        n = int(enc.num_hidden_layers)
        if k == 3 and n >= 28:
            return (9, 18, 27)
        return tuple(max(1, round(n * (i + 1) / (k + 1))) for i in range(k))

    tiny = "build_tiny_flux2_klein"  # testing/flow.py


class QwenImageEditPainter(FlowPainter):
    """Qwen-Image-Edit inpainting: an instruction editor whose Qwen2.5-VL text encoder sees the crop
    too; true CFG with a negative prompt. Its pipeline paints at about 1 MP at the crop's aspect
    whatever size it is asked for (the painter resizes the result to the crop)."""

    name = "qwen-image-edit"
    pipeline = "QwenImageEditInpaintPipeline"
    base_pipelines = ("QwenImageEditPipeline",)
    checkpoint = "Qwen/Qwen-Image-Edit"
    prompting = "instruction"
    guidance = "cfg"
    default_steps = 50
    default_guidance = 4.0  # true_cfg_scale, the model card's
    true_cfg = True

    tiny = "build_tiny_qwen_image_edit"  # testing/flow.py
