"""The open-vocabulary detector stage."""

import torch


def test_detector_heads_run_in_float32(tiny_dir):
    from lasso_edit.ground.detector import Detector

    det = Detector.from_pretrained(str(tiny_dir / "detector"), autocast=True)
    head = det.model.class_head
    feats = torch.randn(1, 16, det.model.config.vision_config.hidden_size).bfloat16()
    queries = torch.randn(1, 1, det.model.config.text_config.projection_dim if hasattr(
        det.model.config.text_config, "projection_dim") else det.model.config.projection_dim).bfloat16()
    logits = head(feats, queries, torch.ones(1, 1))[0]
    assert logits.dtype == torch.float32
