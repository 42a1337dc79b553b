"""A tiny random SAM 3 (`tiny:sam3`): `Sam3Model` with a toy ViT, DETR encoder and decoder (5
queries), mask decoder and CLIP text tower, its `Sam3Processor` on a 112-px square and the
byte-level CLIP tokenizer; shapes after transformers' own tests (tests/models/sam3)."""

from __future__ import annotations

from pathlib import Path

from .tiny import _clip_special_ids, _clip_vocab, clip_tokenizer


def build_tiny_sam3(path: Path) -> Path:
    import torch
    import transformers as t
    from transformers.models.sam3 import configuration_sam3 as c

    torch.manual_seed(0)
    backbone = c.Sam3ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=112,
        patch_size=14,
        window_size=4,
        global_attn_indexes=[0, 1],
    )
    config = c.Sam3Config(
        vision_config=c.Sam3VisionConfig(backbone_config=backbone, fpn_hidden_size=32, scale_factors=[2.0, 1.0]),
        text_config=dict(
            vocab_size=len(_clip_vocab()),
            hidden_size=32,
            intermediate_size=64,
            projection_dim=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=32,
            hidden_act="gelu",
            **_clip_special_ids(),
        ),
        geometry_encoder_config=c.Sam3GeometryEncoderConfig(
            hidden_size=32,
            num_layers=1,
            num_attention_heads=4,
            intermediate_size=64,
            mask_fuser_hidden_size=32,
            mask_fuser_num_layers=1,
        ),
        detr_encoder_config=c.Sam3DETREncoderConfig(
            hidden_size=32, num_layers=1, num_attention_heads=4, intermediate_size=64
        ),
        detr_decoder_config=c.Sam3DETRDecoderConfig(
            hidden_size=32, num_layers=1, num_queries=5, num_attention_heads=4, intermediate_size=64
        ),
        mask_decoder_config=c.Sam3MaskDecoderConfig(hidden_size=32, num_upsampling_stages=2),
    )
    t.Sam3Model(config).save_pretrained(path)
    t.Sam3Processor(
        image_processor=t.Sam3ImageProcessor(size={"height": 112, "width": 112}, mask_size={"height": 32, "width": 32}),
        tokenizer=clip_tokenizer(32),
    ).save_pretrained(path)
    return Path(path)
