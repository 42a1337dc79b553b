"""The interface of each stage, as Protocols, and what a model loader is given.

The editor's steps (editor.py, docs/design.md): 1 check inputs, 2 parse, 3 ground, 4 segment,
5 refine, 6 execute and composite, 7 assemble in the input's mode. registry.py names the classes
that do 2, 3 and 6 (and the model stages behind them); 4 is SAM (segment/sam.py). A stage class
declares `needs`, the model stages it uses ("vlm", "segmenter", "inpainter", "detector"), and
builds itself with `create(models)`, where `models(name)` returns that model stage, loaded once.
A model stage's class loads it with `build(path, options)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from .plan import Edit, EditPlan, Grounding, Segmentation

Models = Callable[[str], Any]  # model stage name -> the loaded stage (the editor loads it once)


class Parser(Protocol):
    needs: ClassVar[tuple[str, ...]]

    @classmethod
    def create(cls, models: Models) -> Parser: ...

    def parse(self, image: np.ndarray, instruction: str) -> EditPlan:
        """What the instruction asks of this image (RGB uint8 HxWx3). A parser may also take a keyword
        `context` (a line saying what the session's last edit did, for an instruction that leans on
        it); the editor passes it only to parsers whose `parse` names it."""
        ...


class Grounder(Protocol):
    needs: ClassVar[tuple[str, ...]]

    @classmethod
    def create(cls, models: Models, threshold: float) -> Grounder: ...

    def ground(self, image: np.ndarray, edit: Edit) -> Grounding:
        """Boxes (XYXY pixels of `image`) of the edit's target; raises TargetNotFoundError."""
        ...


class Segmenter(Protocol):
    def segment(self, image: np.ndarray, grounding: Grounding) -> Segmentation:
        """A bool HxW mask of what the boxes hold. A segmenter that also takes a third argument,
        a `Correction` (points with labels, a candidate index), gets the person's fixes; one that
        does not still serves every uncorrected edit."""
        ...


class Executor(Protocol):
    needs: ClassVar[tuple[str, ...]]

    @classmethod
    def create(cls, models: Models) -> Executor: ...

    def execute(self, image: np.ndarray, region: np.ndarray, edit: Edit, settings: Any) -> np.ndarray:
        """An edited copy of `image`; only pixels where `region` is True matter (edit/base.py)."""
        ...


@dataclass(frozen=True)
class LoadOptions:
    """What every model loader is given; each takes what applies to it."""

    device: str = "cpu"
    dtype: Any = None  # a torch dtype
    dtype_asked: bool = False  # the user named the dtype (`--dtype`): kept as named, never a preset's CPU choice
    compile: bool = False
    low_vram: bool = False
    deepcache: int = 0
    lora: str | None = None  # the inpainter's few-step LoRA (fast preset)
    adapter: str | None = None  # a LoRA of your own (`lasso train`), fused after it
    adapter_scale: float = 1.0
    vlm_api_key: str | None = field(default=None, repr=False)  # for an `openai:MODEL@URL` VLM (default: OPENAI_API_KEY)
    # for an `openai:MODEL@URL` painter (default: OPENAI_API_KEY)
    inpainter_api_key: str | None = field(default=None, repr=False)
    preset: Any = None  # the Preset: scheduler, steps, guidance, guidance_end, eta


class ModelStage(Protocol):
    @classmethod
    def build(cls, path: str, options: LoadOptions) -> Any:
        """Load the model at `path` (a local folder or Hub id) for `options`."""
        ...
