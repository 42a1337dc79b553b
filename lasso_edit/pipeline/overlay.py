"""Draw what Lasso found over the image: each edit's mask tinted, its boxes outlined and numbered;
where the VLM's attention was read, its heatmap underneath and SAM's point prompts on top
(green: on the object, red: not)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .result import EditResult

PALETTE = [(255, 64, 64), (64, 160, 255), (64, 220, 96), (255, 200, 0), (200, 80, 255), (0, 220, 220)]
POINT_COLORS = {1: (40, 220, 80), 0: (255, 50, 50)}


def heat_colors(heat: np.ndarray) -> np.ndarray:
    """float HxW in [0, 1] -> RGB uint8 HxWx3 through OpenCV's perceptual Turbo colour map."""
    import cv2

    return cv2.applyColorMap(np.round(np.clip(heat, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_TURBO)[:, :, ::-1]


def blend_heat(rgb: np.ndarray, heat: np.ndarray, opacity: float = 0.6) -> np.ndarray:
    """The heatmap over the image, more opaque where it is hotter: float32 HxWx3."""
    a = (opacity * (0.25 + 0.75 * np.clip(heat, 0, 1)))[:, :, None]
    return rgb.astype(np.float32) * (1 - a) + heat_colors(heat).astype(np.float32) * a


def draw_overlay(rgb: np.ndarray, result: EditResult, opacity: float = 0.45) -> Image.Image:
    """RGB uint8 HxWx3 + a (dry-run) result -> PIL image with heatmaps, tinted masks, numbered boxes
    and point prompts."""
    out: np.ndarray = rgb.astype(np.float32)
    heats = [
        s.grounding.heatmap.full() for s in result.steps if s.grounding is not None and s.grounding.heatmap is not None
    ]
    if heats:
        out = blend_heat(out, np.maximum.reduce(heats))
        opacity *= 0.6  # the masks stay readable over the heat
    for i, step in enumerate(result.steps):
        tint = np.array(PALETTE[i % len(PALETTE)], dtype=np.float32)
        a = (step.alpha * opacity)[:, :, None]
        out = out * (1 - a) + tint * a
    img = Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    width = max(1, round(max(img.size) / 300))
    for i, step in enumerate(result.steps):
        color = PALETTE[i % len(PALETTE)]
        g = step.grounding
        for box in g.boxes if g else []:
            draw.rectangle([round(v) for v in box], outline=color, width=width)
            draw.text((box[0] + 2 * width, box[1] + 2 * width), f"{i + 1} {step.edit.target or ''}", fill=color)
        for (x, y), label in zip(g.points if g else [], g.labels if g else []):
            r = 3 * width + 2
            draw.ellipse(
                [x - r, y - r, x + r, y + r],
                fill=POINT_COLORS.get(label, color),
                outline=(255, 255, 255),
                width=max(1, width // 2),
            )
    return img
