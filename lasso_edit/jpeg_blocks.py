"""JPEG in, JPEG out, lossless outside the edit: only the blocks the edit touched are re-encoded.

What `jpegtran -drop` does, from Python with jpeglib (it reads and writes DCT coefficients):
1. read the input's coefficients, quantisation tables and sampling factors;
2. encode the edited image with the same tables and sampling, and read its coefficients;
3. copy the new coefficients into the MCUs (minimum coded units: 8x8 luma blocks, 16x16 with
   4:2:0 chroma) that hold an edited pixel, keep every other MCU's coefficients as they were, and
   write the file.
Decoding the output then gives the input's pixels everywhere but in the touched MCUs and, where
chroma is subsampled, the ring of MCUs around them (the decoder's smooth chroma upsampling reads
one neighbouring chroma sample across an MCU edge). `write` returns that region: the mask file
shows exactly where pixels may differ.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def available() -> bool:
    try:
        import jpeglib  # noqa: F401
    except ImportError:
        return False
    return True


def applies(loaded, output: str | os.PathLike) -> bool:
    """True when `loaded` can be written to `output` this way: a JPEG file in its own frame (no EXIF
    rotation applied), RGB or grayscale, written as .jpg/.jpeg, with jpeglib installed."""
    return (loaded.format == "JPEG" and loaded.path is not None and not loaded.transposed
            and loaded.mode in ("RGB", "L") and Path(output).suffix.lower() in (".jpg", ".jpeg", ".jpe", ".jfif")
            and available())


def _mcu_grid(changed: np.ndarray, mcu_h: int, mcu_w: int, rows: int, cols: int) -> np.ndarray:
    """bool (rows, cols): the MCUs holding a changed pixel."""
    h, w = changed.shape
    pad = np.zeros((rows * mcu_h, cols * mcu_w), dtype=bool)
    pad[:h, :w] = changed[: rows * mcu_h, : cols * mcu_w]
    return pad.reshape(rows, mcu_h, cols, mcu_w).any(axis=(1, 3))


def write(loaded, rgb: np.ndarray, changed: np.ndarray, write_bytes) -> np.ndarray:
    """Write the edit of the JPEG `loaded` (edited pixels `rgb`, RGB uint8 HxWx3; `changed` bool HxW)
    through `write_bytes(data)`. Returns bool HxW: where the output's pixels may differ from the input's."""
    import cv2
    import jpeglib

    src = jpeglib.read_dct(str(loaded.path))
    gray = not src.has_chrominance
    chroma = src.Cb
    rows, cols = (chroma.shape[:2] if not gray else src.Y.shape[:2])
    ry, rx = -(-src.Y.shape[0] // rows), -(-src.Y.shape[1] // cols)  # luma blocks per MCU
    mcu = _mcu_grid(changed, 8 * ry, 8 * rx, rows, cols)
    if mcu.any():
        # Only the MCUs from the first to the last touched one are encoded again: blocks are coded
        # one by one (colour conversion, chroma averaging, DCT), so a crop that starts on an MCU
        # edge gives the same coefficients as the whole frame would (tests/test_jpeg_blocks.py).
        r = np.flatnonzero(mcu.any(axis=1))
        c = np.flatnonzero(mcu.any(axis=0))
        r0, r1, c0, c1 = int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1
        mh, mw = 8 * ry, 8 * rx
        crop = rgb[r0 * mh:r1 * mh, c0 * mw:c1 * mw]
        with tempfile.TemporaryDirectory(prefix="lasso-jpeg-") as tmp:
            pixels = np.ascontiguousarray(crop if not gray else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[:, :, None])
            re = jpeglib.from_spatial(pixels)
            re.samp_factor = src.samp_factor
            re.write_spatial(os.path.join(tmp, "re.jpg"), qt=src.qt, quant_tbl_no=src.quant_tbl_no)
            new = jpeglib.read_dct(os.path.join(tmp, "re.jpg"))
        part = mcu[r0:r1, c0:c1]
        luma = np.repeat(np.repeat(part, ry, 0), rx, 1)
        y = src.Y  # jpeglib's arrays are our own: changed in place, then written back
        ys, xs = slice(r0 * ry, r0 * ry + luma.shape[0]), slice(c0 * rx, c0 * rx + luma.shape[1])
        luma = luma[: y[ys, xs].shape[0], : y[ys, xs].shape[1]]
        y[ys, xs][luma] = new.Y[: luma.shape[0], : luma.shape[1]][luma]
        src.Y = y
        if not gray:
            for name in ("Cb", "Cr"):
                plane = getattr(src, name)
                plane[r0:r1, c0:c1][part] = getattr(new, name)[: r1 - r0, : c1 - c0][part]
                setattr(src, name, plane)
    with tempfile.TemporaryDirectory(prefix="lasso-jpeg-") as tmp:
        out = os.path.join(tmp, "out.jpg")
        src.write_dct(out)
        write_bytes(Path(out).read_bytes())
    if ry > 1 or rx > 1:  # subsampled chroma: the decoder's upsampling reaches one MCU further
        mcu = cv2.dilate(mcu.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    h, w = changed.shape
    return np.repeat(np.repeat(mcu, 8 * ry, 0), 8 * rx, 1)[:h, :w]
