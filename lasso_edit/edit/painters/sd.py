"""Stable Diffusion 1.x/2.x and SDXL inpainting through diffusers: the `sd` and `sdxl` painters.

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
from typing import TYPE_CHECKING, Any

import numpy as np

from ...core.errors import ModelUnavailableError
from ...core.loading import load
from ...imaging.arrays import from_pil, mask_to_image, to_pil
from .base import Painter, PaintRequest

if TYPE_CHECKING:
    import torch

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


class SDPainter(Painter):
    """A diffusers Stable Diffusion inpainting pipeline (9-channel UNet: latents, mask, masked image)."""

    name = "sd"
    pipeline = SD_PIPELINES["sd"]  # the diffusers class it loads
    checkpoint = "stable-diffusion-v1-5/stable-diffusion-inpainting"
    prompting = "caption"
    guidance = "cfg"
    cfg_tensors = _CFG_TENSORS["sd"]

    @classmethod
    def tiny_checkpoint(cls, folder: Path) -> Path:
        from ...testing.tiny import build_tiny_sd_inpaint

        return build_tiny_sd_inpaint(folder)

    def __init__(self, pipe: Any, guidance_end: float = 1.0, eta: float | None = None, deepcache: int = 0) -> None:
        self.pipe = pipe
        self.guidance_end = guidance_end  # fraction of the steps after which guidance is skipped
        self.eta = eta  # TCD's gamma / DDIM's eta, where the scheduler takes one
        self.deepcache = None
        if deepcache:  # opt-in: reuse deep UNet features for `deepcache` - 1 of every `deepcache` steps
            from ..deepcache import DeepCache

            self.deepcache = DeepCache(pipe.unet, interval=int(deepcache)).enable()
        self.pipe.set_progress_bar_config(disable=True)
        # Native resolution: latent sample size x VAE scale (512 for SD 1.5, 1024 for SDXL).
        self.native = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)

    @classmethod
    def from_pretrained(
        cls,
        model_id: str,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        *,
        scheduler: str | None = None,
        lora: str | None = None,
        adapter: str | None = None,
        adapter_scale: float = 1.0,
        offload: bool = False,
        fast_kernels: bool | None = None,
        **kwargs: Any,
    ) -> SDPainter:
        """Load the checkpoint's pipeline and configure it as Lasso runs it (prepare_pipeline)."""
        import diffusers
        import torch

        pipe_cls = getattr(diffusers, cls.pipeline)
        parts = cls.components(model_id, dtype, device)  # components given, not read from the checkpoint
        pipe = None
        if dtype in (torch.float16, torch.bfloat16) or cls.half_files:  # the fp16 variant: half the bytes
            try:
                pipe = load(
                    "inpainting",
                    model_id,
                    pipe_cls.from_pretrained,
                    torch_dtype=dtype or torch.float32,  # cast on load where the device runs fp32
                    variant="fp16",
                    **parts,
                )
            except ModelUnavailableError:
                pipe = None  # no such variant: the full-precision files, cast on load
        if pipe is None:
            pipe = load("inpainting", model_id, pipe_cls.from_pretrained, torch_dtype=dtype, **parts)
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
        return cls(pipe, **kwargs)

    # Download the fp16 variant's files (half the bytes) whatever the dtype, cast on load.
    half_files = False

    @classmethod
    def components(cls, model_id: str, dtype: torch.dtype | None, device: str = "cpu") -> dict[str, Any]:
        """Components put in place of the checkpoint's own (diffusers then reads not theirs)."""
        return {}

    def known_inputs(self, height: int, width: int) -> dict[str, Any]:
        """For a 4-channel (text-to-image) UNet, zero latents given as the masked image's: diffusers'
        inpainting pipeline encodes the masked image with the VAE for any UNet, but only a 9-channel
        UNet reads it (pipeline_stable_diffusion_inpaint.py, `num_channels_unet == 9`); the known
        latents a 4-channel UNet's steps put back are the whole image's, encoded apart. One VAE
        encode fewer, the same pixels (TAESD's encode draws nothing from the generator)."""
        import torch

        pipe = self.pipe
        if int(pipe.unet.config.in_channels) != 4:
            return {}
        s = int(pipe.vae_scale_factor)
        shape = (1, int(pipe.vae.config.latent_channels), height // s, width // s)
        return {"masked_image_latents": torch.zeros(shape, dtype=pipe.unet.dtype)}

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

    def paint(self, image: np.ndarray, mask: np.ndarray, request: PaintRequest) -> np.ndarray:
        import torch

        th, tw = mask.shape
        steps, guidance, strength = request.steps, request.guidance, request.strength
        generator = torch.Generator(device="cpu").manual_seed(int(request.seed))
        total = max(1, int(steps * strength))
        # Guidance stops after `guidance_end` of the steps that run (never for a single step).
        cfg_stop = total if guidance <= 1.0 or self.guidance_end >= 1.0 else max(1, round(total * self.guidance_end))
        tensors = self.cfg_tensors if cfg_stop < total else []

        def callback(pipe: Any, i: int, t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            if i + 1 == cfg_stop and tensors and pipe._guidance_scale > 1.0:
                pipe._guidance_scale = 0.0  # do_classifier_free_guidance is now False
                for k in tensors:
                    if kwargs.get(k) is not None:
                        kwargs[k] = kwargs[k].chunk(2)[-1]  # keep the conditional half
            if request.on_step is not None:
                request.on_step(i + 1, total)
            return kwargs

        extra = {"eta": self.eta} if self.eta is not None else {}
        if self.deepcache is not None:
            self.deepcache.reset()
        out = self.pipe(
            prompt=request.prompt,
            negative_prompt=request.negative,
            **self.known_inputs(th, tw),
            image=to_pil(image),
            mask_image=mask_to_image(mask),
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
        return from_pil(out.images[0])


class SDXLPainter(SDPainter):
    """SDXL inpainting: two text encoders and text-time conditioning, which guidance also doubles."""

    name = "sdxl"
    pipeline = SD_PIPELINES["sdxl"]
    checkpoint = "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
    cfg_tensors = _CFG_TENSORS["sdxl"]

    @classmethod
    def tiny_checkpoint(cls, folder: Path) -> Path:
        from ...testing.tiny import build_tiny_sdxl_inpaint

        return build_tiny_sdxl_inpaint(folder)


class TurboPainter(SDPainter):
    """SD-Turbo (`stabilityai/sd-turbo`, SD 2.1 distilled to 1-4 steps without guidance) with TAESD
    (`madebyollin/taesd`, a 2.4 M-parameter autoencoder) in place of its VAE: the `lite` preset's
    painter for a CPU (docs/decisions.md, "lite preset"). SD-Turbo is a text-to-image checkpoint,
    so its 4-channel UNet runs in the inpainting pipeline as diffusers runs any such UNet: the
    known latents are put back outside the mask after every step. The editor composites as always."""

    name = "turbo"
    checkpoint = "stabilityai/sd-turbo"
    # A text-to-image SD checkpoint is loaded by this painter when it is named (--inpainter
    # turbo:CHECKPOINT); it does not claim every such checkpoint (those stay the `sd` painter's).
    reads = ("StableDiffusionPipeline", "StableDiffusionInpaintPipeline")
    tiny_vae = "madebyollin/taesd"  # the autoencoder put in place of the checkpoint's own
    guidance = "distilled"
    default_steps = 1  # the model card: one step is its main use (1-4); a UNet step costs ~5 s on 2 cores
    default_guidance = 0.0  # trained without classifier-free guidance

    @classmethod
    def tiny_checkpoint(cls, folder: Path) -> Path:
        from ...testing.tiny import build_tiny_sd_turbo

        return build_tiny_sd_turbo(folder)

    half_files = True  # its fp16 files (2.4 GB for the UNet and text encoder, not 4.8), cast on load

    @classmethod
    def components(cls, model_id: str, dtype: torch.dtype | None, device: str = "cpu") -> dict[str, Any]:
        """TAESD in place of the checkpoint's VAE, unless it already is one (the tests' tiny one):
        its KL VAE is then neither read nor, from the Hub, downloaded. On a CPU the text encoder too,
        read in fp32 and its linears made int8 in place (4x faster there: bench/lite.py), whatever
        the UNet's dtype: the int8 weights are the fp32 ones' whatever runs the UNet."""
        import diffusers

        config = load("inpainting", model_id, diffusers.DiffusionPipeline.load_config)
        parts: dict[str, Any] = {}
        if str(device) == "cpu" and config.get("text_encoder"):
            parts["text_encoder"] = _int8_text_encoder(model_id)
        unet = _unet_read(model_id, dtype) if str(device) == "cpu" and dtype is not None else None
        if unet is not None:
            parts["unet"] = unet
        if "AutoencoderTiny" not in (config.get("vae") or []):
            parts["vae"] = load(
                "inpainting", cls.tiny_vae, diffusers.AutoencoderTiny.from_pretrained, torch_dtype=dtype
            )
        return parts

    @classmethod
    def from_pretrained(
        cls, model_id: str, device: str = "cpu", dtype: torch.dtype | None = None, **kwargs: Any
    ) -> SDPainter:
        """The checkpoint in the inpainting pipeline with TAESD and, on a CPU, an int8 text encoder
        (components). dtype None on a CPU: bf16 where it has bf16 instructions (loading.cpu_bf16;
        the UNet step 1.9x and TAESD 1.7-2x faster than fp32 there, bench/lite.py), the fp16 files
        read straight into bf16 (no fp32 copy); fp32 elsewhere."""
        if str(device) == "cpu" and dtype is None:
            import torch

            from ...core.loading import cpu_bf16

            dtype = torch.bfloat16 if cpu_bf16() else torch.float32
        return super().from_pretrained(model_id, device, dtype, **kwargs)

    def __init__(self, pipe: Any, **kwargs: Any) -> None:
        super().__init__(pipe, **kwargs)
        if pipe.text_encoder is not None and pipe.text_encoder.dtype != pipe.unet.dtype:
            pipe.encode_prompt = _in_dtype(pipe.encode_prompt, pipe.unet.dtype)


def _in_dtype(encode_prompt: Any, dtype: torch.dtype) -> Any:
    """The pipeline's encode_prompt, its embeddings cast to `dtype` (the UNet's): diffusers casts
    them to the text encoder's (pipeline_stable_diffusion_inpaint.py, `prompt_embeds_dtype`), which
    is fp32 for the int8 one whatever runs the UNet; the latents then take the embeddings' dtype."""

    def encode(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return tuple(None if t is None else t.to(dtype) for t in encode_prompt(*args, **kwargs))

    return encode


_UNET_FILES = ("unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.safetensors")


def _unet_read(model_id: str, dtype: torch.dtype) -> Any:
    """The checkpoint's UNet, its fp16 file (else its full one) read tensor by tensor into `dtype`
    (loading.read_safetensors: no second copy of the weights while it loads), into a UNet built
    on the meta device; None where neither is one file here (diffusers then reads it its way).
    The cast weights are kept in the converted-weights cache (loading.converted_dir) and the next
    process maps them from there: SD-Turbo's 1.7 GB fp16 UNet, 1.3-2.2 s to read into bf16 on a
    2-core CPU, is mapped in 0.08 s (and about 0.15 s of page faults in its first step)."""
    import diffusers
    import torch

    from ...core.loading import cached_tensors, converted_key, keep_tensors, read_safetensors

    path = _unet_file(model_id)
    if path is None:
        return None
    config = load("inpainting", model_id, diffusers.UNet2DConditionModel.load_config, subfolder="unet")
    with torch.device("meta"):
        unet = diffusers.UNet2DConditionModel.from_config(config)
    # kept only when cast to bf16: a CPU with bf16 instructions, where the cast (1.3-2.2 s) is what
    # a load saves; an fp32 copy would be twice the file's size on disk, to save a cheap cast
    key = converted_key("unet", [Path(path)], dtype) if dtype == torch.bfloat16 else None
    kept = cached_tensors(key, mapped=True)
    if kept is not None:
        try:
            unet.load_state_dict(kept, assign=True)
            return unet.eval()
        except (RuntimeError, ValueError, KeyError):  # an entry that does not fit this UNet: read it again
            pass
    state = read_safetensors(path, dtype)
    keep_tensors(key, state)
    unet.load_state_dict(state, assign=True)
    return unet.eval()


def _unet_file(model_id: str) -> str | None:
    """The UNet's weights file: in a local folder, or the Hub's (downloaded to its cache)."""
    from ...core.loading import is_local

    if is_local(model_id):
        found = [Path(model_id).expanduser() / name for name in _UNET_FILES]
        return next((str(p) for p in found if p.is_file()), None)
    from huggingface_hub import hf_hub_download

    for name in _UNET_FILES:
        try:
            return str(hf_hub_download(model_id, name))
        except Exception:  # noqa: BLE001 - not there, or not reachable: diffusers reads it and says why
            continue
    return None


def _int8_text_encoder(model_id: str) -> Any:
    """The checkpoint's CLIP text encoder in fp32 (from its fp16 files where it has them: half the
    bytes, exact in fp32) with its linear layers in dynamic int8; kept so in the converted-weights
    cache, from which the next process builds it (loading.int8_cached: SD-Turbo's, 1.6-2.1 s read
    and converted on a 2-core CPU, 0.7 s from the cache, the same bytes)."""
    import torch
    import transformers

    from ...core.loading import converted_key, int8_cached, int8_linears, source_files

    read = transformers.CLIPTextModel.from_pretrained

    def convert(kept: dict[str, torch.Tensor] | None) -> Any:
        try:
            text = load(
                "inpainting", model_id, read, subfolder="text_encoder", variant="fp16", torch_dtype=torch.float32
            )
        except ModelUnavailableError:
            text = load("inpainting", model_id, read, subfolder="text_encoder", torch_dtype=torch.float32)
        return int8_linears(text.eval(), kept)

    def skeleton() -> Any:
        config = load("inpainting", model_id, transformers.CLIPTextConfig.from_pretrained, subfolder="text_encoder")
        with torch.device("meta"):
            return transformers.CLIPTextModel(config)

    files = source_files(model_id, "text_encoder")
    key = converted_key("clip-text-int8", files, torch.float32, f"transformers {transformers.__version__}")
    return int8_cached(key, skeleton, convert)


def prepare_pipeline(
    pipe: Any,
    device: str,
    *,
    scheduler: str | None = None,
    lora: str | None = None,
    adapter: str | None = None,
    adapter_scale: float = 1.0,
    fast_kernels: bool | None = None,
    offload: bool = False,
) -> Any:
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


def set_scheduler(pipe: Any, name: str) -> None:
    """Swap the pipeline's scheduler for a named one (SCHEDULERS), from the checkpoint's own config."""
    import diffusers

    from ...core.errors import InvalidInputError

    if name not in SCHEDULERS:
        raise InvalidInputError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")
    cls_name, overrides = SCHEDULERS[name]
    pipe.scheduler = getattr(diffusers, cls_name).from_config(pipe.scheduler.config, **overrides)


def load_lora(pipe: Any, lora: str, scale: float = 1.0) -> None:
    """Load a LoRA (Hub id, local folder or .safetensors file) into the pipeline and fuse it into the
    weights at `scale` (no per-step cost)."""
    import importlib.util

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
