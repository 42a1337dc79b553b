"""Typed errors. Each carries the CLI exit code that reports it (2 input, 3 model or environment, 4 target)."""

from __future__ import annotations

import errno
import re
from pathlib import Path


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


class UnsupportedEditError(InvalidInstructionError):
    """A part of the instruction is something Lasso does not do (rotate, crop, upscale to 4K, sharpen,
    ...) or could not read, so none of it was done: a partly possible instruction is not made in part
    without being asked. `parts` holds those parts in the instruction's own words. Asked to skip them
    (`--skip-unknown`, `skip_unknown=True`), Lasso leaves them out with a warning and makes the rest."""

    def __init__(self, message: str, parts: list[str] | None = None):
        super().__init__(message)
        self.parts = list(parts or [])


class ModelUnavailableError(LassoError):
    """A model could not be loaded (not cached while offline, bad id or path, broken files)."""

    exit_code = 3


class StorageError(LassoError):
    """The machine, not the input: no space left on a disk, a read-only or over-quota folder (exit
    code 3, as for a model that cannot be had; HTTP 507). Nothing that was there before is lost."""

    exit_code = 3


STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on",
    errno.EDQUOT: "the disk quota is used up on",
    errno.EROFS: "read-only file system at",
}


def storage_error(e: BaseException, where: object = None) -> StorageError | None:
    """The StorageError an OSError stands for (a full disk, a quota, a read-only disk), naming
    `where` (a path; default: the error's own file name), or None for any other error."""
    if not isinstance(e, OSError) or e.errno not in STORAGE_ERRNOS:
        return None
    place = where if where is not None else (e.filename or "the disk")
    return StorageError(
        f"{STORAGE_ERRNOS[e.errno]} {place}: free some space (or choose another folder) and "
        "run it again; nothing that was there before was changed"
    )


def sentence(e: BaseException) -> tuple[str, int]:
    """What a surface says for `e`, and its exit code: Lasso's own sentence for its errors (and a full
    disk where a library wrote), a hint for running out of memory, else an internal error naming the
    exception. The CLI prints it as `error: ...`; the MCP server answers it as a tool error."""
    e = storage_error(e) or e
    if isinstance(e, LassoError):
        return str(e), e.exit_code
    if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
        return f"out of memory ({type(e).__name__}); try --preset fast, --device cpu or a smaller image", 1
    first = str(e).splitlines()[0] if str(e) else ""
    return f"internal error: {type(e).__name__}: {first} (rerun with --debug)", 1


class TargetNotFoundError(LassoError):
    """The object the instruction names is not in the image; nothing was painted."""

    exit_code = 4

    def __init__(self, target: str, detail: str = ""):
        self.target = target
        msg = f"could not find {target!r} in the image"
        super().__init__(f"{msg}: {detail}" if detail else msg)


# storage_error's sentence names the folder that filled up; under the server's own folder plain
# scrubbing made it "no space left on the uploaded image: ...", which it is not: it is the server's disk.
_FULL_DISK = re.compile("(" + "|".join(re.escape(w) for w in STORAGE_ERRNOS.values()) + r") the uploaded image\b")


class Scrubber:
    """A server's own paths (temporary uploads, session folders) are no business of a client:
    "image /data/uploads/upload-x is over ..." reads "the uploaded image is over ...", and a full
    disk under its folder reads "no space left on the server's disk". Every surface that answers
    someone else (the HTTP API and its job records, `lasso mcp`) passes its messages through one."""

    def __init__(self, data: Path):
        self.paths = re.compile(r"(?:\b(?:the )?(?:image|file) )?" + re.escape(str(data)) + r"[^\s:;,)'\"]*")

    def __call__(self, detail: str) -> str:
        return _FULL_DISK.sub(r"\1 the server's disk", self.paths.sub("the uploaded image", detail))
