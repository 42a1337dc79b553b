"""CLIP for the instruction-alignment term of the edit loss (loss.clip_direction_loss)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class ClipEmbedder:
    """CLIP image and text embeddings, differentiable in the image (for the alignment term)."""

    def __init__(self, model_id: str, device: torch.device | str) -> None:
        import transformers

        from ..core.loading import load

        model: Any = load("CLIP", model_id, transformers.CLIPModel.from_pretrained)  # (transformers types .to oddly)
        self.model = model.to(device).eval()
        self.model.requires_grad_(False)
        self.processor = load("CLIP", model_id, transformers.CLIPProcessor.from_pretrained)
        ip = self.processor.image_processor
        self.size = int(ip.crop_size["height"] if isinstance(ip.crop_size, dict) else ip.crop_size.height)
        self.mean, self.std = ip.image_mean, ip.image_std
        self.device = device

    def image(self, rgb01: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W in [0, 1] -> B x D: resized (bilinear) to CLIP's square and normalised."""
        import torch
        import torch.nn.functional as F

        x = F.interpolate(rgb01.float(), size=(self.size, self.size), mode="bilinear", align_corners=False)
        mean = torch.tensor(self.mean, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, 3, 1, 1)
        out = self.model.get_image_features(pixel_values=(x - mean) / std)
        return getattr(out, "pooler_output", out)

    def text(self, texts: list[str]) -> torch.Tensor:
        tok = self.processor.tokenizer(texts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        out = self.model.get_text_features(**tok)
        return getattr(out, "pooler_output", out)
