"""Tiny, randomly initialised models built from configs: the `tiny` preset and the tests.

Every model here is a real library class (LLaVA, SAM, OWLv2, Stable Diffusion inpainting) with
small shapes and fixed seeds. `build_tiny_models(root)` writes each one with `save_pretrained`
into `root/<stage>`, and the rest of Lasso loads them back through exactly the code path a
Hub id takes. Their outputs are noise; their plumbing is real. Building all of them takes a
couple of seconds on two CPU cores.

Shapes follow docs/models.md ("Facts from building tiny models").
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import CLIPTokenizer, LlavaProcessor

# Bump when the tiny models change shape so that stale caches are rebuilt.
TINY_VERSION = "3"
STAGES = ("vlm", "segmenter", "inpainter", "detector")

# Words the tiny tokenizers should know as whole tokens; anything else falls back to bytes.
_CORPUS = (
    "make the car red remove the dog replace the background with a beach at sunset "
    "edit action target value box recolor replace remove background add style json "
    "person cat ball table sky hat boat lake winter watercolor left right top bottom "
    '{"edits": [{"action": "recolor", "target": "car", "value": "red", "box": [0.1, 0.2, 0.5, 0.6]}]} '
    "USER: ASSISTANT: a photo of "
)


def default_tiny_dir() -> Path:
    """Where the `tiny` preset keeps its models: $LASSO_TINY_DIR or ~/.cache/lasso/tiny-v<N>."""
    env = os.environ.get("LASSO_TINY_DIR")
    if env:
        return Path(env).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "lasso" / f"tiny-v{TINY_VERSION}"


def ensure_tiny_models(root: str | os.PathLike | None = None) -> dict[str, str]:
    """Return {stage: local folder} for the tiny models, building them once if missing.

    The folders are written to a temporary sibling and renamed into place, so a run that is
    interrupted never leaves a half-written model behind.
    """
    return _build_once(Path(root) if root is not None else default_tiny_dir(), STAGES, build_tiny_models)


def _build_once(root: Path, stages: tuple[str, ...], build: Callable[[Path], object]) -> dict[str, str]:
    """{stage: root/stage}, built by `build(folder)` into a temporary sibling and renamed into place
    unless every stage is already complete."""
    paths = {stage: str(root / stage) for stage in stages}
    if all((Path(p) / ".complete").exists() for p in paths.values()):
        return paths
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=root.parent))
    try:
        build(tmp)
        for stage in stages:
            (tmp / stage / ".complete").write_text(TINY_VERSION)
        if root.exists():
            shutil.rmtree(root)
        os.replace(tmp, root)
    except OSError:
        # Another process finished first: use its models.
        if not all((Path(p) / ".complete").exists() for p in paths.values()):
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return paths


def build_tiny_models(root: str | os.PathLike) -> dict[str, str]:
    """Build and save every tiny model under `root`; return {stage: folder}."""
    root = Path(root)
    out = {
        "vlm": build_tiny_llava(root / "vlm"),
        "segmenter": build_tiny_sam(root / "segmenter"),
        "inpainter": build_tiny_sd_inpaint(root / "inpainter"),
        "detector": build_tiny_owlv2(root / "detector"),
    }
    return {k: str(v) for k, v in out.items()}


# --------------------------------------------------------------------------- tokenizers
def _byte_level_bpe(vocab_size: int, special: list[str]) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    return tok


# llava-1.5-hf's template renders "USER: <image>\n{text} ASSISTANT:" (docs/models.md). HF renders
# templates with trim_blocks, so newlines are written as {{ '\n' }}.
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>{{ '\n' }}{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %} {% else %}</s>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def llava_processor(image_size: int = 32, patch_size: int = 8) -> LlavaProcessor:
    """A LlavaProcessor with a small BPE tokenizer and llava-1.5's image pipeline (resize the
    shortest edge, centre-crop a square; docs/models.md)."""
    from transformers import CLIPImageProcessor, LlavaProcessor, PreTrainedTokenizerFast

    special = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(400, special),
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    tok.chat_template = LLAVA_CHAT_TEMPLATE
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        do_center_crop=True,
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # the CLS token of a CLIP tower
        chat_template=LLAVA_CHAT_TEMPLATE,
    )


def build_tiny_llava(path: Path, image_size: int = 32, patch_size: int = 8) -> Path:
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    processor = llava_processor(image_size, patch_size)
    tok = processor.tokenizer
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            image_size=image_size,
            patch_size=patch_size,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            projection_dim=32,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        ),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=(image_size // patch_size) ** 2,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_sam(path: Path) -> Path:
    import torch
    from transformers import (
        SamConfig,
        SamImageProcessor,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    vision = SamVisionConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=64,
        patch_size=8,
        window_size=4,
        global_attn_indexes=[1],
        output_channels=32,
        mlp_dim=64,
        num_pos_feats=16,  # 2 x 16 = the prompt encoder's hidden size
    )
    prompt = SamPromptEncoderConfig(hidden_size=32, image_size=64, patch_size=8, mask_input_channels=4)
    decoder = SamMaskDecoderConfig(
        hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2, iou_head_hidden_dim=32
    )
    config = SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    torch.manual_seed(0)
    model = SamModel(config).eval()
    processor = SamProcessor(
        image_processor=SamImageProcessor(
            size={"longest_edge": 64},
            pad_size={"height": 64, "width": 64},
            mask_size={"longest_edge": 16},
            mask_pad_size={"height": 16, "width": 16},
        )
    )
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_edgetam(path: Path) -> Path:
    """EdgeTAM (`EdgeTamModel`) with its real encoder (RepViT-M1 through timm: 4.8 M parameters in
    all, 19 MB) and a small neck and decoder, at a 256-pixel frame; read by Sam2Processor, as the
    real checkpoint is. Its default config names resnet50 (transformers 5.25), so the backbone is
    set to the one EdgeTAM's checkpoint uses, repvit_m1.dist_in1k (docs/models.md)."""
    import torch
    from transformers import (
        EdgeTamConfig,
        EdgeTamMaskDecoderConfig,
        EdgeTamModel,
        EdgeTamPromptEncoderConfig,
        EdgeTamVisionConfig,
        Sam2ImageProcessor,
        Sam2Processor,
        TimmWrapperConfig,
    )

    vision = EdgeTamVisionConfig(backbone_feature_sizes=[[64, 64], [32, 32], [16, 16]], fpn_hidden_size=32)
    assert isinstance(vision.backbone_config, TimmWrapperConfig)
    vision.backbone_config.architecture = "repvit_m1.dist_in1k"
    prompt = EdgeTamPromptEncoderConfig(hidden_size=32, image_size=256, patch_size=16, mask_input_channels=4)
    decoder = EdgeTamMaskDecoderConfig(hidden_size=32, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)
    config = EdgeTamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    torch.manual_seed(5)  # a seed whose random masks leave part of a small photo outside (the tests need both)
    EdgeTamModel(config).eval().save_pretrained(path)
    image_processor = Sam2ImageProcessor(size={"height": 256, "width": 256}, mask_size={"height": 64, "width": 64})
    Sam2Processor(image_processor=image_processor).save_pretrained(path)
    return path


def build_tiny_owlv2(path: Path) -> Path:
    return _build_tiny_owl(path, v2=True)


def build_tiny_owlvit(path: Path) -> Path:
    """OWL-ViT (v1, the lite preset's detector: `google/owlvit-base-patch32`'s classes), tiny."""
    return _build_tiny_owl(path, v2=False)


def _build_tiny_owl(path: Path, v2: bool) -> Path:
    import torch
    import transformers
    from transformers import CLIPTokenizerFast

    kind = "Owlv2" if v2 else "OwlViT"
    tok = CLIPTokenizerFast(vocab=_clip_vocab(), merges=_clip_merges(), model_max_length=16)
    config = getattr(transformers, f"{kind}Config")(
        text_config={
            **_clip_special_ids(),
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
        },
        vision_config={
            "image_size": 32,
            "patch_size": 8,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        projection_dim=32,
    )
    torch.manual_seed(0)
    model = getattr(transformers, f"{kind}ForObjectDetection")(config).eval()
    sizes: dict[str, Any] = {"size": {"height": 32, "width": 32}}
    if not v2:  # OWL-ViT's processor also center-crops, to the same size
        sizes["crop_size"] = {"height": 32, "width": 32}
    image_processor = getattr(transformers, f"{kind}ImageProcessor")(**sizes)
    processor = getattr(transformers, f"{kind}Processor")(image_processor=image_processor, tokenizer=tok)
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


# --------------------------------------------------------------------------- Stable Diffusion
def _clip_vocab() -> dict[str, int]:
    """A byte-level CLIP vocabulary: 256 characters, the same with `</w>`, a few merges, start/end."""
    from tokenizers import pre_tokenizers

    chars = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = chars + [c + "</w>" for c in chars]
    tokens += ["th", "the</w>", "re", "red</w>", "ca", "car</w>"]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def clip_tokenizer(max_length: int = 77) -> CLIPTokenizer:
    """A small byte-level CLIPTokenizer (the class SD pipelines load)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer(vocab=_clip_vocab(), merges=_clip_merges(), model_max_length=max_length)


def _clip_special_ids() -> dict[str, int]:
    vocab = _clip_vocab()
    end = vocab["<|endoftext|>"]
    return {"bos_token_id": vocab["<|startoftext|>"], "eos_token_id": end, "pad_token_id": end}


def _clip_merges() -> list[tuple[str, str]]:
    return [("t", "h"), ("th", "e</w>"), ("r", "e"), ("re", "d</w>"), ("c", "a"), ("ca", "r</w>")]


def build_tiny_sd_inpaint(path: Path) -> Path:
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline

    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    # 9 UNet channels: 4 latent + 4 masked-image latent + 1 mask
    pipe = StableDiffusionInpaintPipeline(**_tiny_sd_parts(in_channels=9, tiny_vae=False), scheduler=scheduler)
    pipe.save_pretrained(path)
    # Record the tiny model's native size so that `lasso models` can show it.
    (Path(path) / "lasso_tiny.json").write_text(json.dumps({"native_size": 64}))
    return path


def build_tiny_sd_turbo(path: Path) -> Path:
    """SD-Turbo's kind of checkpoint, tiny: a text-to-image StableDiffusionPipeline (a 4-channel
    UNet) with EulerDiscrete at trailing timesteps, saved with TAESD's class (`AutoencoderTiny`) as
    its VAE, as the turbo painter runs it."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="trailing", steps_offset=1
    )
    pipe = StableDiffusionPipeline(**_tiny_sd_parts(in_channels=4, tiny_vae=True), scheduler=scheduler)
    pipe.save_pretrained(path)
    (Path(path) / "lasso_tiny.json").write_text(json.dumps({"native_size": 64}))
    return path


def _tiny_sd_parts(in_channels: int, tiny_vae: bool) -> dict[str, Any]:
    """A tiny SD UNet (`in_channels`), VAE (KL, or TAESD's AutoencoderTiny), CLIP text encoder and
    tokenizer: the components a Stable Diffusion pipeline is built from (no safety checker)."""
    import torch
    from diffusers import AutoencoderKL, AutoencoderTiny, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae: Any
    if tiny_vae:
        vae = AutoencoderTiny(
            encoder_block_out_channels=(16, 16),
            decoder_block_out_channels=(16, 16),
            num_encoder_blocks=(1, 1),
            num_decoder_blocks=(1, 1),
            latent_channels=4,
            upsampling_scaling_factor=2,
        )
    else:
        vae = AutoencoderKL(
            block_out_channels=(32, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            norm_num_groups=8,
            sample_size=64,
        )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            **_clip_special_ids(),
            hidden_size=32,
            intermediate_size=64,
            layer_norm_eps=1e-05,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(_clip_vocab()),
            max_position_embeddings=77,
        )
    )
    return {
        "unet": unet,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": clip_tokenizer(),
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }


def build_tiny_sdxl_inpaint(path: Path) -> Path:
    """A tiny SDXL inpainting pipeline (two text encoders, text_time conditioning), for tests."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,  # 6 time ids x 8 + the pooled text embedding
        cross_attention_dim=64,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        sample_size=64,
        norm_num_groups=8,
    )
    text = dict(
        **_clip_special_ids(),
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(_clip_vocab()),
        max_position_embeddings=77,
        projection_dim=32,
    )
    pipe = StableDiffusionXLInpaintPipeline(
        vae=vae,
        unet=unet,
        text_encoder=CLIPTextModel(CLIPTextConfig(**text)),
        tokenizer=clip_tokenizer(),
        text_encoder_2=CLIPTextModelWithProjection(CLIPTextConfig(**text)),
        tokenizer_2=clip_tokenizer(),
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            steps_offset=1,
            timestep_spacing="leading",
        ),
        requires_aesthetics_score=False,
    )
    pipe.save_pretrained(path)
    return path


def build_tiny_llava_onevision(path: Path) -> Path:
    """A tiny LLaVA-OneVision (SigLIP tower, Qwen2 LM, anyres tiles), the `fast` preset's VLM class."""
    import torch
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionForConditionalGeneration,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        Qwen2Config,
        SiglipVisionConfig,
    )

    tok = llava_processor().tokenizer
    pins = [[32, 32], [32, 64], [64, 32], [64, 64]]  # anyres grid, scaled down from 384-px tiles
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size={"height": 32, "width": 32}, image_grid_pinpoints=pins),
        video_processor=LlavaOnevisionVideoProcessor(),
        tokenizer=tok,
        num_image_tokens=16,
        vision_feature_select_strategy="full",
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    config = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
        ),
        text_config=Qwen2Config(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
        ),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pins,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
    )
    torch.manual_seed(0)
    LlavaOnevisionForConditionalGeneration(config).eval().save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_llava_next(path: Path) -> Path:
    """A tiny LLaVA-NeXT (CLIP tower, Llama LM, anyres tiles of 32 px, image newline tokens)."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    tok = llava_processor().tokenizer
    pins = [[32, 64], [64, 32], [64, 64]]  # llava-v1.6's grid, scaled down from 336-px tiles
    processor = LlavaNextProcessor(
        image_processor=LlavaNextImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, image_grid_pinpoints=pins
        ),
        tokenizer=tok,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            projection_dim=32,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=1024,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        ),
        image_token_id=tok.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pins,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    torch.manual_seed(0)
    LlavaNextForConditionalGeneration(config).eval().save_pretrained(path)
    processor.save_pretrained(path)
    return path


def build_tiny_grounding_dino(path: Path) -> Path:
    """A tiny Grounding DINO (Swin backbone, BERT text tower), the real presets' detector class."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        ".",
        "a",
        "the",
        "car",
        "dog",
        "cat",
        "person",
        "ball",
        "red",
    ]
    (path / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = BertTokenizer(str(path / "vocab.txt"), model_max_length=32)
    config = GroundingDinoConfig(
        backbone_config=SwinConfig(
            image_size=64,
            patch_size=4,
            embed_dim=16,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 2, 2],
            window_size=2,
            out_features=["stage2", "stage3", "stage4"],
        ),
        text_config=BertConfig(
            vocab_size=len(words),
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        ),
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,  # decoder box heads are tied: at least two layers
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=10,
        num_feature_levels=3,
        max_text_len=32,
        encoder_n_points=2,
        decoder_n_points=2,
    )
    torch.manual_seed(0)
    GroundingDinoForObjectDetection(config).eval().save_pretrained(path)
    GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
        tokenizer=tok,
    ).save_pretrained(path)
    return path


# --------------------------------------------------------------------------- eval metric models
EVAL_STAGES = ("clip", "dino")


def ensure_tiny_eval_models(root: str | os.PathLike | None = None) -> dict[str, str]:
    """{"clip": folder, "dino": folder}: tiny random CLIP and DINO ViT for `lasso eval --preset tiny`
    and the tests, built once beside the tiny editing models (same atomic rename)."""

    def build(folder: Path) -> None:
        build_tiny_clip(folder / "clip")
        build_tiny_dino(folder / "dino")

    base = Path(root) if root is not None else default_tiny_dir()
    return _build_once(base.parent / f"{base.name}-eval", EVAL_STAGES, build)


def build_tiny_clip(path: Path) -> Path:
    """CLIPModel (ViT-B/32's layout, tiny) with CLIPImageProcessor's defaults (resize 224, crop 224)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = clip_tokenizer()
    config = CLIPConfig(
        text_config={
            **_clip_special_ids(),
            "vocab_size": len(tok),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
        },
        vision_config={
            "image_size": 224,
            "patch_size": 32,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        projection_dim=16,
    )
    torch.manual_seed(0)
    CLIPModel(config).eval().save_pretrained(path)
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tok).save_pretrained(path)
    return path


def build_tiny_dino(path: Path) -> Path:
    """ViTModel shaped as facebook/dino-vits16 (patch 16, 224), tiny."""
    import torch
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=224, patch_size=16, hidden_size=24, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2
    )
    ViTModel(config, add_pooling_layer=False).eval().save_pretrained(path)
    return path


def build_tiny_lama(path: Path, size: int | None = 64, inputs: int = 2) -> Path:
    """A LaMa-shaped ONNX graph, tiny and random (one 3x3 convolution of the image and the mask, then
    a sigmoid): Carve/LaMa-ONNX's interface, `image` [1,3,H,W] and `mask` [1,1,H,W] in, `output`
    [1,3,H,W] in [0, 1] out, at a fixed `size` (None: any size); `inputs=1`: one [1,4,H,W] input
    (the masked image and the mask), as other LaMa exports take it. Written as `lama.onnx` in `path`."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    side: Any = size if size is not None else "side"
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.3, (3, 4, 3, 3)).astype(np.float32), "w")
    conv = helper.make_node("Conv", ["x4", "w"], ["pre"], pads=[1, 1, 1, 1])
    out = helper.make_node("Sigmoid", ["pre"], ["output"])
    if inputs == 2:
        feeds = [
            helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, side, side]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, side, side]),
        ]
        nodes = [helper.make_node("Concat", ["image", "mask"], ["x4"], axis=1), conv, out]
    else:
        feeds = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, side, side])]
        nodes = [helper.make_node("Identity", ["input"], ["x4"]), conv, out]
    result = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, side, side])
    graph = helper.make_graph(nodes, "tiny-lama", feeds, [result], initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what ONNX Runtime 1.2x reads
    onnx.checker.check_model(model)
    path.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path / "lama.onnx"))
    return path
