"""JPEG in, JPEG out, lossless outside the edit: only the blocks the edit touched are re-encoded.

What `jpegtran -drop` does, at jpegtran's own speed:
1. read the input's frame from its markers (jpeg_header.py: size, sampling factors, quantisation
   tables), without decoding it;
2. compute the edited pixels' coefficients with the same tables and sampling (`forward`: JFIF
   colour conversion, chroma averaging, the 8x8 DCT and quantisation, in numpy), from the first
   to the last touched MCU only;
3. code the file again losslessly, as `jpegtran -copy all` does, with the new coefficients in the
   MCUs (minimum coded units: 8x8 luma blocks, 16x16 with 4:2:0 chroma) that hold an edited pixel
   and every other MCU's coefficients as they were: one pass of TurboJPEG's transform
   (jpeg_transform.py), or, without libturbojpeg, jpeglib's read and write of the coefficients.
Decoding the output then gives the input's pixels everywhere but in the touched MCUs and, where
chroma is subsampled, the ring of MCUs around them (the decoder's smooth chroma upsampling reads
one neighbouring chroma sample across an MCU edge). `write` returns that region: the mask file
shows exactly where pixels may differ.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from ..core.errors import UnreadableImageError
from . import jpeg_transform
from .jpeg_header import Frame, NotAFrame, read_frame
from .jpeg_transform import Patch, TransformError

if TYPE_CHECKING:
    from .decode import LoadedImage


def available() -> bool:
    try:
        import jpeglib  # noqa: F401
    except ImportError:
        return False
    return True


def applies(loaded: LoadedImage | None, output: str | os.PathLike) -> TypeGuard[LoadedImage]:
    """True when `loaded` can be written to `output` this way: a JPEG file in its own frame (no EXIF
    rotation applied), YCbCr or grayscale (not RGB- or CMYK-coded), 8-bit, with its tables before
    its first scan, written as .jpg/.jpeg, with libturbojpeg or jpeglib installed (never for a
    result with no input: None)."""
    if not (
        loaded is not None
        and loaded.format == "JPEG"
        and loaded.path is not None
        and not loaded.transposed
        and loaded.mode in ("RGB", "L")
        and Path(output).suffix.lower() in (".jpg", ".jpeg", ".jpe", ".jfif")
        and (jpeg_transform.available() or available())
    ):
        return False
    try:
        frame = read_frame(Path(loaded.path).read_bytes())
    except (OSError, NotAFrame):
        return False
    return (frame.ycc if loaded.mode == "RGB" else frame.gray) and not frame.tables_later


def _mcu_grid(changed: np.ndarray, mcu_h: int, mcu_w: int, rows: int, cols: int) -> np.ndarray:
    """bool (rows, cols): the MCUs holding a changed pixel (looked for in the changed pixels' box only)."""
    from .arrays import mask_bbox

    grid = np.zeros((rows, cols), dtype=bool)
    box = mask_bbox(changed[: rows * mcu_h, : cols * mcu_w])
    if box is None:
        return grid
    r0, c0 = box[1] // mcu_h, box[0] // mcu_w
    r1, c1 = -(-box[3] // mcu_h), -(-box[2] // mcu_w)
    part = changed[r0 * mcu_h : r1 * mcu_h, c0 * mcu_w : c1 * mcu_w]
    pad = np.zeros(((r1 - r0) * mcu_h, (c1 - c0) * mcu_w), dtype=bool)
    pad[: part.shape[0], : part.shape[1]] = part
    grid[r0:r1, c0:c1] = pad.reshape(r1 - r0, mcu_h, c1 - c0, mcu_w).any(axis=(1, 3))
    return grid


# The orthonormal 8x8 DCT-II: JPEG's forward DCT (ITU T.81, A.3.3) is this, scaled by 1/4 C(u) C(v).
# On a block flattened row by row, D B D^T is one product with the Kronecker matrix D (x) D.
_DCT = np.array(
    [[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)] for u in range(8)]
)
_DCT2 = np.kron(_DCT, _DCT).T.astype(np.float32)  # (64, 64): a flattened block times this
# JFIF YCbCr (ITU T.871), level-shifted by 128 for the DCT: Y - 128, Cb, Cr
_YCC = np.array(
    [[0.299, 0.587, 0.114, -128.0], [-0.168735892, -0.331264108, 0.5, 0.0], [0.5, -0.418687589, -0.081312411, 0.0]],
    np.float32,
)


def forward(rgb: np.ndarray, samp_factor: np.ndarray, tables: list[np.ndarray], gray: bool) -> list[np.ndarray]:
    """The quantised DCT coefficients of RGB uint8 pixels, one int16 (rows, cols, 8, 8) array per
    component (Y, Cb, Cr; or Y alone when `gray`), as a JPEG encoder computes them: JFIF YCbCr
    (T.871), each chroma plane averaged over its sampling ratio, level shift, 8x8 DCT, divided by
    the component's table (8x8, natural order) and rounded. `samp_factor`: (v, h) per component,
    as jpeglib reads it. The picture is padded to whole MCUs by repeating its last row and column,
    as libjpeg pads. libjpeg's integer arithmetic rounds a few coefficients the other way (about
    1%, by 1-2 steps): the same picture, within the quantiser's own error."""
    import cv2

    vmax, hmax = int(samp_factor[:, 0].max()), int(samp_factor[:, 1].max())
    mh, mw = 8 * vmax, 8 * hmax
    h, w = rgb.shape[:2]
    padded = cv2.copyMakeBorder(rgb, 0, -(-h // mh) * mh - h, 0, -(-w // mw) * mw - w, cv2.BORDER_REPLICATE)
    strips = [
        _forward_rows(padded[r : r + STRIP_MCUS * mh], samp_factor, tables, gray)
        for r in range(0, padded.shape[0], STRIP_MCUS * mh)
    ]
    return [np.concatenate([s[c] for s in strips]) for c in range(len(strips[0]))]


STRIP_MCUS = 16  # MCU rows computed at a time: the float planes stay small (blocks are independent)


def _forward_rows(padded: np.ndarray, samp_factor: np.ndarray, tables: list[np.ndarray], gray: bool) -> list:
    import cv2

    vmax, hmax = int(samp_factor[:, 0].max()), int(samp_factor[:, 1].max())
    planes: list[np.ndarray]
    if gray:
        planes = [cv2.cvtColor(padded, cv2.COLOR_RGB2GRAY).astype(np.float32) - 128.0]
    else:
        planes = list(cv2.split(cv2.transform(padded.astype(np.float32), _YCC)))
    out = []
    for c, plane in enumerate(planes):
        dv, dh = vmax // int(samp_factor[c, 0]), hmax // int(samp_factor[c, 1])
        if dv > 1 or dh > 1:  # the mean of each dv x dh cell (an area resize by a whole factor)
            plane = np.asarray(
                cv2.resize(plane, (plane.shape[1] // dh, plane.shape[0] // dv), interpolation=cv2.INTER_AREA)
            )
        ny, nx = plane.shape[0] // 8, plane.shape[1] // 8
        blocks = plane.reshape(ny, 8, nx, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
        coef = blocks @ _DCT2
        coef /= tables[c].astype(np.float32).reshape(1, 64)
        out.append(np.rint(coef).astype(np.int16).reshape(ny, nx, 8, 8))
    return out


FAST_LIBJPEG = "turbo210"  # jpeglib's build of libjpeg-turbo 2.1: the same bytes as its default 6b, faster


def _fast_codec(jpeglib: Any) -> None:
    """jpeglib reads and writes with libjpeg 6b unless told otherwise; libjpeg-turbo's Huffman
    coding is faster (a 24 MP photo's coefficients: about 0.35 -> 0.24 CPU-s to write) and gives
    the same file (tests/imaging/test_jpeg_blocks.py). Kept as it is where jpeglib lacks it."""
    if jpeglib.version.get() != FAST_LIBJPEG:
        try:
            jpeglib.version.set(FAST_LIBJPEG)
        except (RuntimeError, NotImplementedError):
            pass


def write(
    loaded: LoadedImage, rgb: np.ndarray, changed: np.ndarray, write_bytes: Callable[[bytes], object]
) -> np.ndarray:
    """Write the edit of the JPEG `loaded` (edited pixels `rgb`, RGB uint8 HxWx3; `changed` bool HxW)
    through `write_bytes(data)`. Returns bool HxW: where the output's pixels may differ from the input's."""
    import cv2

    path = loaded.path
    if path is None:
        raise ValueError("jpeg_blocks.write needs the input's file (applies() checks it)")
    data = Path(path).read_bytes()
    frame = read_frame(data)
    samp = np.ones((1, 2), int) if frame.gray else frame.sampling  # one component: an MCU is one block
    mh, mw = 8 * int(samp[:, 0].max()), 8 * int(samp[:, 1].max())
    rows, cols = -(-frame.height // mh), -(-frame.width // mw)
    mcu = _mcu_grid(changed, mh, mw, rows, cols)
    patches = _patches(frame, samp, rgb, mcu)
    out = None
    if jpeg_transform.available():
        try:
            out = jpeg_transform.transform(data, patches)
        except TransformError:  # a file TurboJPEG warns about: jpeglib's libjpeg may still take it
            out = None
    if out is None and not available():
        raise UnreadableImageError(f"{path} could not be coded again block by block (libturbojpeg refused it)")
    write_bytes(out if out is not None else _through_jpeglib(path, patches))
    if (samp != samp[0]).any():  # subsampled chroma: the decoder's upsampling reaches one MCU further
        mcu = cv2.dilate(mcu.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    h, w = changed.shape
    return np.repeat(np.repeat(mcu, mh, 0), mw, 1)[:h, :w]


def _patches(frame: Frame, samp: np.ndarray, rgb: np.ndarray, mcu: np.ndarray) -> list[Patch | None]:
    """Per component, the new coefficients of the blocks in touched MCUs (None where no MCU is).
    Only the MCUs from the first to the last touched one are encoded again: blocks are coded one
    by one (colour conversion, chroma averaging, DCT), so a crop that starts on an MCU edge gives
    the same coefficients as the whole frame would (tests/imaging/test_jpeg_blocks.py)."""
    if not mcu.any():
        return [None] * len(frame.ids)
    r = np.flatnonzero(mcu.any(axis=1))
    c = np.flatnonzero(mcu.any(axis=0))
    r0, r1, c0, c1 = int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1
    mh, mw = 8 * int(samp[:, 0].max()), 8 * int(samp[:, 1].max())
    new = forward(rgb[r0 * mh : r1 * mh, c0 * mw : c1 * mw], samp, frame.tables, frame.gray)
    part = mcu[r0:r1, c0:c1]
    patches: list[Patch | None] = []
    for k, coef in enumerate(new):
        v, h = int(samp[k, 0]), int(samp[k, 1])
        rows, cols = frame.blocks(k)
        touched = np.repeat(np.repeat(part, v, 0), h, 1)[: rows - r0 * v, : cols - c0 * h]
        patches.append(Patch(r0 * v, c0 * h, coef[: touched.shape[0], : touched.shape[1]], touched))
    return patches


def _through_jpeglib(path: str | os.PathLike, patches: list[Patch | None]) -> bytes:
    """The same file through jpeglib, where libturbojpeg is missing: its coefficients read, the
    patches written in, the file written (jpeglib reads the source again for its parameters)."""
    import jpeglib

    _fast_codec(jpeglib)
    src = jpeglib.read_dct(str(path))
    for name, patch in zip(("Y", "Cb", "Cr"), patches):
        if patch is None:
            continue
        plane = getattr(src, name)  # jpeglib's arrays are our own: changed in place, then set back
        rows, cols = patch.touched.shape
        view = plane[patch.row0 : patch.row0 + rows, patch.col0 : patch.col0 + cols]
        view[patch.touched] = patch.coef[patch.touched]
        setattr(src, name, plane)
    with tempfile.TemporaryDirectory(prefix="lasso-jpeg-") as tmp:
        out = os.path.join(tmp, "out.jpg")
        src.write_dct(out)
        return Path(out).read_bytes()
