"""What a painter is: a generative model that repaints the masked part of a crop.

The `inpaint` executor (edit/inpaint.py) does everything around the painter that keeps Lasso's
guarantee, the same for every painter: the crop around the mask at the painter's native size
(edit/prepare.py), the caption prompt, the check of the step count, the resize back and the
paste; the editor then composites through the feathered mask, so no painter can change a pixel
outside it. A painter only paints: `paint(image, mask, request)` at the crop's size.

A painter declares what it reads and how it is driven, so the executor and the surfaces can ask:
- `native`: the side, in pixels, it was trained at (crops are sized to about native x native);
- `prompting`: "caption" (a description of the result: Stable Diffusion) or "instruction" (the
  user's words: an instruction editor); the request carries both;
- `guidance`: "cfg" (classifier-free guidance, a scale > 1 runs two passes a step) or "distilled"
  (one pass; the scale is an input of the model);
- `max_steps()`: the most steps its scheduler runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class PaintRequest:
    """What to paint: both prompts, the user's instruction, and how long and how strongly."""

    prompt: str  # a caption of the result ("a red car, photo")
    negative: str  # what to avoid, for painters with a negative prompt
    instruction: str  # the user's words ("make the car red"), for instruction-following painters
    action: str  # the edit's action ("recolor", "remove", ...)
    steps: int
    guidance: float
    strength: float = 1.0  # 1: repaint from noise; below: keep that much of the crop (style edits)
    seed: int = 0
    on_step: Callable[[int, int], None] | None = None  # progress: (step, total)


class Painter:
    """The base of every painter (edit/painters/__init__.py lists them by name in PAINTERS)."""

    name = ""  # its key in PAINTERS (what --inpainter NAME says)
    # The diffusers pipeline class it loads, as model_index.json names it ("" for a painter that
    # loads no diffusers checkpoint), and base pipelines of the same weights, whose checkpoints
    # diffusers loads as the inpainting one (a checkpoint naming any of these is this painter's).
    pipeline = ""
    base_pipelines: tuple[str, ...] = ()
    # Pipelines of other painters' checkpoints this one also loads when it is named (--inpainter
    # NAME:CHECKPOINT), without claiming them when it is not.
    reads: tuple[str, ...] = ()
    checkpoint: str | None = None  # the checkpoint `--inpainter NAME` loads (a Hub id); None: it needs none
    prompting = "caption"  # or "instruction"
    guidance = "cfg"  # or "distilled"
    native = 512
    # Its own step count and guidance scale, which replace a preset's (chosen for Stable Diffusion)
    # unless the user gives them; None: the preset's.
    default_steps: int | None = None
    default_guidance: float | None = None

    @classmethod
    def loads(cls, pipeline_class: str) -> bool:
        """True when a checkpoint whose model_index.json names `pipeline_class` is this painter's."""
        return bool(pipeline_class) and pipeline_class in (cls.pipeline, *cls.base_pipelines)

    def max_steps(self) -> int:
        return 1000

    @classmethod
    def tiny_checkpoint(cls, folder: Path) -> Path:
        """A tiny random checkpoint of this painter's kind in `folder`, built from a config and
        saved as its real ones are (the contract test in tests/test_contracts.py loads it)."""
        raise NotImplementedError(f"{cls.__name__} has no tiny checkpoint to test it with")

    def paint(self, image: np.ndarray, mask: np.ndarray, request: PaintRequest) -> np.ndarray:
        """The crop (RGB uint8 HxWx3) with `mask` (bool HxW) repainted, at the same size."""
        raise NotImplementedError

    def compile(self) -> None:
        """torch.compile what is worth compiling (opt-in: minutes of warm-up)."""
