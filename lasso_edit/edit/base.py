"""Step 6, execute: the interface every executor implements, and the settings they share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..core.plan import Edit


@dataclass
class ExecSettings:
    seed: int = 0
    steps: int | None = None  # None: the preset's default
    guidance: float | None = None  # classifier-free guidance scale; None: the preset's default
    strength: float = 0.65  # style edits: how far from the original (0..1)
    on_step: Callable[[int, int], None] | None = None  # progress: (step, total)
    instruction: str = ""  # the user's words, for painters that read instructions (edit/painters/)


class Executor(Protocol):
    example: Edit  # an edit it makes, run by the contract test (tests/test_contracts.py) on the tiny models

    def execute(self, image: np.ndarray, region: np.ndarray, edit: Edit, settings: ExecSettings) -> np.ndarray:
        """Return an edited copy of `image` (RGB uint8 HxWx3). Only pixels where `region` (bool HxW)
        is True matter: the editor composites the result onto the original through the alpha."""
        ...
