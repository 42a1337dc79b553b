"""What a training run leaves to look at: the validation contact sheet and the loss curve."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image


def contact_sheet(
    rows: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], captions: list[str], cell: int = 256
) -> Image.Image:
    """A PIL sheet: per row the source with its mask tinted, the target, the output (each fitted in
    a `cell`-wide column, the row as tall as its pictures)."""
    from PIL import Image, ImageDraw

    from ..imaging.arrays import resize_rgb

    def fit(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        s = cell / max(h, w)
        return resize_rgb(img, (max(1, round(w * s)), max(1, round(h * s))))

    cells = []
    for src, mask, target, out in rows:
        tinted = np.where(mask[:, :, None], (0.5 * src + 0.5 * np.array([255, 61, 110])).astype(np.uint8), src)
        cells.append([fit(img) for img in (tinted, target, out)])
    heights = [max(c.shape[0] for c in row) + 18 for row in cells]
    sheet = Image.new("RGB", (3 * cell, max(1, sum(heights))), "white")
    draw = ImageDraw.Draw(sheet)
    y = 0
    for row, height, caption in zip(cells, heights, captions):
        draw.text((4, y + 3), f"{caption[:80]}  |  target  |  Lasso", fill=(0, 0, 0))
        for k, img in enumerate(row):
            sheet.paste(Image.fromarray(img), (k * cell, y + 18))
        y += height
    return sheet


def plot_losses(losses: list, path: Path) -> Path | None:
    """loss.png: each term against the step, with a moving average. Skipped without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    if not losses:
        return None
    steps = [x.step for x in losses]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for name, color in (
        ("loss", "black"),
        ("fidelity", "tab:blue"),
        ("preservation", "tab:green"),
        ("clip", "tab:purple"),
    ):
        ys = [getattr(x, name) for x in losses]
        pts = [(s, y) for s, y in zip(steps, ys) if y is not None]
        if not pts:
            continue
        xs, vs = zip(*pts)
        ax.plot(xs, vs, color=color, alpha=0.25, linewidth=0.8)
        k = max(1, len(vs) // 20)
        smooth = np.convolve(vs, np.ones(k) / k, mode="valid")
        ax.plot(xs[k - 1 :], smooth, color=color, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
