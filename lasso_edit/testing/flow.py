"""Tiny random checkpoints of the flow-matching painters (edit/painters/flow.py), for the tests and
the `tiny:sd3`, `tiny:flux-fill`, `tiny:flux-kontext`, `tiny:flux2-klein` and
`tiny:qwen-image-edit` ids. Each is the real diffusers pipeline class with the real transformer,
VAE and text-encoder classes at toy sizes, built from configs (their shapes follow diffusers' own
fast tests: tests/pipelines/{flux,flux2,stable_diffusion_3,qwenimage}/), with tokenizers trained
here, saved with `save_pretrained` and loaded back by the painters as a user's checkpoint is.
They paint noise; their plumbing is real. Each writes lasso.json with its native side (64).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .qwen import qwen_tokenizer
from .tiny import _byte_level_bpe, _clip_special_ids, _clip_vocab, clip_tokenizer

if TYPE_CHECKING:
    from diffusers import AutoencoderKL, DiffusionPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, PreTrainedTokenizerFast, T5EncoderModel

NATIVE = 64


def _finish(pipe: DiffusionPipeline, path: Path) -> Path:
    pipe.save_pretrained(path)
    (Path(path) / "lasso.json").write_text(json.dumps({"native_size": NATIVE}))
    return Path(path)


def _clip(projection: bool) -> CLIPTextModel | CLIPTextModelWithProjection:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        **_clip_special_ids(),
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(_clip_vocab()),
        max_position_embeddings=77,
        projection_dim=32,
    )
    return CLIPTextModelWithProjection(config) if projection else CLIPTextModel(config)


def _t5() -> tuple[T5EncoderModel, PreTrainedTokenizerFast]:
    """A tiny T5 encoder and a byte-level tokenizer for it (pad 0, end 1, as T5's)."""
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    tok = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(400, ["<pad>", "</s>", "<unk>"]),
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,
    )
    config = T5Config(
        vocab_size=len(tok),
        d_model=32,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return T5EncoderModel(config), tok


def _flux_vae(latent_channels: int) -> AutoencoderKL:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4, 8),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )


def build_tiny_sd3_inpaint(path: Path) -> Path:
    """SD3 inpainting: an MMDiT over 16 latent channels, CLIP-L, CLIP-G and T5."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3InpaintPipeline

    torch.manual_seed(0)
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=1,
        in_channels=16,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        joint_attention_dim=32,
        caption_projection_dim=32,
        pooled_projection_dim=64,  # CLIP-L's and CLIP-G's pooled outputs, side by side
        out_channels=16,
    )
    t5, t5_tok = _t5()
    pipe = StableDiffusion3InpaintPipeline(
        transformer=transformer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_flux_vae(16),
        text_encoder=_clip(projection=True),
        tokenizer=clip_tokenizer(),
        text_encoder_2=_clip(projection=True),
        tokenizer_2=clip_tokenizer(),
        text_encoder_3=t5,
        tokenizer_3=t5_tok,
        image_encoder=None,
        feature_extractor=None,
    )
    return _finish(pipe, path)


def _flux_transformer(in_channels: int, out_channels: int) -> FluxTransformer2DModel:
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=in_channels,
        out_channels=out_channels,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # T5's width
        pooled_projection_dim=32,  # CLIP's pooled width
        axes_dims_rope=[4, 4, 8],
        guidance_embeds=True,  # [dev]'s distilled guidance is an input of the model
    )


def build_tiny_flux_fill(path: Path) -> Path:
    """FLUX.1 Fill: packed latents, the masked image's latents and the mask, side by side."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxFillPipeline

    torch.manual_seed(0)
    latent = 2
    vae = _flux_vae(latent)
    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    packed = latent * 4  # 2x2 patches of the latents
    mask_channels = scale * scale * 4  # the mask at pixel resolution, folded into the latent grid, packed
    t5, t5_tok = _t5()
    pipe = FluxFillPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=_clip(projection=False),
        tokenizer=clip_tokenizer(),
        text_encoder_2=t5,
        tokenizer_2=t5_tok,
        transformer=_flux_transformer(2 * packed + mask_channels, packed),
    )
    return _finish(pipe, path)


def build_tiny_flux_kontext(path: Path) -> Path:
    """FLUX.1 Kontext inpainting: the reference image's tokens beside the latents', one transformer."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxKontextInpaintPipeline

    torch.manual_seed(0)
    latent = 2
    t5, t5_tok = _t5()
    pipe = FluxKontextInpaintPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_flux_vae(latent),
        text_encoder=_clip(projection=False),
        tokenizer=clip_tokenizer(),
        text_encoder_2=t5,
        tokenizer_2=t5_tok,
        transformer=_flux_transformer(latent * 4, latent * 4),
        image_encoder=None,
        feature_extractor=None,
    )
    return _finish(pipe, path)


def build_tiny_flux2_klein(path: Path) -> Path:
    """FLUX.2 klein inpainting: the Flux2 transformer over a 2-channel latent, a Qwen3 text encoder."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinInpaintPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    tok = qwen_tokenizer()
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tok),
            hidden_size=16,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=512,
        )
    )
    vae = AutoencoderKLFlux2(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(4, 8),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=4,  # one latent channel, 2x2 patches
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=16,  # one hidden layer of the text encoder (klein reads three of Qwen3-4B's)
        timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4],
        guidance_embeds=False,
    )
    pipe = Flux2KleinInpaintPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tok,
        transformer=transformer,
        is_distilled=True,
    )
    return _finish(pipe, path)


def build_tiny_qwen_image_edit(path: Path) -> Path:
    """Qwen-Image-Edit inpainting: an MMDiT over a 3D-causal VAE's latents, a Qwen2.5-VL text encoder
    that sees the image too (its processor and chat format: testing/qwen.py's tiny Qwen2.5-VL)."""
    import tempfile

    import torch
    import transformers as t
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditInpaintPipeline,
        QwenImageTransformer2DModel,
    )

    from .qwen import build_tiny_qwen2_5_vl

    with tempfile.TemporaryDirectory() as tmp:
        vl = build_tiny_qwen2_5_vl(Path(tmp) / "vl")
        text_encoder = t.Qwen2_5_VLForConditionalGeneration.from_pretrained(vl)
        vl_processor = t.AutoProcessor.from_pretrained(vl)
    processor = t.Qwen2VLProcessor(  # the class Qwen-Image-Edit's own model_index names
        image_processor=vl_processor.image_processor,
        tokenizer=vl_processor.tokenizer,
        video_processor=vl_processor.video_processor,
        chat_template=vl_processor.tokenizer.chat_template,
    )
    torch.manual_seed(0)
    z = 4
    pipe = QwenImageEditInpaintPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=AutoencoderKLQwenImage(
            base_dim=8,
            z_dim=z,
            dim_mult=[1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True],
            latents_mean=[0.0] * z,
            latents_std=[1.0] * z,
        ),
        text_encoder=text_encoder,
        tokenizer=processor.tokenizer,
        processor=processor,
        transformer=QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=z * 4,
            out_channels=z,
            num_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,  # the text encoder's width
            guidance_embeds=False,
            axes_dims_rope=(8, 4, 4),
        ),
    )
    return _finish(pipe, path)
