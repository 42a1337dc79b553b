"""Writing an edit back: restore it into the input's mode, save it in the format its name asks for
(with the input's metadata), through paths.py's atomic writes."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike
from PIL import Image

from ..core.errors import InvalidInputError
from . import deep
from .arrays import copy_where, mask_bbox, pixels_of
from .decode import _SIXTEEN_BIT, LoadedImage
from .paths import OutputBatch, check_size_fits, writable_mode, write_atomic


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
    window = mask_bbox(changed)
    if mode == loaded.mode:
        # a writable copy of the input in its own mode
        out = loaded.rgb.copy() if loaded.stored is None else pixels_of(loaded.stored)
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


def _to_mode(
    loaded: LoadedImage, rgb: np.ndarray, mode: str, rows_cols: tuple[int, int, int, int], dtype: DTypeLike
) -> np.ndarray:
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
    `deep_samples` (uint16 HxWx3/4, `EditResult.deep`) is written at 16 bits to PNG, TIFF and
    PGM/PPM (grey where the input was: a 16-bit PGM's edit is a 16-bit PGM, or grey PNG or TIFF;
    a PNM input's maxval is kept); other formats get `image`, 8 bits, with a warning.

    Returns warnings (e.g. alpha dropped for JPEG) instead of failing on a lossy but sensible save.
    """
    path = Path(path)
    fmt = _format_of_output(path)
    warnings: list[str] = []
    if deep_samples is not None and fmt in ("PNG", "TIFF", "PPM") and path.suffix.lower() != ".pbm":
        return _save_deep(deep_samples, path, fmt, like, png_compress, batch)
    if deep_samples is not None:
        warnings.append(
            f"{fmt} holds 8 bits per channel: {path.name} was saved at 8 bits, so the 16-bit input's "
            "pixels lost their low byte outside the mask too; write .png, .tif or .ppm to keep 16 bits"
        )
    img, converted = _fit_to_format(image, fmt, path, warnings)
    kwargs = _save_options(img, fmt, like, converted, png_compress)
    if fmt == "BMP" and img.mode == "RGBA":
        _write_bytes(path, _bmp_rgba(img, kwargs.get("dpi")), batch)
    elif fmt == "PNG" and img.mode in _FAST_PNG_MODES:  # lasso_edit/png.py: the same pixels, about 3x faster
        from .png import encode

        data = encode(
            pixels_of(img), kwargs["compress_level"], kwargs.get("icc_profile"), kwargs.get("dpi"), kwargs.get("exif")
        )
        _write_bytes(path, data, batch)
    else:
        _write_with_pillow(img, fmt, kwargs, path, batch)
    return warnings


def _format_of_output(path: Path) -> str:
    """The Pillow format an output's suffix names; an InvalidInputError when it names none."""
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise InvalidInputError(f"cannot tell the image format from the output name {str(path)!r}")
    return fmt


def _fit_to_format(image: Image.Image, fmt: str, path: Path, warnings: list[str]) -> tuple[Image.Image, bool]:
    """`image` in a mode `fmt` can store: alpha flattened onto white where the format has none,
    16 bits cut to 8 for JPEG, else the closest mode Pillow writes. Appends a warning for each loss
    (and for a lossy format). Returns the image and whether its mode was converted to fit."""
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
    return img, converted


def _save_options(
    img: Image.Image, fmt: str, like: LoadedImage | None, converted: bool, png_compress: int
) -> dict[str, Any]:
    """The keywords for saving `img` as `fmt`: `like`'s metadata (its colour profile only where the
    mode was kept), JPEG quality, lossless WebP, the PNG zlib level (checked 0-9), one ICO size."""
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
    return kwargs


def _write_with_pillow(
    img: Image.Image, fmt: str, kwargs: dict[str, Any], path: Path, batch: OutputBatch | None
) -> None:
    """Save `img` through Pillow with `kwargs`, again without them if the format refuses some metadata."""

    def write(f: io.BufferedWriter) -> None:
        try:
            img.save(f, format=fmt, **kwargs)
        except (TypeError, ValueError, OSError):  # a format that refuses some metadata
            f.seek(0)
            f.truncate()
            img.save(f, format=fmt)

    _write_output(path, write, batch)


def _write_bytes(path: Path, data: bytes, batch: OutputBatch | None) -> None:
    """Write encoded bytes to `path`, in `batch` when there is one, else atomically on their own."""
    _write_output(path, lambda f: f.write(data), batch)


def _write_output(path: Path, write: Callable[[io.BufferedWriter], object], batch: OutputBatch | None) -> None:
    if batch is not None:
        batch.write(path, write)
    else:
        write_atomic(path, write)


def _bmp_rgba(img: Image.Image, dpi: tuple[float, float] | None = None) -> bytes:
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
    as_grey = like is not None and like.mode not in ("RGB", "RGBA") and samples.shape[2] == 3
    if fmt == "PPM":
        if samples.shape[2] == 4:  # PPM has no alpha: onto white, at 16 bits
            warnings.append(f"{fmt} has no transparency: alpha was flattened onto white in {path.name}")
            a = samples[:, :, 3:].astype(np.float64) / 65535.0
            samples = np.rint(samples[:, :, :3] * a + 65535.0 * (1.0 - a)).astype(np.uint16)
        maxval = like.pnm_maxval if like is not None and like.pnm_maxval else 65535
        data = deep.encode_pnm(samples, maxval, as_grey)
    elif fmt == "PNG":
        if not 0 <= int(png_compress) <= 9:
            raise InvalidInputError(f"PNG compression must be 0-9, got {png_compress}")
        pixels = deep.grey(samples) if as_grey else samples
        data = deep.encode_png(pixels, int(png_compress), info.get("icc_profile"), info.get("dpi"), info.get("exif"))
    else:
        data = deep.encode_tiff(deep.grey(samples) if as_grey else samples)
        dropped = [k for k in ("icc_profile", "exif", "dpi") if info.get(k)]
        if dropped:
            warnings.append(
                f"the 16-bit TIFF writer stores no {', '.join(k.replace('_', ' ') for k in dropped)}: "
                f"{path.name} has none; write .png to keep them with 16 bits"
            )
    _write_bytes(path, data, batch)
    return warnings
