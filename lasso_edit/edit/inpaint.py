"""Diffusers inpainting on a crop around the mask, at the model's native resolution.

MODELS.md: "never stretch a non-square photo to 512x512. Crop a region around the mask (with
context margin), resize it to the model's native size, inpaint, resize back, paste through the
mask." The crop keeps its aspect ratio (imaging.model_size); the editor composites the result
onto the original through the feathered mask, so every pixel outside it is bit-identical.
`StableDiffusionInpaintPipeline` and `StableDiffusionXLInpaintPipeline` are picked from the
checkpoint's model_index.json.
"""

from __future__ import annotations

import numpy as np

from ..imaging import crop_window, from_pil, mask_to_image, model_size, paste, resize_mask, resize_rgb, to_pil
from ..loading import load
from ..plan import Action, Edit
from ..registry import EXECUTORS
from .base import ExecSettings

SD_PIPELINES = {"sd": "StableDiffusionInpaintPipeline", "sdxl": "StableDiffusionXLInpaintPipeline"}
NEGATIVE = "blurry, low quality, distorted, deformed, watermark, text"


def prompts(edit: Edit) -> tuple[str, str]:
    """(prompt, negative prompt) for an edit, unless the plan gives its own."""
    target, value = edit.target or "", edit.value or ""
    if edit.action is Action.REMOVE:
        prompt = "empty background, nothing there, seamless continuation of the surroundings, photo"
        negative = f"{target}, object, person, animal, text, {NEGATIVE}"
    elif edit.action is Action.RECOLOR:
        prompt, negative = f"a {value} {target}, photo, natural lighting", NEGATIVE
    elif edit.action is Action.BACKGROUND:
        prompt, negative = f"{value}, background, photo, high quality", NEGATIVE
    elif edit.action is Action.ADD:
        prompt, negative = f"a {value}, photo, high quality, natural lighting", NEGATIVE
    elif edit.action is Action.STYLE:
        prompt, negative = f"{value} style, {value}", NEGATIVE
    else:
        prompt, negative = f"a {value}, photo, high quality, natural lighting", f"{target}, {NEGATIVE}"
    return edit.prompt or prompt, edit.negative_prompt or negative


@EXECUTORS.register("inpaint")
class Inpainter:
    """Stable Diffusion (XL) inpainting through diffusers."""

    name = "inpaint"

    def __init__(self, pipe, model_id: str = "", default_steps: int = 30, default_guidance: float = 7.5):
        self.pipe = pipe
        self.model_id = model_id
        self.default_steps = default_steps
        self.default_guidance = default_guidance
        self.pipe.set_progress_bar_config(disable=True)
        # Native resolution: latent sample size x VAE scale (512 for SD 1.5, 1024 for SDXL).
        self.native = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)

    @classmethod
    def from_pretrained(cls, model_id: str, device: str = "cpu", dtype=None, **kwargs) -> Inpainter:
        import os

        import diffusers

        if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"):
            diffusers.utils.logging.disable_progress_bar()
        config = load("inpainting", model_id, diffusers.DiffusionPipeline.load_config)
        name = str(config.get("_class_name", ""))
        kind = "sdxl" if "XL" in name else "sd"
        pipe_cls = getattr(diffusers, SD_PIPELINES[kind])
        pipe = load("inpainting", model_id, pipe_cls.from_pretrained, torch_dtype=dtype)
        pipe = pipe.to(device)
        return cls(pipe, model_id=model_id, **kwargs)

    def execute(self, image: np.ndarray, region: np.ndarray, edit: Edit, settings: ExecSettings) -> np.ndarray:
        """Inpaint `region` (bool HxW) of an RGB uint8 HxWx3 image; return the full image with the
        repainted crop pasted in (the editor composites it through the alpha)."""
        import torch

        whole = edit.action in (Action.STYLE, Action.BACKGROUND)
        window = (0, 0, image.shape[1], image.shape[0]) if whole else crop_window(region, min_side=self.native // 4)
        x0, y0, x1, y1 = window
        crop, mcrop = image[y0:y1, x0:x1], region[y0:y1, x0:x1]
        tw, th = model_size(x1 - x0, y1 - y0, self.native, multiple=8)
        prompt, negative = prompts(edit)
        steps = settings.steps or self.default_steps
        guidance = self.default_guidance if settings.guidance is None else settings.guidance
        strength = (edit.strength or settings.strength) if edit.action is Action.STYLE else 1.0
        generator = torch.Generator(device="cpu").manual_seed(int(settings.seed))
        callback = None
        if settings.on_step is not None:
            total = max(1, int(steps * strength))

            def callback(pipe, i, t, kwargs):
                settings.on_step(i + 1, total)
                return kwargs

        out = self.pipe(
            prompt=prompt,
            negative_prompt=negative,
            image=to_pil(resize_rgb(crop, (tw, th))),
            mask_image=mask_to_image(resize_mask(mcrop, (tw, th))),
            height=th,
            width=tw,
            num_inference_steps=steps,
            guidance_scale=guidance,
            strength=strength,
            generator=generator,
            callback_on_step_end=callback,
        )
        patch = resize_rgb(from_pil(out.images[0]), (x1 - x0, y1 - y0))
        return paste(image, patch, window)
