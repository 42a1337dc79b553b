"""`EditorConfig`: everything an Editor is built from, in one frozen object.

Every surface collects its options into one of these and passes it on whole: `lasso edit`,
`lasso plan`, `lasso batch` (and each Ray worker it starts), `lasso serve` (and each Ray Serve
replica) and the Python API (`Editor.from_preset(...)` builds one from its keywords). So an option
added here reaches every surface without being threaded through each layer by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class EditorConfig:
    preset: Any = "balanced"  # a preset's name (presets.py) or a Preset
    device: str | None = None  # None: CUDA when there is one, else the CPU
    dtype: str | None = None  # None: fp16/bf16 on CUDA, fp32 elsewhere
    vlm: str | None = None  # the preset's models overridden: a Hub id, a local folder ...
    segmenter: str | None = None
    inpainter: str | None = None
    detector: str | None = None
    parser: str | None = None  # registry.PARSERS; None: the preset's
    grounder: str | None = None  # registry.GROUNDERS; None: the preset's
    box_threshold: float | None = None  # None: the preset's detector's
    recolor: str = "texture"  # "texture" (deterministic) or "inpaint"
    compile: bool = False
    low_vram: bool = False
    overlap: bool = False
    deepcache: int = 0
    paint: bool = True  # False: plans and masks only, no inpainting model needed
    optional: tuple[str, ...] = ()  # more of the preset's models to offer when they can be had
    attention: Any = None  # ground/attention.py's AttentionSettings
    lora: str | None = None  # a LoRA of your own, fused into the inpainter
    lora_scale: float | None = None
    vlm_api_key: str | None = field(default=None, repr=False)  # for an openai:MODEL@URL VLM

    def replace(self, **changes: Any) -> EditorConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict (what Ray ships to its workers and replicas)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EditorConfig:
        """A config from a dict of its fields; an unknown key is an error (a typo is not an option)."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TypeError(f"unknown editor options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**{**d, "optional": tuple(d.get("optional", ()))})


__all__ = ["EditorConfig"]
