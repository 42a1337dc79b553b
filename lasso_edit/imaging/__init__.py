"""Image files, in three parts: decode.py (load: EXIF orientation, modes, 16 bits, limits),
encode.py (restore an edit into the input's mode, save with the input's metadata) and paths.py
(check output paths before any work, write atomically, every file of an edit together).

The array conventions (RGB uint8 HxWx3, bool HxW masks, float32 alpha, XYXY boxes) and every
conversion between them live in arrays.py; this package is where files meet them.
"""

from __future__ import annotations

from .decode import DEFAULT_MAX_PIXELS, LoadedImage, load_image, max_pixels
from .encode import output_mode, restore, save_image
from .paths import (
    LOSSLESS_MASK_FORMATS,
    OutputBatch,
    check_mask_path,
    check_output_path,
    check_outputs,
    check_side_output,
    check_size_fits,
    default_file_mode,
    format_of,
    media_type,
    suffix_for,
    writable_mode,
    write_atomic,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "LOSSLESS_MASK_FORMATS",
    "LoadedImage",
    "OutputBatch",
    "check_mask_path",
    "check_output_path",
    "check_outputs",
    "check_side_output",
    "check_size_fits",
    "default_file_mode",
    "format_of",
    "load_image",
    "max_pixels",
    "media_type",
    "output_mode",
    "restore",
    "save_image",
    "suffix_for",
    "writable_mode",
    "write_atomic",
]
