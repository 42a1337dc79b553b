"""The LLaVA planner: a LLaVA-family model reads the image and the instruction and answers a plan
(the asking, constraining and re-asking: local.py, loop.py).

The model class is picked from the checkpoint's config (`llava`, `llava_next`,
`llava_onevision`). The prompt goes through the processor's chat template (docs/models.md: "Use the
processor's chat template"). Its boxes are fractions of the frame its processor shows the model
(pad, resize, centre crop: geometry.VisionFrame).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..imaging.arrays import shrink
from ..imaging.geometry import VisionFrame, size_field
from .local import LocalVLM

VLM_CLASSES = {
    "llava": "LlavaForConditionalGeneration",
    "llava_next": "LlavaNextForConditionalGeneration",
    "llava_onevision": "LlavaOnevisionForConditionalGeneration",
}


def _longest_target(ip: Any) -> int:
    """The largest side, in pixels, that an image processor resizes to (its size, crop and anyres grid)."""
    sides: list[int] = []
    for attr in ("size", "crop_size"):
        v = getattr(ip, attr, None)
        vals = (size_field(v, k) for k in ("shortest_edge", "longest_edge", "height", "width"))
        sides += [int(x) for x in vals if isinstance(x, (int, float))]
    for pin in getattr(ip, "image_grid_pinpoints", None) or []:
        sides += [int(x) for x in pin]
    return max(sides) if sides else 1024


class LlavaParser(LocalVLM):
    """LLaVA / LLaVA-NeXT / LLaVA-OneVision through transformers -> EditPlan."""

    CLASSES = VLM_CLASSES
    family = "LLaVA-family"

    def shrink(self, image: np.ndarray) -> np.ndarray:
        return shrink(image, max_short=2 * _longest_target(self.processor.image_processor))

    def frame(self, image: np.ndarray) -> VisionFrame:
        return VisionFrame.from_image_processor(self.processor.image_processor, image.shape[1], image.shape[0])

    def token_places(
        self, inputs: dict, small_hw: tuple[int, int], orig_hw: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from .llava_attention import token_places

        return token_places(self, inputs, small_hw, orig_hw)
