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

16-bit PNM (PGM P5 and PPM P6 whose maxval is over 255) Pillow reads as 8-bit RGB (P6) or scaled
to 0-65535 with its own rounding (P5), so it is parsed here (`pnm_header`, `read`): its samples are
held scaled from 0-maxval to 0-65535, rounded, which `encode_pnm` undoes exactly (maxval 4095 in,
maxval 4095 and the same samples out); a PGM is held as RGB, its grey in the three channels, and
written back as grey. Pillow reads no PAM (P7), so one is refused, never read at 8 bits.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .arrays import copy_where
from .png import SIGNATURE as _PNG_SIGNATURE

if TYPE_CHECKING:
    from PIL import Image

_PNG_RGB, _PNG_GREY_ALPHA, _PNG_RGBA = 2, 4, 6  # IHDR colour types (PNG spec, 11.2.2)


def is_deep_colour(path: Path, img: Image.Image) -> bool:
    """Whether the file `img` was opened from holds 16-bit RGB, RGBA or (PNG) grey + alpha samples,
    or is a 16-bit PGM or PPM."""
    if img.format == "PPM":
        pnm = pnm_header(path)
        return pnm is not None and pnm[3] > 255
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


def unread_depth(path: Path, fmt: str | None, mode: str) -> int:
    """Bits per sample of a file Pillow reads at 8 bits that this module does not read whole: a
    16-bit SGI (its header's bytes per channel), a colour JPEG 2000 of 9-16 bits (the codestream's
    SIZ marker; Pillow keeps 16-bit grey whole as "I;16"); 0 for anything else."""
    if fmt == "SGI":
        with open(path, "rb") as f:
            head = f.read(4)
        return 16 if len(head) == 4 and head[3] == 2 else 0
    if fmt == "JPEG2000" and mode in ("RGB", "RGBA", "L", "LA"):
        with open(path, "rb") as f:
            head = f.read(65536)
        at = head.find(b"\xff\x4f\xff\x51")  # SOC, SIZ, Lsiz, Rsiz, 8 sizes, Csiz, 3 bytes a component
        if at < 0 or len(head) < at + 42:
            return 0
        count = int.from_bytes(head[at + 40 : at + 42], "big")
        bits = [(head[at + 42 + 3 * i] & 0x7F) + 1 for i in range(count) if at + 42 + 3 * i < len(head)]
        return max(bits) if bits and max(bits) > 8 else 0
    return 0


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
    """The file's samples as uint16 HxWx3 (RGB; a PGM's grey in all three) or HxWx4 (RGBA; grey +
    alpha as RGBA), oriented; None if OpenCV (or, for PNM, `read_pnm`) can't."""
    data = np.fromfile(path, dtype=np.uint8)  # imdecode: paths with any characters
    if pnm_header(path) is not None:
        return read_pnm(data.tobytes())
    return read_bytes(data, orientation)


_PNM_GREY, _PNM_RGB = b"P5", b"P6"


def pnm_header(path: Path | bytes) -> tuple[bytes, int, int, int, int] | None:
    """(magic, width, height, maxval, offset of the samples) of a binary PGM (P5) or PPM (P6) file
    (or its bytes); None for anything else. The header: the magic, then width, height and maxval
    as decimal numbers separated by whitespace, '#' comments to the end of a line allowed between
    them, then one whitespace character (Netpbm's pgm(5), ppm(5))."""
    if isinstance(path, bytes):
        head = path[:4096]
    else:
        with open(path, "rb") as f:
            head = f.read(4096)
    if head[:2] not in (_PNM_GREY, _PNM_RGB):
        return None
    numbers: list[int] = []
    i = 2
    while len(numbers) < 3:
        if i >= len(head):
            return None
        c = head[i : i + 1]
        if c.isspace():
            i += 1
        elif c == b"#":
            end = head.find(b"\n", i)
            if end < 0:
                return None
            i = end + 1
        elif c.isdigit():
            j = i
            while j < len(head) and head[j : j + 1].isdigit():
                j += 1
            numbers.append(int(head[i:j]))
            i = j
        else:
            return None
    if i >= len(head) or not head[i : i + 1].isspace():
        return None
    w, h, maxval = numbers
    if w < 1 or h < 1 or not 0 < maxval < 65536:
        return None
    return head[:2], w, h, maxval, i + 1


def read_pnm(data: bytes) -> np.ndarray | None:
    """A 16-bit PGM's or PPM's samples as uint16 HxWx3, scaled from 0-maxval to 0-65535 (rounded);
    None if it is not one, or is cut short."""
    head = pnm_header(data)
    if head is None or head[3] <= 255:
        return None
    magic, w, h, maxval, offset = head
    c = 1 if magic == _PNM_GREY else 3
    if len(data) - offset < w * h * c * 2:
        return None
    a = np.frombuffer(data, dtype=">u2", count=w * h * c, offset=offset).reshape(h, w, c)
    if maxval != 65535:  # a sample over maxval (a broken file) is clipped
        a = (np.minimum(a, maxval).astype(np.uint32) * 65535 + maxval // 2) // maxval
    a = a.astype(np.uint16)
    return np.ascontiguousarray(np.repeat(a, 3, axis=2) if c == 1 else a)


def grey(deep: np.ndarray) -> np.ndarray:
    """uint16 HxW: the first channel where the three colour channels agree (a grey input's own
    samples, everywhere outside an edit), their luma (ITU-R 601, as Pillow's "L") where an edit
    made colour."""
    out = deep[:, :, 0].copy()
    colour = (deep[:, :, 1] != out) | (deep[:, :, 2] != out)
    if colour.any():
        rgb = deep[colour][:, :3].astype(np.float64)
        out[colour] = np.clip(np.rint(rgb @ np.array([0.299, 0.587, 0.114])), 0, 65535).astype(np.uint16)
    return out


def encode_pnm(deep: np.ndarray, maxval: int = 65535, as_grey: bool = False) -> bytes:
    """A 16-bit PGM (`as_grey`, through `grey`) or PPM of `deep` (uint16 HxWx3, 0-65535), its
    samples scaled back to 0-`maxval` (256-65535): `read_pnm` undone exactly."""
    a = grey(deep)[:, :, None] if as_grey else deep[:, :, :3]
    if maxval != 65535:
        a = ((a.astype(np.uint32) * maxval + 32767) // 65535).astype(np.uint16)
    h, w = a.shape[:2]
    magic = _PNM_GREY if as_grey else _PNM_RGB
    return magic + b"\n%d %d\n%d\n" % (w, h, maxval) + np.ascontiguousarray(a, dtype=">u2").tobytes()


def read_bytes(data: bytes | np.ndarray, orientation: int = 1) -> np.ndarray | None:
    """`read` of a file's bytes (a server's 16-bit PNG answer, say)."""
    import cv2

    a = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if a is not None and a.dtype == np.uint16 and a.ndim == 2:  # a 16-bit grey PNG (a PGM's edit)
        a = np.repeat(a[:, :, None], 3, axis=2)
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
    deep: np.ndarray,
    level: int = 1,
    icc: bytes | None = None,
    dpi: tuple[float, float] | None = None,
    exif: bytes | None = None,
) -> bytes:
    """A 16-bit RGB or RGBA PNG of `deep` (uint16 HxWx3/4), through lasso_edit/png.py."""
    from .png import encode

    return encode(deep, level, icc, dpi, exif)


def encode_tiff(deep: np.ndarray) -> bytes:
    """A 16-bit RGB or RGBA TIFF, or grey (uint16 HxW) (OpenCV's writer; it stores no ICC profile,
    dpi or EXIF)."""
    import cv2

    if deep.ndim == 2:
        bgr = deep
    else:
        bgr = cv2.cvtColor(deep, cv2.COLOR_RGB2BGR if deep.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".tiff", bgr)
    if not ok:
        raise OSError("OpenCV could not encode the 16-bit TIFF")
    return buf.tobytes()
