"""Typed errors. Each carries the CLI exit code that reports it (2 input, 3 model, 4 target)."""

from __future__ import annotations


class LassoError(Exception):
    """Base of every error Lasso raises on purpose. `str(err)` is a one-line message for users."""

    exit_code = 1


class InvalidInputError(LassoError, ValueError):
    """Something the user gave is unusable: a path, an option, an instruction."""

    exit_code = 2


class InvalidImageError(InvalidInputError):
    """The image is missing, unreadable, corrupt or too large."""


class ImageTooLargeError(InvalidImageError):
    """The image has more pixels than LASSO_MAX_PIXELS (a decompression-bomb guard); HTTP 413."""


class UnreadableImageError(InvalidImageError):
    """The bytes are not an image Pillow can decode (unknown format, corrupt, truncated); HTTP 415."""


class InvalidInstructionError(InvalidInputError):
    """The instruction is empty or asks for nothing Lasso can do."""


class ModelUnavailableError(LassoError):
    """A model could not be loaded (not cached while offline, bad id or path, broken files)."""

    exit_code = 3


class TargetNotFoundError(LassoError):
    """The object the instruction names is not in the image; nothing was painted."""

    exit_code = 4

    def __init__(self, target: str, detail: str = ""):
        self.target = target
        msg = f"could not find {target!r} in the image"
        super().__init__(f"{msg}: {detail}" if detail else msg)
