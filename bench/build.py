"""Random-weight models for the benchmarks, built from configs directly on the device.

`scale="full"`: the real architectures of the balanced and fast presets (compute does not depend
on weight values, so their timings are the real models'): LLaVA-1.5-7B, LLaVA-OneVision-0.5B,
SAM ViT-L, SlimSAM-77, Grounding DINO tiny, OWLv2 base, SD 1.5 inpainting, and the quality
preset's LLaVA-NeXT Mistral-7B, SAM ViT-H, Grounding DINO base and SDXL inpainting (bench/matrix.py),
and the best preset's Qwen3-VL 8B, SAM 3 and FLUX.2 klein 4B (compare.py's `best` section).
`scale="tiny"`: the same classes and the same code at test-model sizes, so the CPU smoke run
exercises every line the GPU run does.

Models are built under `torch.device(device)` (docs/models.md: meta + to_empty leaves buffers as
garbage). Processors use the toy tokenizers of lasso_edit.testing.tiny: token ids stay inside
the real vocabularies, and a random model's words are noise either way.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

FULL, TINY = "full", "tiny"


def device_setup(obj, smoke: bool) -> None:
    """Set what a benchmark runs on: `cuda`, `device`, `scale` (tiny models for a smoke run on the
    CPU, full-size on a GPU), `half` (fp16) and `bf16` dtypes (fp32 on the CPU)."""
    import torch

    obj.cuda = torch.cuda.is_available() and not smoke
    obj.device = "cuda" if obj.cuda else "cpu"
    obj.scale = TINY if smoke else FULL
    obj.half = torch.float16 if obj.cuda else torch.float32
    obj.bf16 = torch.bfloat16 if obj.cuda else torch.float32


def _on(device, fn):
    import torch

    with torch.device(device):
        return fn()


def llava(device, dtype, scale=FULL):
    """LLaVA-1.5-7B (`LlavaConfig()` defaults: CLIP ViT-L/14-336 + Llama-2-7B) and its processor."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    from lasso_edit.testing.tiny import llava_processor

    if scale == FULL:
        proc = llava_processor(image_size=336, patch_size=14)
        cfg = LlavaConfig()
    else:
        proc = llava_processor(32, 8)
        cfg = LlavaConfig(
            vision_config=CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                                           num_hidden_layers=2, num_attention_heads=2, projection_dim=32),
            text_config=LlamaConfig(vocab_size=len(proc.tokenizer), hidden_size=64, intermediate_size=128,
                                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4),
            image_seq_length=16)
    cfg.image_token_id = proc.tokenizer.convert_tokens_to_ids("<image>")
    model = _on(device, lambda: LlavaForConditionalGeneration._from_config(cfg, dtype=dtype)).eval()
    model.generation_config.pad_token_id = proc.tokenizer.pad_token_id
    model.generation_config.eos_token_id = None  # a random LM may stop at once: the bench fixes the length
    return model, proc


def onevision(device, dtype, scale=FULL):
    """LLaVA-OneVision-0.5B (SigLIP so400m/14-384, Qwen2-0.5B, anyres_max_9) and its processor."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        Qwen2Config,
        SiglipVisionConfig,
    )

    from lasso_edit.testing.tiny import LLAVA_CHAT_TEMPLATE, llava_processor

    tok = llava_processor().tokenizer
    if scale == FULL:
        side, patch = 384, 14
        pins = [[side * i, side * j] for i in range(1, 7) for j in range(1, 7)]
        vision = SiglipVisionConfig(image_size=side, patch_size=patch, hidden_size=1152, intermediate_size=4304,
                                    num_hidden_layers=26, num_attention_heads=16)
        text = Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                           num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                           tie_word_embeddings=True)
    else:
        side, patch = 32, 8
        pins = [[32, 32], [32, 64], [64, 32], [64, 64]]
        vision = SiglipVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                                    num_hidden_layers=2, num_attention_heads=2)
        text = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)
    proc = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size={"height": side, "width": side}, image_grid_pinpoints=pins),
        video_processor=LlavaOnevisionVideoProcessor(), tokenizer=tok, num_image_tokens=(side // patch) ** 2,
        vision_feature_select_strategy="full", chat_template=LLAVA_CHAT_TEMPLATE)
    cfg = LlavaOnevisionConfig(vision_config=vision, text_config=text, image_grid_pinpoints=pins,
                               image_token_id=tok.convert_tokens_to_ids("<image>"),
                               vision_feature_select_strategy="full", vision_feature_layer=-1,
                               vision_aspect_ratio="anyres_max_9")
    model = _on(device, lambda: LlavaOnevisionForConditionalGeneration._from_config(cfg, dtype=dtype)).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = None
    return model, proc


SAM_SIZES = {  # vision-encoder shapes (facebook/sam-vit-*, Zigeng/SlimSAM-uniform-77)
    "sam-vit-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                          global_attn_indexes=[5, 11, 17, 23]),
    "slimsam-77": dict(hidden_size=168, mlp_dim=696),
    "sam-vit-huge": dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16,
                         global_attn_indexes=[7, 15, 23, 31]),
}


def sam(device, dtype, name="sam-vit-large", scale=FULL):
    """SamModel + SamProcessor (1024-px input) for a SAM_SIZES entry; tiny: the test SAM."""
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor, SamVisionConfig

    if scale == FULL:
        cfg = SamConfig(vision_config=SamVisionConfig(**SAM_SIZES[name]))
        proc = SamProcessor(image_processor=SamImageProcessor())
    else:
        from transformers import SamMaskDecoderConfig, SamPromptEncoderConfig

        cfg = SamConfig(
            vision_config=SamVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=64,
                                          patch_size=8, window_size=4, global_attn_indexes=[1], output_channels=32,
                                          mlp_dim=64, num_pos_feats=16),
            prompt_encoder_config=SamPromptEncoderConfig(hidden_size=32, image_size=64, patch_size=8,
                                                         mask_input_channels=4),
            mask_decoder_config=SamMaskDecoderConfig(hidden_size=32, mlp_dim=64, num_hidden_layers=2,
                                                     num_attention_heads=2, iou_head_hidden_dim=32))
        proc = SamProcessor(image_processor=SamImageProcessor(
            size={"longest_edge": 64}, pad_size={"height": 64, "width": 64},
            mask_size={"longest_edge": 16}, mask_pad_size={"height": 16, "width": 16}))
    cfg._attn_implementation = "sdpa"
    return _on(device, lambda: SamModel._from_config(cfg, dtype=dtype)).eval(), proc


def grounding_dino(device, scale=FULL, base=False):
    """Grounding DINO tiny (GroundingDinoConfig() defaults: Swin-T, BERT-base text), float32 weights;
    `base`: Swin-B/12 at 384 px (IDEA-Research/grounding-dino-base's backbone)."""
    import torch
    from transformers import (
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    if scale == TINY:
        from lasso_edit.testing.tiny import build_tiny_grounding_dino

        path = build_tiny_grounding_dino(Path(tempfile.mkdtemp()) / "gdino")
        model = GroundingDinoForObjectDetection.from_pretrained(path).to(device).eval()
        return model, GroundingDinoProcessor.from_pretrained(path)
    vocab = Path(tempfile.mkdtemp()) / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "a", "the", "car", "person"]))
    cfg = GroundingDinoConfig()
    if base:
        cfg = GroundingDinoConfig(backbone_config=SwinConfig(
            embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12, image_size=384,
            out_features=["stage2", "stage3", "stage4"]))
    model = _on(device, lambda: GroundingDinoForObjectDetection._from_config(cfg, dtype=torch.float32))
    model = model.to(device).eval()  # some parameters are not made under the device context
    proc = GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(),
                                  tokenizer=BertTokenizer(str(vocab), model_max_length=256))
    return model, proc


def owlv2(device, scale=FULL):
    """OWLv2 base/16 at 960 px, float32 weights."""
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    from lasso_edit.testing.tiny import clip_tokenizer

    if scale == FULL:
        cfg, size = Owlv2Config(vision_config={"image_size": 960, "patch_size": 16}), 960
    else:
        cfg = Owlv2Config(text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                                       "num_attention_heads": 2, "max_position_embeddings": 16},
                          vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                                         "num_hidden_layers": 2, "num_attention_heads": 2}, projection_dim=32)
        size = 32
    model = _on(device, lambda: Owlv2ForObjectDetection._from_config(cfg, dtype=torch.float32)).eval()
    proc = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": size, "width": size}),
                          tokenizer=clip_tokenizer(16))
    return model, proc


def sd_inpaint(device, dtype, scale=FULL, seed=0):
    """SD 1.5 inpainting (UNet 859.5M, VAE 83.7M, CLIP-L text 123.1M) with the checkpoint's PNDM scheduler."""
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from lasso_edit.testing.tiny import clip_tokenizer

    if scale == FULL:
        unet_kw = dict(sample_size=64, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
                       cross_attention_dim=768, attention_head_dim=8,
                       down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                       up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
        vae_kw = dict(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                      up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, sample_size=512)
        text_kw = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12)
    else:
        unet_kw = dict(sample_size=32, layers_per_block=1, block_out_channels=(32, 64), cross_attention_dim=32,
                       attention_head_dim=4, norm_num_groups=8,
                       down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                       up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
        vae_kw = dict(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                      up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=8, sample_size=64)
        text_kw = dict(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2)
    torch.manual_seed(seed)

    def make():
        unet = UNet2DConditionModel(in_channels=9, out_channels=4, **unet_kw).to(dtype)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, **vae_kw).to(dtype)
        text = CLIPTextModel(CLIPTextConfig(max_position_embeddings=77, vocab_size=49408, **text_kw)).to(dtype)
        return unet, vae, text

    unet, vae, text = _on(device, make)
    sched = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True,
                          steps_offset=1)
    return StableDiffusionInpaintPipeline(unet=unet, vae=vae, text_encoder=text, tokenizer=clip_tokenizer(),
                                          scheduler=sched, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)


def llava_next(device, dtype, scale=FULL):
    """LLaVA-NeXT Mistral-7B (llava-v1.6-mistral-7b-hf: CLIP ViT-L/14-336, Mistral-7B, anyres
    tiles of 336 px) and its processor."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
        MistralConfig,
    )

    from lasso_edit.testing.tiny import LLAVA_CHAT_TEMPLATE, llava_processor

    tok = llava_processor().tokenizer
    if scale == FULL:
        side, patch = 336, 14
        pins = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
        vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                  num_attention_heads=16, image_size=side, patch_size=patch, projection_dim=768)
        text = MistralConfig(vocab_size=32064, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                             num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768)
    else:
        side, patch = 32, 8
        pins = [[32, 64], [64, 32], [64, 64]]
        vision = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=2, projection_dim=32)
        text = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024)
    proc = LlavaNextProcessor(
        image_processor=LlavaNextImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side},
                                                image_grid_pinpoints=pins),
        tokenizer=tok, patch_size=patch, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE)
    cfg = LlavaNextConfig(vision_config=vision, text_config=text, image_grid_pinpoints=pins,
                          image_token_id=tok.convert_tokens_to_ids("<image>"),
                          vision_feature_select_strategy="default", vision_feature_layer=-2)
    model = _on(device, lambda: LlavaNextForConditionalGeneration._from_config(cfg, dtype=dtype)).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = None
    return model, proc


def sdxl_inpaint(device, dtype, scale=FULL, seed=0):
    """SDXL inpainting 0.1 (UNet 2.6B with 9 input channels, CLIP-L + OpenCLIP bigG text encoders,
    text_time conditioning, the SDXL VAE), Euler scheduler as the checkpoint ships."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from lasso_edit.testing.tiny import clip_tokenizer

    if scale == FULL:
        unet_kw = dict(sample_size=128, layers_per_block=2, block_out_channels=(320, 640, 1280),
                       down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                       up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                       transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
                       cross_attention_dim=2048, addition_time_embed_dim=256,
                       projection_class_embeddings_input_dim=2816)
        vae_kw = dict(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                      up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, sample_size=1024,
                      scaling_factor=0.13025)
        text1 = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12)
        text2 = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32,
                     projection_dim=1280, hidden_act="gelu")
    else:
        unet_kw = dict(sample_size=32, layers_per_block=1, block_out_channels=(32, 64),
                       down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                       up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), transformer_layers_per_block=(1, 1),
                       attention_head_dim=(2, 4), cross_attention_dim=64, addition_time_embed_dim=8,
                       projection_class_embeddings_input_dim=6 * 8 + 32, norm_num_groups=8)
        vae_kw = dict(block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                      up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=8, sample_size=64)
        text1 = dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2)
        text2 = dict(text1, projection_dim=32)
    torch.manual_seed(seed)

    def make():
        unet = UNet2DConditionModel(in_channels=9, out_channels=4, use_linear_projection=True,
                                    addition_embed_type="text_time", **unet_kw).to(dtype)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, force_upcast=scale == FULL,
                            **vae_kw).to(dtype)
        common = dict(max_position_embeddings=77, vocab_size=49408)
        t1 = CLIPTextModel(CLIPTextConfig(**common, **text1)).to(dtype)
        t2 = CLIPTextModelWithProjection(CLIPTextConfig(**common, **text2)).to(dtype)
        return unet, vae, t1, t2

    unet, vae, t1, t2 = _on(device, make)
    sched = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                   steps_offset=1, timestep_spacing="leading")
    return StableDiffusionXLInpaintPipeline(vae=vae, unet=unet, text_encoder=t1, tokenizer=clip_tokenizer(),
                                            text_encoder_2=t2, tokenizer_2=clip_tokenizer(), scheduler=sched,
                                            requires_aesthetics_score=False)


# --------------------------------------------------------------------------- the best preset (issue 19)
def qwen3_vl(device, dtype, scale=FULL, tokens: int = 12):
    """Qwen3-VL-8B-Instruct (text: Qwen3-8B, 36 layers of 4096; vision: 27 blocks of 1152, patch 16,
    deepstack at 8/16/24; 8.77B parameters) as the planner Lasso runs, QwenVLParser."""
    import transformers as t

    from lasso_edit.parse.qwen import QwenVLParser
    from lasso_edit.testing.qwen import build_tiny_qwen3_vl, qwen_tokenizer

    if scale != FULL:
        folder = build_tiny_qwen3_vl(Path(tempfile.mkdtemp(prefix="best-vlm-")) / "vlm")
        return QwenVLParser.from_pretrained(str(folder), max_new_tokens=tokens, min_new_tokens=tokens)
    tok = qwen_tokenizer()
    ids = {k: int(tok.convert_tokens_to_ids(v)) for k, v in (("image_token_id", "<|image_pad|>"),
           ("video_token_id", "<|image_pad|>"), ("vision_start_token_id", "<|vision_start|>"),
           ("vision_end_token_id", "<|vision_end|>"))}
    cfg = t.Qwen3VLConfig(
        text_config=dict(vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
                         num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
                         rope_theta=5_000_000.0, tie_word_embeddings=False,
                         rope_scaling={"mrope_section": [24, 20, 20], "rope_type": "default", "mrope_interleaved": True}),
        vision_config=dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096,
                           patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
                           deepstack_visual_indexes=[8, 16, 24]),
        tie_word_embeddings=False, **ids)
    model = _on(device, lambda: t.Qwen3VLForConditionalGeneration._from_config(cfg, dtype=dtype)).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = None  # a random LM may stop at once: the bench fixes the length
    proc = t.Qwen3VLProcessor(
        image_processor=t.Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2),
        tokenizer=tok, video_processor=t.Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2),
        chat_template=tok.chat_template)
    return QwenVLParser(model, proc, max_new_tokens=tokens, min_new_tokens=tokens)


def sam3(device, dtype, scale=FULL):
    """SAM 3 (`Sam3Config()` defaults: the 848M model, ViT at 1008 px, 200 queries) as Sam3Segmenter."""
    import transformers as t

    from lasso_edit.segment.sam3 import Sam3Segmenter
    from lasso_edit.testing.sam3 import build_tiny_sam3
    from lasso_edit.testing.tiny import clip_tokenizer

    if scale != FULL:
        return Sam3Segmenter.from_pretrained(str(build_tiny_sam3(Path(tempfile.mkdtemp(prefix="best-sam3-")) / "s")))
    model = _on(device, lambda: t.Sam3Model._from_config(t.Sam3Config(), dtype=dtype)).eval()
    return Sam3Segmenter(model, t.Sam3Processor(image_processor=t.Sam3ImageProcessor(), tokenizer=clip_tokenizer(32)))


def flux2_klein(device, dtype, scale=FULL):
    """FLUX.2 klein 4B inpainting (transformer 3.88B: 5 double and 20 single blocks of 24 x 128, text
    width 7680 = three hidden states of Qwen3-4B; Qwen3-4B text encoder; the FLUX.2 VAE) as Lasso's
    Inpainter around its painter."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinInpaintPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from lasso_edit.edit.inpaint import Inpainter
    from lasso_edit.edit.painters.flow import Flux2KleinPainter
    from lasso_edit.testing.flow import build_tiny_flux2_klein
    from lasso_edit.testing.qwen import qwen_tokenizer

    if scale != FULL:
        folder = build_tiny_flux2_klein(Path(tempfile.mkdtemp(prefix="best-klein-")) / "k")
        return Inpainter.from_pretrained(str(folder))
    torch.manual_seed(0)

    def make():
        transformer = Flux2Transformer2DModel(patch_size=1, in_channels=128, num_layers=5, num_single_layers=20,
                                              attention_head_dim=128, num_attention_heads=24, joint_attention_dim=7680,
                                              guidance_embeds=False).to(dtype)
        vae = AutoencoderKLFlux2().to(dtype)
        text = Qwen3ForCausalLM._from_config(
            Qwen3Config(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                        num_attention_heads=32, num_key_value_heads=8, head_dim=128, tie_word_embeddings=True),
            dtype=dtype)
        return transformer, vae, text

    transformer, vae, text = _on(device, make)
    pipe = Flux2KleinInpaintPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text.eval(),
                                     tokenizer=qwen_tokenizer(), transformer=transformer, is_distilled=True)
    return Inpainter(Flux2KleinPainter(pipe.to(device), native=1024))


def clone_pipe(pipe):
    """A second pipeline with its own copy of the same weights (the two arms configure theirs differently)."""
    import copy

    return copy.deepcopy(pipe)


def random_lora(pipe, folder: Path, rank: int = 64) -> Path:
    """Save a random LoRA of TCD-SD15-LoRA's rank over the UNet's attention, loadable by load_lora_weights."""
    import copy

    import torch
    from diffusers import StableDiffusionInpaintPipeline
    from peft import LoraConfig, get_peft_model_state_dict

    unet = copy.deepcopy(pipe.unet)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    state = {k: v.to(torch.float16).contiguous() for k, v in get_peft_model_state_dict(unet).items()}
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionInpaintPipeline.save_lora_weights(folder, unet_lora_layers=state)
    del unet
    return folder
