"""Output paths checked before any work (format, mode, size, not an input, a writable folder) and
written atomically: a temporary file renamed into place, every file of an edit together."""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from PIL import Image

from ..core.errors import InvalidInputError, storage_error

# The suffix a file of each decoded format is stored under (what browsers and viewers expect).
_SUFFIX = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "GIF": ".gif",
    "BMP": ".bmp",
    "MPO": ".jpg",
    "JPEG2000": ".jp2",
}


def suffix_for(fmt: str | None) -> str:
    """The file suffix for a decoded format ("JPEG" -> ".jpg"), from what Pillow decoded, never from
    a name a client chose: an upload named photo.html is stored as .png if it is a PNG. ".img" for a
    format with no registered suffix."""
    if fmt in _SUFFIX:
        return _SUFFIX[fmt]
    Image.init()
    found = sorted(ext for ext, f in Image.registered_extensions().items() if f == fmt)
    return found[0] if found else ".img"


def media_type(fmt: str | None) -> str:
    """The MIME type of a decoded format ("image/png"); application/octet-stream for anything that
    is not an image type (so nothing stored is ever served as a type a browser would run)."""
    Image.init()
    mime = Image.MIME.get(fmt or "", "")
    return mime if mime.startswith("image/") and "svg" not in mime and "xml" not in mime else "application/octet-stream"


def check_output_path(path: str | os.PathLike, *inputs: str | os.PathLike | None) -> Path:
    """Validate an output path before any work: a known image suffix, a writable folder, not an input."""
    path = Path(path)
    ext = path.suffix.lower()
    Image.init()
    if ext not in Image.registered_extensions():
        raise InvalidInputError(
            f"cannot tell the image format from the output name {str(path)!r}; use .png, .jpg or .webp"
        )
    _check_not_input(path, *inputs)
    _check_writable_dir(path)
    return path


def check_side_output(path: str | os.PathLike, *inputs: str | os.PathLike | None) -> Path:
    path = Path(path)
    if path.is_dir():
        raise InvalidInputError(f"output {str(path)!r} is a folder; name a file")
    _check_not_input(path, *inputs)
    _check_writable_dir(path)
    return path


LOSSLESS_MASK_FORMATS = {"PNG", "TIFF", "BMP", "WEBP", "TGA", "PPM"}  # WebP is written lossless here


def check_mask_path(path: str | os.PathLike, *inputs: str | os.PathLike | None) -> Path:
    """A --mask-out path: a side output whose format stores 0..255 exactly (never JPEG or a palette)."""
    path = check_side_output(path, *inputs)
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt not in LOSSLESS_MASK_FORMATS:
        raise InvalidInputError(
            f"the mask must be written losslessly, and {path.suffix or 'no suffix'!r} is "
            f"{'lossy or a palette format' if fmt else 'not an image format'}: use .png or .tif"
        )
    return path


def _check_distinct(*paths: str | os.PathLike | None) -> None:
    """No two outputs may name the same file (the later would overwrite the earlier)."""
    seen: dict[Path, str] = {}
    for p in paths:
        if p is None:
            continue
        key = Path(p).resolve()
        if key in seen:
            raise InvalidInputError(f"two outputs name the same file {str(p)!r}; give each its own")
        seen[key] = str(p)


def format_of(path: str | os.PathLike) -> str | None:
    Image.init()
    return Image.registered_extensions().get(Path(path).suffix.lower())


def writable_mode(fmt: str, mode: str) -> str | None:
    """The mode to save a `mode` image as in format `fmt`: `mode` itself when Pillow writes it, else the
    closest that it writes (alpha kept where it can be); None when the format takes none of them.
    Found by saving a 1x1 image, so it is exactly what this Pillow can do."""
    alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La")
    for m in dict.fromkeys([mode, "RGBA" if alpha else "RGB", "RGB", "L"]):
        try:
            Image.new(m, (1, 1)).save(io.BytesIO(), format=fmt)
            return m
        except (OSError, KeyError, ValueError, TypeError):
            continue
    return None


def check_outputs(
    output: str | os.PathLike | None,
    mask_out: str | os.PathLike | None,
    plan_out: str | os.PathLike | None,
    *inputs: str | os.PathLike | None,
    mode: str | None = None,
    size: tuple[int, int] | None = None,
) -> None:
    """Every output of one run, before any work: formats, folders, not an input, no two the same.
    `mode` and `size` (w, h): what the output will have, checked against what its format can store."""
    if output is not None:
        check_output_path(output, *inputs)
        fmt = format_of(output)
        if fmt not in Image.SAVE or (mode is not None and writable_mode(fmt, mode) is None):
            raise InvalidInputError(f"Pillow cannot write {fmt} files like {str(output)!r}; use .png, .tif or .webp")
        if size is not None:
            check_size_fits(fmt, size)
    if mask_out is not None:
        check_mask_path(mask_out, *inputs)
    if plan_out is not None:
        check_side_output(plan_out, *inputs)
    _check_distinct(output, mask_out, plan_out)


def check_size_fits(fmt: str, size: tuple[int, int]) -> None:
    """Formats with a size limit refuse rather than shrink (Pillow scales an ICO down to 256 silently)."""
    if fmt == "ICO" and max(size) > 256:
        raise InvalidInputError(
            f"ICO holds at most 256x256 pixels and the image is {size[0]}x{size[1]}: write .png, or resize it first"
        )


def _check_not_input(path: Path, *inputs: str | os.PathLike | None) -> None:
    for inp in inputs:
        if inp is None:
            continue
        inp = Path(inp)
        if path.resolve() == inp.resolve() or (path.exists() and inp.exists() and os.path.samefile(path, inp)):
            raise InvalidInputError(f"output {str(path)!r} is the input image; Lasso never overwrites its input")


def _check_writable_dir(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInputError(f"folder for output {str(path)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise InvalidInputError(f"cannot write to folder {str(parent)!r}")


class OutputBatch:
    """Write several outputs to temporary files in their folders, then rename them all at the end.

    Used as a context manager: if anything fails before the end (a write, a later output, the
    user's Ctrl-C), the temporary files are removed and every file that was there before is left
    exactly as it was. Files get the mode a plain open() would give (or the replaced file's).
    """

    def __init__(self) -> None:
        self._pending: list[tuple[str, Path]] = []

    def write(self, path: str | os.PathLike, write: Callable[[io.BufferedWriter], object]) -> None:
        """Write `path` through `write(f)` into a temporary file beside it. A full disk is a
        StorageError naming the folder (exit code 3), the temporary file removed."""
        path = Path(path)
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
            self._pending.append((tmp, path))
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else default_file_mode())  # mkstemp: 0600
            with os.fdopen(fd, "wb") as f:
                write(f)
        except OSError as e:
            full = storage_error(e, path.parent)
            if full is None:
                raise
            raise full from None

    def pending(self, path: str | os.PathLike) -> Path | None:
        """The temporary file `path` was written to, before the batch commits (to read it back)."""
        for tmp, target in self._pending:
            if target == Path(path):
                return Path(tmp)
        return None

    def commit(self) -> None:
        for tmp, path in self._pending:
            os.replace(tmp, path)
        self._pending.clear()

    def discard(self) -> None:
        for tmp, _ in self._pending:
            if os.path.exists(tmp):
                os.unlink(tmp)
        self._pending.clear()

    def __enter__(self) -> OutputBatch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def _umask() -> int:
    """The process's umask (read by setting it, then set back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_file_mode() -> int:
    """The mode open() gives a new file (0666 less the umask), for files a library wrote 0600."""
    return 0o666 & ~_umask()


def write_atomic(path: str | os.PathLike, write: Callable[[io.BufferedWriter], object]) -> None:
    """Write through a temporary file in the same folder, then rename: no half-written output."""
    with OutputBatch() as batch:
        batch.write(path, write)
