"""What the inpainting model is shown: a crop around the mask, at its native resolution.

One function for inference (`Inpainter.execute`) and fine-tuning (`lasso train`), so a LoRA learns
on exactly the inputs it is later run on: the mask's box grown by a context margin (the whole
image for style and background edits), resized with its aspect ratio kept to about native x native
pixels, each side a multiple of 8 (docs/models.md: "never stretch a non-square photo to 512x512").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..imaging.arrays import crop_window, model_size, resize_mask, resize_rgb


@dataclass(frozen=True)
class InpaintCrop:
    window: tuple[int, int, int, int]  # XYXY pixels of the original image (exclusive right/bottom)
    size: tuple[int, int]  # (width, height) the model runs at
    image: np.ndarray  # RGB uint8, the crop resized to `size`
    mask: np.ndarray  # bool, the crop's region resized to `size`

    def resized(self, other: np.ndarray) -> np.ndarray:
        """Another RGB image of the original's size (a training target), cropped and resized alike."""
        x0, y0, x1, y1 = self.window
        return resize_rgb(other[y0:y1, x0:x1], self.size)


def prepare_crop(image: np.ndarray, region: np.ndarray, native: int, whole: bool = False) -> InpaintCrop:
    """The crop of an RGB uint8 HxWx3 image around a bool HxW region that the inpainter runs on."""
    h, w = region.shape
    window = (0, 0, w, h) if whole else crop_window(region, min_side=native // 4)
    x0, y0, x1, y1 = window
    size = model_size(x1 - x0, y1 - y0, native, multiple=8)
    return InpaintCrop(window, size, resize_rgb(image[y0:y1, x0:x1], size), resize_mask(region[y0:y1, x0:x1], size))
