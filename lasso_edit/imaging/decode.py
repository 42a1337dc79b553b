"""Reading image files: load (EXIF orientation, modes, 16 bits, the pixel limit) into RGB uint8."""

from __future__ import annotations

import os
import struct
import warnings as _warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..core.errors import ImageTooLargeError, InvalidImageError, InvalidInputError, UnreadableImageError
from . import deep
from .arrays import pixels_of

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
    # the input, oriented, in its own mode (unchanged pixels are copied from it): `original`. None
    # where that is `rgb` exactly (an 8-bit RGB input), whose Pillow copy is not kept: 400 MB at 100 MP
    stored: Image.Image | None
    format: str | None = None  # "PNG", "JPEG", ... as decoded
    path: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)  # icc_profile / exif to carry to the output
    warnings: list[str] = field(default_factory=list)  # what the user should know about the input
    transposed: bool = False  # EXIF orientation was applied: the pixels are not in the file's own frame
    deep: np.ndarray | None = None  # uint16 HxWx3/4: 16-bit RGB(A) PNG and TIFF, PGM, PPM (deep.py); rgb: it rounded
    unread_bits: int = 0  # bits per sample of a file read at 8 (16-bit SGI, deeper colour JPEG 2000); 0: all read
    pnm_maxval: int | None = None  # a 16-bit PGM's or PPM's maxval (deep holds its samples scaled to 0-65535)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), as PIL counts."""
        return self.rgb.shape[1], self.rgb.shape[0]

    @property
    def original(self) -> Image.Image:
        """The input, oriented, in its own mode (for an 8-bit RGB input: made from `rgb`, a new image)."""
        if self.stored is not None:
            return self.stored
        if self.mode != "RGB":  # imaging/verify.prove lets a written file's copy go: not to be read again
            raise InvalidImageError(f"the decoded {self.mode} image was let go; load the file again")
        return Image.fromarray(self.rgb)


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
    caught: list[
        _warnings.WarningMessage
    ] = []  # Python warnings Pillow raised while reading (corrupt EXIF): said once, below
    img, path = _source_image(source, caught)
    _check_pixel_limit(img)
    fmt = img.format
    try:  # a truncated multi-page file fails here, counting its pages
        frames = getattr(img, "n_frames", 1)  # before exif_transpose, which returns a single frame
        deep_file = path is not None and deep.is_deep_colour(path, img)
    except _DECODE_ERRORS as e:
        raise _corrupt(path, e) from None
    warnings: list[str] = []
    img, orientation, info = _decode_oriented(img, path, caught, warnings, own=path is not None and frames == 1)
    samples = deep.read(path, orientation) if deep_file and path is not None else None
    if samples is not None and samples.shape[:2] == (img.height, img.width):
        rgb = deep.to_8bit(samples[:, :, :3])  # rounded, where Pillow would truncate
        alpha = deep.to_8bit(samples[:, :, 3]) if samples.shape[2] == 4 else None
    else:
        samples = None
        rgb, alpha = _to_rgb(img)
    head = deep.pnm_header(path) if samples is not None and fmt == "PPM" and path is not None else None
    unread = deep.unread_depth(path, fmt, img.mode) if path is not None and samples is None else 0
    if unread:
        warnings.append(
            f"the input holds {unread}-bit samples and Lasso reads {fmt} at 8 bits: their low bits are "
            "dropped everywhere, outside the mask too, and a comparison sees 8 bits only; convert it to "
            "16-bit PNG or TIFF first"
        )
    if frames > 1:
        warnings.append(f"the input has {frames} frames or pages; Lasso edits and writes the first only")
    return LoadedImage(
        rgb=rgb,
        alpha=alpha,
        mode=img.mode,
        stored=None if img.mode == "RGB" and samples is None else img,
        format=fmt,
        path=path,
        info=info,
        warnings=warnings,
        transposed=orientation not in (0, 1),
        deep=samples,
        unread_bits=unread,
        pnm_maxval=head[3] if head is not None else None,
    )


def _source_image(
    source: str | os.PathLike | Image.Image | np.ndarray, caught: list[_warnings.WarningMessage]
) -> tuple[Image.Image, Path | None]:
    """The PIL image `source` names (opened, not yet decoded, for a path) and its path (None for an
    image or an array). A closed PIL image, a missing file, a folder or a pipe is an InvalidImageError."""
    if isinstance(source, np.ndarray):
        return _array_to_pil(source), None
    if isinstance(source, Image.Image):
        try:
            source.load()
        except (ValueError, AssertionError, AttributeError):  # Pillow's ways of saying "closed"
            raise InvalidImageError(
                "the PIL image was closed before use (outside its `with Image.open(...)` "
                "block?): keep it open, call .load() first, or pass the path"
            ) from None
        except OSError as e:
            raise InvalidImageError(f"the PIL image cannot be read: {e}") from None
        return source, None
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidImageError(f"expected an image path, a PIL image or a uint8 array, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise InvalidImageError(f"image not found: {path}")
    if path.is_dir():
        raise InvalidImageError(f"expected an image file, got a folder: {path}")
    if not path.is_file():  # a FIFO, a socket or a device: reading it could block forever
        raise InvalidImageError(f"expected an image file, got a pipe, socket or device: {path}")
    return _open(path, caught), path


def _check_pixel_limit(img: Image.Image) -> None:
    w, h = img.size
    if w * h > max_pixels():
        raise ImageTooLargeError(
            f"image is {w}x{h} = {w * h / 1e6:.0f} MP, over the {max_pixels() / 1e6:.0f} MP limit "
            "(a decompression-bomb guard; raise it with LASSO_MAX_PIXELS)"
        )


def _corrupt(path: Path | None, e: BaseException) -> UnreadableImageError:
    where = f" {path}" if path else ""
    return UnreadableImageError(f"image{where} is corrupt or truncated: {e}")


def _decode_oriented(
    img: Image.Image, path: Path | None, caught: list[_warnings.WarningMessage], warnings: list[str], own: bool
) -> tuple[Image.Image, int, dict[str, Any]]:
    """Decode `img` and turn it upright by its EXIF orientation. Returns the upright image, the
    orientation it had, and the metadata to carry to the output (ICC profile, dpi, the EXIF with
    its orientation reset). A corrupt EXIF is dropped with a note in `warnings`. `own`: `img` was
    opened here from a single-frame file (Pillow closes it once decoded), so an upright one is
    kept as it is; a caller's image, or a file of several frames, is copied as exif_transpose does."""
    with _warnings.catch_warnings(record=True) as more:
        _warnings.simplefilter("always")
        try:
            img.load()
            orientation = _orientation(img)
            if orientation in _TURNS or not own:  # it copies even an upright image: 72 MB at 24 MP
                img = ImageOps.exif_transpose(img) or img
        except _DECODE_ERRORS as e:
            raise _corrupt(path, e) from None
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
    return img, orientation, info


_TURNS = range(2, 9)  # the EXIF orientations that move pixels (1 is upright; others are not defined)


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF: no orientation to honour
        return 1


def _open(path: Path, caught: list[_warnings.WarningMessage]) -> Image.Image:
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
        rgba = pixels_of(img if mode == "RGBA" else img.convert("RGBA"))
        return np.ascontiguousarray(rgba[:, :, :3]), np.ascontiguousarray(rgba[:, :, 3])
    return pixels_of(img if mode == "RGB" else img.convert("RGB")), None  # one copy of the pixels, not three
