"""Tiny random Qwen2.5-VL and Qwen3-VL checkpoints (`tiny:qwen2.5-vl`, `tiny:qwen3-vl`): the real
model, processor, image processor and video processor classes at toy sizes, Qwen's chat template
and special tokens on a byte-level BPE trained here, saved and loaded back as a user's checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .tiny import _byte_level_bpe

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

# Qwen's chat format, as the Qwen3 and Qwen2.5-VL tokenizers render it (their tokenizer_config.json).
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"]


def qwen_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE with Qwen's special tokens and chat template (Qwen2TokenizerFast's format)."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=_byte_level_bpe(500, QWEN_SPECIAL),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        model_max_length=4096,
    )
    tok.chat_template = QWEN_CHAT_TEMPLATE
    return tok


def _ids(tok: PreTrainedTokenizerFast) -> dict[str, int]:
    names = {
        "image_token_id": "<|image_pad|>",
        "vision_start_token_id": "<|vision_start|>",
        "vision_end_token_id": "<|vision_end|>",
        "video_token_id": "<|image_pad|>",
    }
    return {k: int(tok.convert_tokens_to_ids(v)) for k, v in names.items()}


def _text(tok: PreTrainedTokenizerFast, **extra: Any) -> dict:
    return dict(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=int(tok.convert_tokens_to_ids("<|endoftext|>")),
        eos_token_id=int(tok.convert_tokens_to_ids("<|im_end|>")),
        **extra,
    )


def build_tiny_qwen2_5_vl(path: Path) -> Path:
    """Qwen2.5-VL: patch 14, windowed vision attention with one full-attention block."""
    return _build(
        path,
        "qwen2_5_vl",
        patch=14,
        text={"rope_scaling": {"mrope_section": [2, 1, 1], "rope_type": "default", "type": "default"}},
        vision={"window_size": 56, "fullatt_block_indexes": [1]},
    )


def build_tiny_qwen3_vl(path: Path) -> Path:
    """Qwen3-VL: patch 16, interleaved M-RoPE, learned position embeddings, a deepstack layer."""
    return _build(
        path,
        "qwen3_vl",
        patch=16,
        text={
            "head_dim": 8,
            "rope_scaling": {"mrope_section": [2, 1, 1], "rope_type": "default", "mrope_interleaved": True},
        },
        vision={"num_position_embeddings": 64, "deepstack_visual_indexes": [1]},
    )


# model type -> (config, model, processor, video processor) classes of transformers
_CLASSES = {
    "qwen2_5_vl": (
        "Qwen2_5_VLConfig",
        "Qwen2_5_VLForConditionalGeneration",
        "Qwen2_5_VLProcessor",
        "Qwen2VLVideoProcessor",
    ),
    "qwen3_vl": ("Qwen3VLConfig", "Qwen3VLForConditionalGeneration", "Qwen3VLProcessor", "Qwen3VLVideoProcessor"),
}


def _build(path: Path, kind: str, patch: int, text: dict, vision: dict, merge: int = 2) -> Path:
    """A tiny Qwen-VL of `kind`, with an image budget of 4 to 64 merged tokens, saved at `path`."""
    import torch
    import transformers as t

    config_cls, model_cls, processor_cls, video_cls = (getattr(t, n) for n in _CLASSES[kind])
    torch.manual_seed(0)
    tok = qwen_tokenizer()
    side = patch * merge
    config = config_cls(
        text_config=_text(tok, **text),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=37,
            num_heads=2,
            out_hidden_size=32,
            patch_size=patch,
            spatial_merge_size=merge,
            temporal_patch_size=2,
            **vision,
        ),
        **_ids(tok),
    )
    model_cls(config).save_pretrained(path)
    processor_cls(
        image_processor=t.Qwen2VLImageProcessor(
            patch_size=patch, merge_size=merge, temporal_patch_size=2, min_pixels=side**2 * 4, max_pixels=side**2 * 64
        ),
        tokenizer=tok,
        video_processor=video_cls(patch_size=patch, merge_size=merge, temporal_patch_size=2),
        chat_template=tok.chat_template,
    ).save_pretrained(path)
    return Path(path)
