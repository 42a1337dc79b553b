"""Lasso: edit a photo from a plain-language instruction.

    from lasso_edit import Editor
    editor = Editor.from_preset("balanced")
    result = editor("photo.jpg", "make the car red", seed=7)
    result.image.save("out.png")

Importing this package is cheap: torch, transformers and diffusers load when a model does.
"""

from .core.errors import (
    InvalidImageError,
    InvalidInputError,
    InvalidInstructionError,
    LassoError,
    ModelUnavailableError,
    TargetNotFoundError,
    UnsupportedEditError,
)
from .core.plan import Action, Correction, Edit, EditPlan, Grounding, Segmentation
from .core.presets import PRESETS, Preset
from .imaging import LoadedImage, load_image, save_image
from .pipeline.editor import Editor
from .pipeline.result import EditResult

__version__ = "0.1.0"
__all__ = [
    "Action",
    "Correction",
    "Edit",
    "EditPlan",
    "EditResult",
    "Editor",
    "Grounding",
    "InvalidImageError",
    "InvalidInputError",
    "InvalidInstructionError",
    "LassoError",
    "LoadedImage",
    "ModelUnavailableError",
    "PRESETS",
    "Preset",
    "Segmentation",
    "TargetNotFoundError",
    "UnsupportedEditError",
    "load_image",
    "save_image",
]
