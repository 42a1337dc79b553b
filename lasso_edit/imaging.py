"""Image files: load (EXIF orientation, modes, 16 bits, limits), restore an edit into the input's
mode, check output paths before any work, save atomically with the input's metadata.

The array conventions (RGB uint8 HxWx3, bool HxW masks, float32 alpha, XYXY boxes) and every
conversion between them live in arrays.py; this module is where files meet them.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
import warnings as _warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import deep
from .arrays import copy_where, mask_bbox
from .errors import ImageTooLargeError, InvalidImageError, InvalidInputError, UnreadableImageError, storage_error

# Larger inputs are refused before decoding (a decompression bomb guard). 24 MP photos are
# routine; 150 MP leaves room for panoramas. Override with LASSO_MAX_PIXELS.
DEFAULT_MAX_PIXELS = 150_000_000
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
# What Pillow's decoders raise on a corrupt or truncated file (a multi-page TIFF cut short raises
# TypeError "Missing dimensions" counting its pages).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, TypeError, KeyError, IndexError, struct.error)


@dataclass
class LoadedImage:
    """A decoded input: the RGB pixels the models see, plus what is needed to save it back as it was."""

    rgb: np.ndarray  # uint8 HxWx3, EXIF orientation applied
    alpha: np.ndarray | None  # uint8 HxW when the input had transparency
    mode: str  # the input's PIL mode ("RGB", "RGBA", "L", "CMYK", "I;16", "P", ...)
    original: Image.Image  # the input, oriented, in its own mode: unchanged pixels are copied from it
    format: str | None = None  # "PNG", "JPEG", ... as decoded
    path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)  # icc_profile / exif to carry to the output
    warnings: list[str] = field(default_factory=list)  # what the user should know about the input
    transposed: bool = False  # EXIF orientation was applied: the pixels are not in the file's own frame
    deep: np.ndarray | None = None  # uint16 HxWx3/4 for 16-bit RGB(A) PNG and TIFF (deep.py); rgb is it rounded

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL counts."""
        return self.rgb.shape[1], self.rgb.shape[0]


def max_pixels() -> int:
    """The pixel limit: LASSO_MAX_PIXELS (a positive whole number, "1e9" allowed) or DEFAULT_MAX_PIXELS."""
    raw = os.environ.get("LASSO_MAX_PIXELS")
    if raw is None or not raw.strip():
        return DEFAULT_MAX_PIXELS
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value == value or value < 1 or value == float("inf"):
        raise InvalidInputError(f"LASSO_MAX_PIXELS must be a positive number of pixels (e.g. 200000000), got {raw!r}")
    return int(value)


def load_image(source: str | os.PathLike | Image.Image | np.ndarray) -> LoadedImage:
    """Decode a path, a PIL image or an array into a `LoadedImage`.

    Any format Pillow reads is accepted. EXIF orientation is honoured; alpha is kept aside;
    grayscale, palette, CMYK and 16-bit images are converted to RGB uint8 for the models while
    the original is kept so that the output can be saved in the input's mode.
    Raises `InvalidImageError` naming the problem.
    """
    path = None
    caught: list = []  # Python warnings Pillow raised while reading (corrupt EXIF): said once, below
    if isinstance(source, np.ndarray):
        img = _array_to_pil(source)
    elif isinstance(source, Image.Image):
        img = source
        try:
            img.load()
        except (ValueError, AssertionError, AttributeError):  # Pillow's ways of saying "closed"
            raise InvalidImageError(
                "the PIL image was closed before use (outside its `with Image.open(...)` "
                "block?): keep it open, call .load() first, or pass the path"
            ) from None
        except OSError as e:
            raise InvalidImageError(f"the PIL image cannot be read: {e}") from None
    elif not isinstance(source, (str, os.PathLike)):
        raise InvalidImageError(f"expected an image path, a PIL image or a uint8 array, got {type(source).__name__}")
    else:
        path = Path(source)
        if not path.exists():
            raise InvalidImageError(f"image not found: {path}")
        if path.is_dir():
            raise InvalidImageError(f"expected an image file, got a folder: {path}")
        if not path.is_file():  # a FIFO, a socket or a device: reading it could block forever
            raise InvalidImageError(f"expected an image file, got a pipe, socket or device: {path}")
        img = _open(path, caught)
    w, h = img.size
    if w * h > max_pixels():
        raise ImageTooLargeError(
            f"image is {w}x{h} = {w * h / 1e6:.0f} MP, over the {max_pixels() / 1e6:.0f} MP limit "
            "(a decompression-bomb guard; raise it with LASSO_MAX_PIXELS)"
        )
    fmt = img.format
    try:  # a truncated multi-page file fails here, counting its pages
        frames = getattr(img, "n_frames", 1)  # before exif_transpose, which returns a single frame
        deep_file = path is not None and deep.is_deep_colour(path, img)
    except _DECODE_ERRORS as e:
        where = f" {path}" if path else ""
        raise UnreadableImageError(f"image{where} is corrupt or truncated: {e}") from None
    warnings = []
    with _warnings.catch_warnings(record=True) as more:
        _warnings.simplefilter("always")
        try:
            img.load()
            orientation = _orientation(img)
            transposed = orientation not in (0, 1)
            img = ImageOps.exif_transpose(img) or img
        except _DECODE_ERRORS as e:
            where = f" {path}" if path else ""
            raise UnreadableImageError(f"image{where} is corrupt or truncated: {e}") from None
        try:
            exif = img.getexif()
        except Exception:  # noqa: BLE001 - a broken EXIF segment must not stop an edit
            exif = None
    if exif is None or any("exif" in str(w.message).lower() for w in caught + more):
        warnings.append("the input's EXIF data is corrupt; it was dropped (the pixels are fine)")
        exif = None
    info: dict[str, Any] = {k: img.info[k] for k in ("icc_profile", "dpi") if k in img.info}
    if exif:
        exif[0x0112] = 1  # orientation already applied to the pixels
        info["exif"] = exif.tobytes()
    samples = deep.read(path, orientation) if deep_file and path is not None else None
    if samples is not None and samples.shape[:2] == (img.height, img.width):
        rgb = deep.to_8bit(samples[:, :, :3])  # rounded, where Pillow would truncate
        alpha = deep.to_8bit(samples[:, :, 3]) if samples.shape[2] == 4 else None
    else:
        samples = None
        rgb, alpha = _to_rgb(img)
    if frames > 1:
        warnings.append(f"the input has {frames} frames or pages; Lasso edits and writes the first only")
    return LoadedImage(
        rgb=rgb,
        alpha=alpha,
        mode=img.mode,
        original=img,
        format=fmt,
        path=path,
        info=info,
        warnings=warnings,
        transposed=transposed,
        deep=samples,
    )


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF: no orientation to honour
        return 1


def _open(path: Path, caught: list) -> Image.Image:
    """Image.open with Lasso's pixel limit in place of Pillow's bomb guard, and its errors as ours.
    Python warnings raised while opening are appended to `caught` instead of printed."""
    limit, before = max_pixels(), Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = limit  # Pillow warns above this and refuses above twice this
    try:
        with _warnings.catch_warnings(record=True) as seen:
            _warnings.simplefilter("always")
            img = Image.open(path)
        caught += [w for w in seen if not issubclass(w.category, Image.DecompressionBombWarning)]
        return img
    except Image.DecompressionBombError:
        raise ImageTooLargeError(
            f"image {path} is over the {limit / 1e6:.0f} MP limit (a decompression-bomb guard; "
            "raise it with LASSO_MAX_PIXELS)"
        ) from None
    except UnidentifiedImageError:
        raise UnreadableImageError(
            f"not an image Lasso can read (a corrupt file, or not a picture: use PNG, JPEG, WebP or TIFF): {path}"
        ) from None
    except (OSError, ValueError, SyntaxError) as e:  # ValueError: a metadata chunk past Pillow's size limit
        raise UnreadableImageError(f"cannot read image {path}: {e}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = before


def _array_to_pil(a: np.ndarray) -> Image.Image:
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.dtype != np.uint8:
        raise InvalidImageError(f"expected a uint8 array, got {a.dtype}")
    if a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4)):
        return Image.fromarray(a)
    raise InvalidImageError(f"expected an HxW, HxWx3 or HxWx4 array, got shape {a.shape}")


def _to_rgb(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    mode = img.mode
    if mode in _SIXTEEN_BIT or mode == "F":
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode != "F" and a.max() > 255 else max(255.0, float(a.max()))
        g = np.clip(np.round(a / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = np.asarray(img.convert("RGBA"))
        return np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3])
    return np.asarray(img.convert("RGB")).copy(), None


def output_mode(loaded: LoadedImage) -> str:
    """The mode an edit of `loaded` is saved in: the input's, where that can hold the edit losslessly."""
    mode = loaded.mode
    if mode in ("RGB", "RGBA", "L", "LA", "CMYK") or mode in _SIXTEEN_BIT:
        return mode
    if mode in ("1",):
        return "L"
    # Palette and exotic modes cannot hold new colours without re-quantising: save as RGB(A).
    return "RGBA" if loaded.alpha is not None else "RGB"


def restore(loaded: LoadedImage, rgb: np.ndarray, changed: np.ndarray) -> Image.Image:
    """Turn edited RGB pixels back into an image of the input's size and mode.

    Where `changed` (bool HxW) is False, the output's pixels are copied from the input itself
    (not round-tripped through RGB), so they are bit-identical in every mode, 16-bit included.
    Only the bounding box of `changed` is converted; the rest is one copy of the input.
    """
    mode = output_mode(loaded)
    orig = np.asarray(loaded.original) if mode == loaded.mode else None
    window = mask_bbox(changed)
    if orig is not None:
        out = np.array(orig)  # a writable copy of the input in its own mode
        if window is None:
            return Image.fromarray(out, mode) if mode not in _SIXTEEN_BIT else Image.fromarray(out)
        x0, y0, x1, y1 = window
        sel = changed[y0:y1, x0:x1]
        part = _to_mode(loaded, rgb[y0:y1, x0:x1], mode, (y0, y1, x0, x1), out.dtype)
        copy_where(out[y0:y1, x0:x1], part, sel)
        if mode in _SIXTEEN_BIT:
            return Image.fromarray(np.ascontiguousarray(out.astype(out.dtype.newbyteorder("="))))
        return Image.fromarray(out, mode)
    # The input's mode cannot hold the edit (palette, 1-bit...): convert the whole image.
    return Image.fromarray(_to_mode(loaded, rgb, mode, (0, rgb.shape[0], 0, rgb.shape[1]), np.uint8), mode)


def _to_mode(loaded: LoadedImage, rgb: np.ndarray, mode: str, rows_cols, dtype) -> np.ndarray:
    """RGB uint8 pixels (a window of the image at rows_cols = (y0, y1, x0, x1)) as an array in `mode`."""
    if mode == "RGB":
        return rgb
    edited = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if mode in _SIXTEEN_BIT:
        return (np.asarray(edited.convert("L"), dtype=np.uint16) * 257).astype(dtype)
    if mode in ("RGBA", "LA"):
        y0, y1, x0, x1 = rows_cols
        a = loaded.alpha[y0:y1, x0:x1] if loaded.alpha is not None else np.full(rgb.shape[:2], 255, np.uint8)
        return np.asarray(Image.fromarray(np.dstack([rgb, a]), "RGBA").convert(mode))
    return np.asarray(edited.convert(mode))


# --------------------------------------------------------------------------- saving
_FAST_PNG_MODES = ("RGB", "RGBA", "L", "LA")  # 8-bit modes lasso_edit/png.py writes
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "GIF", "BMP", "ICO", "TGA", "JPEG2000"}
_LOSSY_FORMATS = {
    "JPEG": "JPEG re-encodes the whole image",
    "GIF": "GIF re-quantises the whole image to 256 colours",
    "JPEG2000": "JPEG 2000 re-encodes the whole image",
    "MPO": "MPO re-encodes the whole image as JPEG",
    "AVIF": "AVIF re-encodes the whole image lossily",
    "HEIF": "HEIF re-encodes the whole image lossily",
    "PDF": "PDF stores the whole image re-encoded as JPEG",
}


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
    output, mask_out, plan_out, *inputs, mode: str | None = None, size: tuple[int, int] | None = None
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


def _check_not_input(path: Path, *inputs) -> None:
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

    def __init__(self):
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

    def __exit__(self, exc_type, exc, tb) -> None:
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


def save_image(
    image: Image.Image,
    path: str | os.PathLike,
    like: LoadedImage | None = None,
    png_compress: int = 1,
    batch: OutputBatch | None = None,
    deep_samples: np.ndarray | None = None,
) -> list[str]:
    """Save atomically in the format the suffix names, carrying ICC profile and EXIF from `like`.

    PNG is written at zlib level `png_compress` (default 1, fast; 9 for the smallest files), by
    lasso_edit/png.py for 8-bit grey, RGB and their alpha (Pillow for the other modes);
    bench/results/cpu.md has the times and sizes for a 24 MP photo against Pillow's writer.
    `deep_samples` (uint16 HxWx3/4, `EditResult.deep`) is written at 16 bits to PNG and TIFF; other
    formats get `image`, 8 bits, with a warning.

    Returns warnings (e.g. alpha dropped for JPEG) instead of failing on a lossy but sensible save.
    """
    path = Path(path)
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(f"cannot tell the image format from the output name {str(path)!r}")
    warnings: list[str] = []
    if deep_samples is not None and fmt in ("PNG", "TIFF"):
        return _save_deep(deep_samples, path, fmt, like, png_compress, batch)
    if deep_samples is not None:
        warnings.append(
            f"{fmt} holds 8 bits per channel: {path.name} was saved at 8 bits, so the 16-bit input's "
            "pixels lost their low byte outside the mask too; write .png or .tif to keep 16 bits"
        )
    img = image
    if fmt not in _ALPHA_FORMATS and img.mode in ("RGBA", "LA"):
        warnings.append(f"{fmt} has no transparency: alpha was flattened onto white in {path.name}")
        bg = Image.new("RGB", img.size, (255, 255, 255))
        bg.paste(img.convert("RGBA"), mask=img.convert("RGBA").getchannel("A"))
        img = bg if img.mode == "RGBA" else bg.convert("L")
    if fmt in _LOSSY_FORMATS:
        warnings.append(
            f"{path.name}: {_LOSSY_FORMATS[fmt]}, so pixels outside the mask are no longer bit-identical "
            "to the input; write .png, .tif or .webp to keep them"
        )
    if fmt == "JPEG" and img.mode in _SIXTEEN_BIT:
        warnings.append("JPEG holds 8 bits: the 16-bit image was saved as 8-bit grayscale")
        img = Image.fromarray((np.asarray(img, dtype=np.uint32) >> 8).astype(np.uint8), "L")
    fit = writable_mode(fmt, img.mode)
    if fit is None:
        raise InvalidInputError(f"Pillow cannot write {fmt} files like {str(path)!r}; use .png, .tif or .webp")
    converted = fit != img.mode
    if converted:
        warnings.append(f"{fmt} cannot store {img.mode} images: {path.name} was saved as {fit}")
        img = img.convert(fit)
    kwargs: dict[str, Any] = {}
    if like is not None:  # a colour profile made for another mode (CMYK) would misdescribe converted pixels
        keep = ("exif", "dpi") if converted else ("icc_profile", "exif", "dpi")
        kwargs.update({k: v for k, v in like.info.items() if k in keep})
    if fmt == "JPEG":
        kwargs["quality"] = 95
    if fmt == "WEBP":
        kwargs["lossless"] = True
        kwargs["exact"] = True  # keep the colour under transparent pixels (they are input pixels too)
    if fmt == "PNG":
        if not 0 <= int(png_compress) <= 9:
            raise InvalidInputError(f"PNG compression must be 0-9, got {png_compress}")
        kwargs["compress_level"] = int(png_compress)

    if fmt == "ICO":
        check_size_fits(fmt, img.size)
        kwargs["sizes"] = [img.size]  # this size alone; Pillow's default adds scaled-down copies
    if fmt == "BMP" and img.mode == "RGBA":
        data = _bmp_rgba(img, kwargs.get("dpi"))
        if batch is not None:
            batch.write(path, lambda f: f.write(data))
        else:
            write_atomic(path, lambda f: f.write(data))
        return warnings

    if fmt == "PNG" and img.mode in _FAST_PNG_MODES:  # lasso_edit/png.py: the same pixels, about 3x faster
        from .png import encode

        data = encode(
            np.asarray(img), kwargs["compress_level"], kwargs.get("icc_profile"), kwargs.get("dpi"), kwargs.get("exif")
        )
        if batch is not None:
            batch.write(path, lambda f: f.write(data))
        else:
            write_atomic(path, lambda f: f.write(data))
        return warnings

    def write(f):
        try:
            img.save(f, format=fmt, **kwargs)
        except (TypeError, ValueError, OSError):  # a format that refuses some metadata
            f.seek(0)
            f.truncate()
            img.save(f, format=fmt)

    if batch is not None:
        batch.write(path, write)
    else:
        write_atomic(path, write)
    return warnings


def _bmp_rgba(img: Image.Image, dpi=None) -> bytes:
    """A 32-bit BMP that keeps alpha: a BITMAPV4HEADER with BI_BITFIELDS and an alpha mask. Pillow
    writes RGBA as a plain 32-bit BMP whose fourth byte readers ignore (Pillow itself reads it back
    as RGB). Rows bottom-up, BGRA; header fields from Microsoft's BITMAPV4HEADER reference."""
    import struct

    w, h = img.size
    pixels = np.asarray(img.convert("RGBA"))[::-1][:, :, [2, 1, 0, 3]].tobytes()
    ppm = [int(round(float(d) / 0.0254)) for d in (dpi or (0, 0))]
    header = struct.pack("<IiiHHIIiiII", 108, w, h, 1, 32, 3, len(pixels), ppm[0], ppm[1], 0, 0)
    header += struct.pack("<IIII", 0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000)  # R, G, B, A masks
    header += struct.pack("<I", 0x73524742) + bytes(36 + 12)  # LCS_sRGB ('sRGB'); endpoints, gammas unused
    offset = 14 + len(header)
    return b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + pixels


def _save_deep(
    samples: np.ndarray, path: Path, fmt: str, like: LoadedImage | None, png_compress: int, batch: OutputBatch | None
) -> list[str]:
    info = like.info if like is not None else {}
    warnings = []
    if fmt == "PNG":
        if not 0 <= int(png_compress) <= 9:
            raise InvalidInputError(f"PNG compression must be 0-9, got {png_compress}")
        data = deep.encode_png(samples, int(png_compress), info.get("icc_profile"), info.get("dpi"), info.get("exif"))
    else:
        data = deep.encode_tiff(samples)
        dropped = [k for k in ("icc_profile", "exif", "dpi") if info.get(k)]
        if dropped:
            warnings.append(
                f"the 16-bit TIFF writer stores no {', '.join(k.replace('_', ' ') for k in dropped)}: "
                f"{path.name} has none; write .png to keep them with 16 bits"
            )
    if batch is not None:
        batch.write(path, lambda f: f.write(data))
    else:
        write_atomic(path, lambda f: f.write(data))
    return warnings
