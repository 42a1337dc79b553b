"""Tiny random Qwen2.5-VL and Qwen3-VL checkpoints (`tiny:qwen2.5-vl`, `tiny:qwen3-vl`): the real
model, processor, image processor and video processor classes at toy sizes, Qwen's chat template
and special tokens on a byte-level BPE trained here, saved and loaded back as a user's checkpoint."""

from __future__ import annotations

from pathlib import Path

from .flow import qwen_tokenizer


def _ids(tok) -> dict[str, int]:
    names = {
        "image_token_id": "<|image_pad|>",
        "vision_start_token_id": "<|vision_start|>",
        "vision_end_token_id": "<|vision_end|>",
        "video_token_id": "<|image_pad|>",
    }
    return {k: int(tok.convert_tokens_to_ids(v)) for k, v in names.items()}


def _text(tok, **extra) -> dict:
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
    import torch
    import transformers as t

    torch.manual_seed(0)
    tok = qwen_tokenizer()
    patch, merge = 14, 2
    budget = dict(
        patch_size=patch,
        merge_size=merge,
        temporal_patch_size=2,
        min_pixels=(patch * merge) ** 2 * 4,
        max_pixels=(patch * merge) ** 2 * 64,
    )
    config = t.Qwen2_5_VLConfig(
        text_config=_text(tok, rope_scaling={"mrope_section": [2, 1, 1], "rope_type": "default", "type": "default"}),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=37,
            num_heads=2,
            out_hidden_size=32,
            patch_size=patch,
            spatial_merge_size=merge,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[1],
        ),
        **_ids(tok),
    )
    t.Qwen2_5_VLForConditionalGeneration(config).save_pretrained(path)
    t.Qwen2_5_VLProcessor(
        image_processor=t.Qwen2VLImageProcessor(**budget),
        tokenizer=tok,
        video_processor=t.Qwen2VLVideoProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2),
        chat_template=tok.chat_template,
    ).save_pretrained(path)
    return Path(path)


def build_tiny_qwen3_vl(path: Path) -> Path:
    import torch
    import transformers as t

    torch.manual_seed(0)
    tok = qwen_tokenizer()
    patch, merge = 16, 2
    budget = dict(
        patch_size=patch,
        merge_size=merge,
        temporal_patch_size=2,
        min_pixels=(patch * merge) ** 2 * 4,
        max_pixels=(patch * merge) ** 2 * 64,
    )
    config = t.Qwen3VLConfig(
        text_config=_text(
            tok,
            head_dim=8,
            rope_scaling={"mrope_section": [2, 1, 1], "rope_type": "default", "mrope_interleaved": True},
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=37,
            num_heads=2,
            out_hidden_size=32,
            patch_size=patch,
            spatial_merge_size=merge,
            temporal_patch_size=2,
            num_position_embeddings=64,
            deepstack_visual_indexes=[1],
        ),
        **_ids(tok),
    )
    t.Qwen3VLForConditionalGeneration(config).save_pretrained(path)
    t.Qwen3VLProcessor(
        image_processor=t.Qwen2VLImageProcessor(**budget),
        tokenizer=tok,
        video_processor=t.Qwen3VLVideoProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2),
        chat_template=tok.chat_template,
    ).save_pretrained(path)
    return Path(path)
