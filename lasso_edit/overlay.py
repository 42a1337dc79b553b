"""Draw what Lasso found over the image: each edit's mask tinted, its boxes outlined and numbered."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .plan import EditResult

PALETTE = [(255, 64, 64), (64, 160, 255), (64, 220, 96), (255, 200, 0), (200, 80, 255), (0, 220, 220)]


def draw_overlay(rgb: np.ndarray, result: EditResult, opacity: float = 0.45) -> Image.Image:
    """RGB uint8 HxWx3 + a (dry-run) result -> PIL image with tinted masks and numbered boxes."""
    out = rgb.astype(np.float32)
    for i, step in enumerate(result.steps):
        color = np.array(PALETTE[i % len(PALETTE)], dtype=np.float32)
        a = (step.alpha * opacity)[:, :, None]
        out = out * (1 - a) + color * a
    img = Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    width = max(1, round(max(img.size) / 300))
    for i, step in enumerate(result.steps):
        color = PALETTE[i % len(PALETTE)]
        g = step.grounding
        for box in (g.boxes if g else []):
            draw.rectangle([round(v) for v in box], outline=color, width=width)
            draw.text((box[0] + 2 * width, box[1] + 2 * width), f"{i + 1} {step.edit.target or ''}", fill=color)
    return img
