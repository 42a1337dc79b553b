"""16 bits per channel colour (RGB and RGBA PNG and TIFF, and grey + alpha PNG), which Pillow
decodes to 8 bits.

Pillow keeps the high byte of each 16-bit sample of an RGB(A) file, so an edit read through it
alone would lose the low byte of every pixel, inside the mask and outside. Here the file is read
again with OpenCV, which keeps all 16 bits; the models still see 8-bit RGB (each sample rounded to
the nearest of 256 levels), and the output is composed at 16 bits (`compose`) and written at 16
bits: PNG by the small encoder below (it carries the ICC profile, dpi and EXIF, which OpenCV's
writer drops), TIFF by OpenCV. A 16-bit grey + alpha PNG (Pillow opens it as 8-bit RGBA) is read
as RGBA, its grey in the three colour channels, and written back as 16-bit RGBA: the same samples.
16-bit grayscale ("I;16") Pillow reads whole, so it goes the usual way (imaging.restore).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .arrays import copy_where
from .png import SIGNATURE as _PNG_SIGNATURE

_PNG_RGB, _PNG_GREY_ALPHA, _PNG_RGBA = 2, 4, 6  # IHDR colour types (PNG spec, 11.2.2)


def is_deep_colour(path: Path, img) -> bool:
    """Whether the file `img` was opened from holds 16-bit RGB, RGBA or (PNG) grey + alpha samples."""
    if img.mode not in ("RGB", "RGBA"):
        return False
    if img.format == "PNG":
        with open(path, "rb") as f:
            head = f.read(26)
        # signature (8), IHDR length (4) and type (4), width (4), height (4), bit depth (1), colour type (1)
        return (
            len(head) == 26
            and head[:8] == _PNG_SIGNATURE
            and head[12:16] == b"IHDR"
            and head[24] == 16
            and head[25] in (_PNG_RGB, _PNG_GREY_ALPHA, _PNG_RGBA)
        )
    if img.format == "TIFF":
        bits = getattr(img, "tag_v2", {}).get(258)  # BitsPerSample
        return bool(bits) and all(int(b) == 16 for b in (bits if isinstance(bits, tuple) else (bits,)))
    return False


# EXIF orientation -> the same transposition ImageOps.exif_transpose applies, for numpy arrays.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.swapaxes(a[::-1, ::-1], 0, 1),  # transverse
    8: lambda a: np.rot90(a, 1),
}


def read(path: Path, orientation: int = 1) -> np.ndarray | None:
    """The file's samples as uint16 HxWx3 (RGB) or HxWx4 (RGBA; grey + alpha as RGBA), oriented;
    None if OpenCV can't."""
    return read_bytes(np.fromfile(path, dtype=np.uint8), orientation)  # imdecode: paths with any characters


def read_bytes(data, orientation: int = 1) -> np.ndarray | None:
    """`read` of a file's bytes (a server's 16-bit PNG answer, say)."""
    import cv2

    a = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None or a.dtype != np.uint16 or a.ndim != 3 or a.shape[2] not in (3, 4):
        return None
    a = cv2.cvtColor(a, cv2.COLOR_BGR2RGB if a.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    return np.ascontiguousarray(_ORIENT.get(orientation, lambda x: x)(a))


def to_8bit(deep: np.ndarray) -> np.ndarray:
    """uint16 samples -> the nearest of 256 levels (x / 257, rounded)."""
    return ((deep.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def compose(deep: np.ndarray, before: np.ndarray, after: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The 16-bit output: `deep` (the input, uint16 HxWxC) where `alpha` is 0, bit for bit.

    `before` and `after` are the 8-bit RGB the models saw and the 8-bit composite they made. Where
    alpha > 0 the result is after * 257 plus the input's own fine detail (its difference from its
    8-bit rounding) in the proportion (1 - alpha) in which the input shows through. That is the
    16-bit composite input * (1 - alpha) + edit * alpha, without dividing by alpha to recover the
    edit. Alpha channels (RGBA) are never edited: they are copied.
    """
    out = deep.copy()
    changed = alpha > 0
    if not changed.any():
        return out
    rows, cols = np.nonzero(changed.any(axis=1))[0], np.nonzero(changed.any(axis=0))[0]
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    d = deep[y0:y1, x0:x1, :3].astype(np.float32)
    residual = d - before[y0:y1, x0:x1].astype(np.float32) * 257.0
    a = alpha[y0:y1, x0:x1, None].astype(np.float32)
    mixed = after[y0:y1, x0:x1].astype(np.float32) * 257.0 + (1.0 - a) * residual
    new = np.clip(np.rint(mixed), 0, 65535).astype(np.uint16)
    sel = changed[y0:y1, x0:x1]
    copy_where(out[y0:y1, x0:x1, :3], new, sel)
    return out


def encode_png(
    deep: np.ndarray, level: int = 1, icc: bytes | None = None, dpi=None, exif: bytes | None = None
) -> bytes:
    """A 16-bit RGB or RGBA PNG of `deep` (uint16 HxWx3/4), through lasso_edit/png.py."""
    from .png import encode

    return encode(deep, level, icc, dpi, exif)


def encode_tiff(deep: np.ndarray) -> bytes:
    """A 16-bit RGB or RGBA TIFF (OpenCV's writer; it stores no ICC profile, dpi or EXIF)."""
    import cv2

    bgr = cv2.cvtColor(deep, cv2.COLOR_RGB2BGR if deep.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".tiff", bgr)
    if not ok:
        raise OSError("OpenCV could not encode the 16-bit TIFF")
    return buf.tobytes()
