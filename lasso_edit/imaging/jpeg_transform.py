"""`jpegtran -copy all` with some blocks replaced, in one pass: TurboJPEG's lossless transform
(`tjTransform`) with a custom filter that writes the new coefficients of the touched blocks as
each row of blocks goes by. The input is entropy-decoded once and coded again once, as jpegtran
does; nothing is converted to pixels.

Through ctypes to the system's libturbojpeg (Debian/Ubuntu `libturbojpeg0`, Homebrew `jpeg-turbo`,
present wherever `jpegtran` is); `available()` is False without it and jpeg_blocks.py writes
through jpeglib instead. The API (TurboJPEG 1.2+, still in 3.x): turbojpeg.h's tjInitTransform,
tjTransform, tjFree, tjDestroy, tjGetErrorStr2 and the tjtransform struct; the filter is called
once per component per row of blocks, `coeffs` pointing at that row (width_in_blocks blocks of 64
coefficients, natural order, quantised), `arrayRegion.y` the row's first sample (turbojpeg.c).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Patch:
    """New coefficients for part of one component: int16 (rows, cols, 8, 8) from block (row0, col0),
    written where `touched` (bool (rows, cols)) is True."""

    row0: int
    col0: int
    coef: np.ndarray
    touched: np.ndarray


class _Region(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("w", ctypes.c_int), ("h", ctypes.c_int)]


class _Transform(ctypes.Structure):
    pass


_Filter = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.POINTER(ctypes.c_short),
    _Region,
    _Region,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.POINTER(_Transform),
)
_Transform._fields_ = [
    ("r", _Region),
    ("op", ctypes.c_int),
    ("options", ctypes.c_int),
    ("data", ctypes.c_void_p),
    ("customFilter", _Filter),
]


@functools.cache
def _library() -> Any:
    """libturbojpeg with its signatures set, or None where it is not installed."""
    name = ctypes.util.find_library("turbojpeg")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        lib.tjInitTransform.restype = ctypes.c_void_p
        lib.tjInitTransform.argtypes = []
        lib.tjTransform.restype = ctypes.c_int
        lib.tjTransform.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_int,
            ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte)),
            ctypes.POINTER(ctypes.c_ulong),
            ctypes.POINTER(_Transform),
            ctypes.c_int,
        ]
        lib.tjFree.argtypes = [ctypes.c_void_p]
        lib.tjDestroy.argtypes = [ctypes.c_void_p]
        lib.tjGetErrorStr2.argtypes = [ctypes.c_void_p]
        lib.tjGetErrorStr2.restype = ctypes.c_char_p
    except (OSError, AttributeError):  # an old or foreign library without the transform API
        return None
    return lib


def available() -> bool:
    return _library() is not None


class TransformError(RuntimeError):
    """TurboJPEG refused the file (its own message), or the filter failed."""


def transform(data: bytes, patches: list[Patch | None]) -> bytes:
    """The JPEG `data` coded again losslessly (every marker kept, as `jpegtran -copy all`), with
    component c's blocks replaced by `patches[c]` (None: none). Raises TransformError."""
    lib = _library()
    if lib is None:
        raise TransformError("libturbojpeg is not installed")
    failure: list[BaseException] = []

    def on_row(coeffs: Any, array: _Region, plane: _Region, component: int, index: int, t: Any) -> int:
        try:
            _replace(coeffs, array, component, patches)
            return 0
        except BaseException as e:  # noqa: BLE001 - an exception cannot cross C: kept, then raised
            failure.append(e)
            return -1

    spec = _Transform()
    spec.customFilter = _Filter(on_row)  # kept alive by `spec` until tjTransform returns
    handle = lib.tjInitTransform()
    if not handle:
        raise TransformError("libturbojpeg could not start a transform")
    out = ctypes.POINTER(ctypes.c_ubyte)()
    size = ctypes.c_ulong(0)
    try:
        rc = lib.tjTransform(handle, data, len(data), 1, ctypes.byref(out), ctypes.byref(size), ctypes.byref(spec), 0)
        if failure:
            raise TransformError(f"the block filter failed: {failure[0]}") from failure[0]
        if rc != 0:  # an error, or a warning (a corrupt segment): the file is not written from it
            raise TransformError((lib.tjGetErrorStr2(handle) or b"unknown error").decode(errors="replace"))
        return ctypes.string_at(out, size.value)
    finally:
        if out:
            lib.tjFree(out)
        lib.tjDestroy(handle)


def _replace(coeffs: Any, array: _Region, component: int, patches: list[Patch | None]) -> None:
    """Write patch `component`'s blocks that fall in this row of blocks."""
    patch = patches[component] if component < len(patches) else None
    if patch is None:
        return
    row = array.y // 8 - patch.row0
    if not 0 <= row < patch.touched.shape[0]:
        return
    cols = np.flatnonzero(patch.touched[row])
    if len(cols) == 0:
        return
    blocks = np.ctypeslib.as_array(coeffs, shape=(array.w // 8, 8, 8))
    blocks[patch.col0 + cols] = patch.coef[row, cols]
