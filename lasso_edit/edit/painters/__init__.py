"""The painters, by the pipeline class a checkpoint's model_index.json names (`_class_name`).

A new painter is one module here (a `Painter` subclass with `from_pretrained` and `paint`) and a
line in `PAINTERS`. The `inpaint` executor (edit/inpaint.py) picks the painter from the
checkpoint, so presets and `--inpainter` name a checkpoint, never a painter.
"""

from __future__ import annotations

import importlib

from ...errors import ModelUnavailableError
from .base import Painter, PaintRequest

__all__ = ["PAINTERS", "Painter", "PaintRequest", "painter_class"]

PAINTERS = {  # model_index.json's _class_name -> "module:Class"
    "StableDiffusionInpaintPipeline": "lasso_edit.edit.painters.sd:SDPainter",
    "StableDiffusionXLInpaintPipeline": "lasso_edit.edit.painters.sd:SDXLPainter",
    "StableDiffusion3InpaintPipeline": "lasso_edit.edit.painters.flow:SD3Painter",
    "FluxFillPipeline": "lasso_edit.edit.painters.flow:FluxFillPainter",
    "FluxKontextInpaintPipeline": "lasso_edit.edit.painters.flow:FluxKontextPainter",
    "Flux2KleinInpaintPipeline": "lasso_edit.edit.painters.flow:Flux2KleinPainter",
    "QwenImageEditInpaintPipeline": "lasso_edit.edit.painters.flow:QwenImageEditPainter",
}
# What a base model's checkpoint names, and the inpainting pipeline of the same weights that
# Lasso loads it with (diffusers loads one from the other's folder).
SAME_WEIGHTS = {
    "StableDiffusion3Pipeline": "StableDiffusion3InpaintPipeline",
    "FluxKontextPipeline": "FluxKontextInpaintPipeline",
    "Flux2KleinPipeline": "Flux2KleinInpaintPipeline",
    "QwenImageEditPipeline": "QwenImageEditInpaintPipeline",
}


def painter_class(pipeline_class: str) -> type[Painter]:
    """The painter for a checkpoint whose model_index.json names `pipeline_class`."""
    entry = PAINTERS.get(SAME_WEIGHTS.get(pipeline_class, pipeline_class))
    if (
        entry is None and "StableDiffusion" in pipeline_class and "3" not in pipeline_class
    ):  # a community SD checkpoint's own name
        entry = PAINTERS[
            "StableDiffusionXLInpaintPipeline" if "XL" in pipeline_class else "StableDiffusionInpaintPipeline"
        ]
    if entry is None:
        raise ModelUnavailableError(
            f"no painter runs {pipeline_class or 'this checkpoint'}: Lasso paints with "
            f"{', '.join(PAINTERS)} checkpoints (an inpainting model's folder or Hub id)"
        )
    module, cls = entry.split(":")
    return getattr(importlib.import_module(module), cls)
