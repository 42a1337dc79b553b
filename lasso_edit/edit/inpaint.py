"""Diffusers inpainting on a crop around the mask, at the model's native resolution.

docs/models.md: "never stretch a non-square photo to 512x512. Crop a region around the mask (with
context margin), resize it to the model's native size, inpaint, resize back, paste through the
mask." The crop keeps its aspect ratio (arrays.model_size); the editor composites the result
onto the original through the feathered mask, so every pixel outside it is bit-identical.
`StableDiffusionInpaintPipeline` and `StableDiffusionXLInpaintPipeline` are picked from the
checkpoint's model_index.json.

Speed (docs/decisions.md, "Diffusion"), each measured in bench/compare.py's ablation:
- the checkpoint's `fp16` variant is loaded when there is one (half the bytes to read);
- on CUDA, channels_last and fused QKV projections (same arithmetic, fewer and faster kernels);
- `scheduler`: the preset's sampler ("dpm++2m" runs in 20-25 steps what PNDM/DDIM need 30-50 for;
  "tcd" for a few-step LoRA); `lora`: a few-step LoRA fused into the UNet (the `fast` preset);
- `guidance_end`: classifier-free guidance stops after this fraction of the steps (the late
  steps refine detail; guidance there doubles their cost for little change);
- `compile`: torch.compile of the UNet and the VAE decoder (minutes of warm-up, opt-in);
- `deepcache`: DeepCache (edit/deepcache.py), an approximation, opt-in;
- `offload`: diffusers' model CPU offload, for --low-vram.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..arrays import from_pil, mask_to_image, paste, resize_rgb, to_pil
from ..errors import InvalidInputError, ModelUnavailableError
from ..loading import load
from ..plan import Action, Edit
from .base import ExecSettings
from .prepare import prepare_crop

SD_PIPELINES = {"sd": "StableDiffusionInpaintPipeline", "sdxl": "StableDiffusionXLInpaintPipeline"}
SCHEDULERS = {  # name -> (diffusers class, config overrides)
    "dpm++2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpm++2m-karras": (
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "ddim": ("DDIMScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "tcd": ("TCDScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}
# Tensors the pipelines duplicate for classifier-free guidance ([uncond, cond]); halved when it stops.
_CFG_TENSORS = {
    "sd": ["prompt_embeds", "mask", "masked_image_latents"],
    "sdxl": ["prompt_embeds", "add_text_embeds", "add_time_ids", "mask", "masked_image_latents"],
}
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


class Inpainter:
    """Stable Diffusion (XL) inpainting through diffusers: the `inpaint` executor and the
    `inpainter` model stage."""

    name = "inpaint"
    needs = ("inpainter",)

    @classmethod
    def create(cls, models) -> Inpainter:
        return models("inpainter")

    @classmethod
    def build(cls, path: str, options) -> Inpainter:
        p = options.preset
        return cls.from_pretrained(
            path,
            device=options.device,
            dtype=options.dtype,
            scheduler=p.scheduler,
            lora=options.lora,
            adapter=options.adapter,
            adapter_scale=options.adapter_scale,
            compile=options.compile,
            offload=options.low_vram,
            default_steps=p.steps,
            default_guidance=p.guidance,
            guidance_end=p.guidance_end,
            eta=p.eta,
            deepcache=options.deepcache,
        )

    def __init__(
        self,
        pipe,
        model_id: str = "",
        default_steps: int = 30,
        default_guidance: float = 7.5,
        guidance_end: float = 1.0,
        eta: float | None = None,
        deepcache: int = 0,
    ):
        self.pipe = pipe
        self.model_id = model_id
        self.default_steps = default_steps
        self.default_guidance = default_guidance
        self.guidance_end = guidance_end  # fraction of the steps after which guidance is skipped
        self.eta = eta  # TCD's gamma / DDIM's eta, where the scheduler takes one
        self.deepcache = None
        if deepcache:  # opt-in: reuse deep UNet features for `deepcache` - 1 of every `deepcache` steps
            from .deepcache import DeepCache

            self.deepcache = DeepCache(pipe.unet, interval=int(deepcache)).enable()
        self.kind = "sdxl" if "XL" in type(pipe).__name__ else "sd"
        self.pipe.set_progress_bar_config(disable=True)
        # Native resolution: latent sample size x VAE scale (512 for SD 1.5, 1024 for SDXL).
        self.native = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)

    @classmethod
    def from_pretrained(
        cls,
        model_id: str,
        device: str = "cpu",
        dtype=None,
        *,
        scheduler: str | None = None,
        lora: str | None = None,
        adapter: str | None = None,
        adapter_scale: float = 1.0,
        compile: bool = False,
        offload: bool = False,
        fast_kernels: bool | None = None,
        **kwargs,
    ) -> Inpainter:
        """Load an SD / SDXL inpainting pipeline. `fast_kernels` (default: on CUDA) = channels_last + fused QKV."""
        import os

        import diffusers
        import torch

        if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"):
            diffusers.utils.logging.disable_progress_bar()
        config = load("inpainting", model_id, diffusers.DiffusionPipeline.load_config)
        name = str(config.get("_class_name", ""))
        kind = "sdxl" if "XL" in name else "sd"
        pipe_cls = getattr(diffusers, SD_PIPELINES[kind])
        pipe = None
        if dtype in (torch.float16, torch.bfloat16):  # the fp16 variant: half the bytes to read
            try:
                pipe = load("inpainting", model_id, pipe_cls.from_pretrained, torch_dtype=dtype, variant="fp16")
            except ModelUnavailableError:
                pipe = None  # no such variant: the full-precision files, cast on load
        if pipe is None:
            pipe = load("inpainting", model_id, pipe_cls.from_pretrained, torch_dtype=dtype)
        pipe = prepare_pipeline(
            pipe,
            device,
            scheduler=scheduler,
            lora=lora,
            adapter=adapter,
            adapter_scale=adapter_scale,
            fast_kernels=fast_kernels,
            offload=offload,
        )
        inpainter = cls(pipe, model_id=model_id, **kwargs)
        if compile:
            inpainter.compile()
        return inpainter

    def compile(self) -> None:
        """torch.compile the UNet and the VAE decoder (each new crop shape compiles once)."""
        import torch

        self.pipe.unet = torch.compile(self.pipe.unet, fullgraph=True)
        self.pipe.vae.decoder = torch.compile(self.pipe.vae.decoder)

    def max_steps(self) -> int:
        """The most inference steps the scheduler takes: one less than its training timesteps (DDIM
        with steps_offset 1 indexes past the end at all 1000), and for the few-step schedulers
        (LCM, TCD) their `original_inference_steps` (scheduling_lcm.py / scheduling_tcd.py refuse more)."""
        cfg = self.pipe.scheduler.config
        limit = int(cfg.get("num_train_timesteps", 1000)) - 1
        if cfg.get("original_inference_steps"):
            limit = min(limit, int(cfg["original_inference_steps"]))
        return limit

    def execute(self, image: np.ndarray, region: np.ndarray, edit: Edit, settings: ExecSettings) -> np.ndarray:
        """Inpaint `region` (bool HxW) of an RGB uint8 HxWx3 image; return the full image with the
        repainted crop pasted in (the editor composites it through the alpha)."""
        import torch

        crop = prepare_crop(image, region, self.native, whole=edit.action in (Action.STYLE, Action.BACKGROUND))
        x0, y0, x1, y1 = crop.window
        tw, th = crop.size
        prompt, negative = prompts(edit)
        steps = settings.steps or self.default_steps
        limit = self.max_steps()
        if steps > limit:  # diffusers would fail part-way (DDIM indexes past its 1000 training steps)
            raise InvalidInputError(
                f"--steps {steps} is more than this model's scheduler "
                f"({type(self.pipe.scheduler).__name__}) runs: at most {limit}"
            )
        guidance = self.default_guidance if settings.guidance is None else settings.guidance
        strength = (edit.strength or settings.strength) if edit.action is Action.STYLE else 1.0
        generator = torch.Generator(device="cpu").manual_seed(int(settings.seed))
        total = max(1, int(steps * strength))
        # Guidance stops after `guidance_end` of the steps that run (never for a single step).
        cfg_stop = total if guidance <= 1.0 or self.guidance_end >= 1.0 else max(1, round(total * self.guidance_end))
        tensors = _CFG_TENSORS[self.kind] if cfg_stop < total else []

        def callback(pipe, i, t, kwargs):
            if i + 1 == cfg_stop and tensors and pipe._guidance_scale > 1.0:
                pipe._guidance_scale = 0.0  # do_classifier_free_guidance is now False
                for k in tensors:
                    if kwargs.get(k) is not None:
                        kwargs[k] = kwargs[k].chunk(2)[-1]  # keep the conditional half
            if settings.on_step is not None:
                settings.on_step(i + 1, total)
            return kwargs

        extra = {"eta": self.eta} if self.eta is not None else {}
        if self.deepcache is not None:
            self.deepcache.reset()
        out = self.pipe(
            prompt=prompt,
            negative_prompt=negative,
            image=to_pil(crop.image),
            mask_image=mask_to_image(crop.mask),
            height=th,
            width=tw,
            num_inference_steps=steps,
            guidance_scale=guidance,
            strength=strength,
            generator=generator,
            callback_on_step_end=callback,
            callback_on_step_end_tensor_inputs=["latents", *tensors],
            **extra,
        )
        patch = resize_rgb(from_pil(out.images[0]), (x1 - x0, y1 - y0))
        return paste(image, patch, crop.window)


def prepare_pipeline(
    pipe,
    device: str,
    *,
    scheduler: str | None = None,
    lora: str | None = None,
    adapter: str | None = None,
    adapter_scale: float = 1.0,
    fast_kernels: bool | None = None,
    offload: bool = False,
):
    """Configure a loaded inpainting pipeline as Lasso runs it, and put it on `device` (or offload it).

    bench/compare.py builds its random-weight pipelines through this too, so that the benchmark
    measures exactly what `Inpainter.from_pretrained` serves users.
    """
    import torch

    if scheduler:
        set_scheduler(pipe, scheduler)
    if lora:
        load_lora(pipe, lora)
    if adapter and adapter_scale > 0:  # a LoRA of your own (lasso train), after the few-step one
        load_lora(pipe, adapter, adapter_scale)
    if fast_kernels is None:
        fast_kernels = str(device).startswith("cuda")
    if fast_kernels:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
        if hasattr(pipe, "fuse_qkv_projections"):
            pipe.fuse_qkv_projections()
    if offload:
        pipe.enable_model_cpu_offload(device=device)
        return pipe
    return pipe.to(device)


def set_scheduler(pipe, name: str) -> None:
    """Swap the pipeline's scheduler for a named one (SCHEDULERS), from the checkpoint's own config."""
    import diffusers

    from ..errors import InvalidInputError

    if name not in SCHEDULERS:
        raise InvalidInputError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")
    cls_name, overrides = SCHEDULERS[name]
    pipe.scheduler = getattr(diffusers, cls_name).from_config(pipe.scheduler.config, **overrides)


def load_lora(pipe, lora: str, scale: float = 1.0) -> None:
    """Load a LoRA (Hub id, local folder or .safetensors file) into the pipeline and fuse it into the
    weights at `scale` (no per-step cost)."""
    import importlib.util

    from ..errors import ModelUnavailableError

    if importlib.util.find_spec("peft") is None:
        raise ModelUnavailableError("loading a LoRA needs peft: pip install peft")
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # "no LoRA keys for the text encoder": a UNet LoRA has none
    local = Path(lora).expanduser()
    try:
        if local.exists():
            try:
                pipe.load_lora_weights(str(local))
            except Exception as e:  # noqa: BLE001 - any failure to read it says the same to the user
                raise ModelUnavailableError(
                    f"cannot load the LoRA {lora}: {str(e).splitlines()[0]}; it must be a LoRA "
                    f"for this inpainting model in diffusers' format (what lasso train writes) "
                    "or a .safetensors LoRA"
                ) from e
        else:
            load("LoRA", lora, pipe.load_lora_weights)
    finally:
        diffusers_logging.set_verbosity(level)
    pipe.fuse_lora(lora_scale=scale)
    pipe.unload_lora_weights()  # the fused weights stay; the adapter's own copies go
