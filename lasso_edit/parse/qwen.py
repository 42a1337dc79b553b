"""The Qwen-VL planners: Qwen2.5-VL and Qwen3-VL plan with the same constrained JSON as LLaVA
(local.py), then point: each edit's target is located with the model's own grounding question,
whose `bbox_2d` becomes the edit's VLM box.

Their frames (docs/models.md, "Coordinate frames"):
- the processor resizes the photo itself, keeping its aspect, to sides that are multiples of
  patch x merge (28 for Qwen2.5-VL, 32 for Qwen3-VL) within a pixel budget (`smart_resize`), with
  no crop and no pad: fractions of that frame are fractions of the photo;
- Qwen2.5-VL answers `bbox_2d` in absolute pixels of that resized frame;
- Qwen3-VL answers in thousandths (0-1000) of it.
The plan's own percent box is read through the same identity frame.

The photo is pre-shrunk to at most `PLAN_PIXELS` before the processor sees it: the processors'
own budgets go to 12.8 MP (16k image tokens); planning and pointing need about a megapixel.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from ..core.plan import Box, EditPlan
from ..imaging.arrays import shrink
from ..imaging.geometry import VisionFrame
from .local import LocalVLM

PLAN_PIXELS = 1280 * 28 * 28  # ~1 MP: ~1,280 image tokens for Qwen2.5-VL, ~1,000 for Qwen3-VL
GROUND_PROMPT = "Locate the {phrase} in the image, and output its bbox coordinates in JSON format."
_BBOX = re.compile(r"bbox_2d\W*\[\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)")


class QwenVLParser(LocalVLM):
    """Qwen2.5-VL / Qwen3-VL through transformers -> EditPlan, each target pointed at natively."""

    CLASSES = {
        "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
        "qwen3_vl": "Qwen3VLForConditionalGeneration",
    }
    family = "Qwen-VL"

    @property
    def thousandths(self) -> bool:
        """Whether its boxes are in 0-1000 of the frame (Qwen3-VL) rather than its pixels (Qwen2.5-VL)."""
        return self.model.config.model_type == "qwen3_vl"

    def shrink(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        budget = min(PLAN_PIXELS, _budget(self.processor.image_processor)[1])
        if h * w <= budget:
            return image
        return shrink(image, max_long=max(1, int(max(h, w) * (budget / (h * w)) ** 0.5)))

    def resized(self, hw: tuple[int, int]) -> tuple[int, int]:
        """(height, width) the processor resizes an image of `hw` to: its own `smart_resize`."""
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

        ip = self.processor.image_processor
        lo, hi = _budget(ip)
        return smart_resize(hw[0], hw[1], factor=int(ip.patch_size) * int(ip.merge_size), min_pixels=lo, max_pixels=hi)

    def frame(self, image: np.ndarray) -> VisionFrame:
        return VisionFrame.identity(image.shape[1], image.shape[0])  # a resize, no crop, no pad

    def box_from_answer(self, text: str, image_hw: tuple[int, int], frame_hw: tuple[int, int]) -> Box | None:
        """The first `bbox_2d` of a grounding answer in pixels of the photo (`image_hw`), read in the
        model's frame: thousandths (Qwen3-VL) or pixels of the resized frame `frame_hw` (Qwen2.5-VL).
        None when there is no usable box."""
        m = _BBOX.search(text)
        if m is None:
            return None
        x0, y0, x1, y1 = (float(v) for v in m.groups())
        fh, fw = (1000.0, 1000.0) if self.thousandths else (float(frame_hw[0]), float(frame_hw[1]))
        fx = [min(x0, x1) / fw, min(y0, y1) / fh, max(x0, x1) / fw, max(y0, y1) / fh]
        x0, y0, x1, y1 = (min(1.0, max(0.0, v)) for v in fx)
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            return None
        return VisionFrame.identity(image_hw[1], image_hw[0]).to_pixels((x0, y0, x1, y1))

    def point(self, image: np.ndarray, phrase: str) -> Box | None:
        """Where the model says `phrase` is, asked its own grounding question."""
        answer = self.ask(image, GROUND_PROMPT.format(phrase=phrase), constrained=False)
        return self.box_from_answer(answer, image.shape[:2], self.resized(self.shrink(image).shape[:2]))

    def parse(
        self, image: np.ndarray, instruction: str, context: str | None = None, skip_unknown: bool = False
    ) -> EditPlan:
        plan = super().parse(image, instruction, context, skip_unknown)
        for edit in plan.edits:
            phrase = edit.subject if edit.region == "inverse" else edit.target
            if edit.region == "whole" or not phrase:
                continue
            box = self.point(image, phrase)
            if box is not None:
                edit.box = box
        return plan

    def token_places(
        self, inputs: dict, small_hw: tuple[int, int], orig_hw: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each merged image token covers merge x merge patches of the resized frame, row by row."""
        ip = self.processor.image_processor
        _, gh, gw = (int(v) for v in inputs["image_grid_thw"][0].tolist())
        m = int(ip.merge_size)
        rows, cols = gh // m, gw // m
        r, c = np.divmod(np.arange(rows * cols), cols)
        h, w = orig_hw
        centers = np.stack([(c + 0.5) / cols * w, (r + 0.5) / rows * h], axis=1)
        cells = np.tile([w / cols, h / rows], (rows * cols, 1))
        return centers.astype(np.float32), cells.astype(np.float32), np.ones(rows * cols, dtype=np.int8)


def _budget(ip: Any) -> tuple[int, int]:
    """(min_pixels, max_pixels) of a Qwen-VL image processor (its `size` holds them as edges)."""
    size = getattr(ip, "size", None) or {}
    get = size.get if isinstance(size, dict) else lambda k, d=None: getattr(size, k, d)
    lo = getattr(ip, "min_pixels", None) or get("shortest_edge") or 56 * 56
    hi = getattr(ip, "max_pixels", None) or get("longest_edge") or 28 * 28 * 1280
    return int(lo), int(hi)
