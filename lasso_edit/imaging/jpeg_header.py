"""A JPEG file's frame, read from its markers without decoding it: the size, each component's
sampling factors and quantisation table, and whether its three components are YCbCr.

What jpeg_blocks.py needs to code the edited blocks as the file codes them, read in microseconds:
the segments before the first scan (ITU T.81, B.2: SOFn's frame header, B.2.4.1: DQT), walked by
their lengths."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Zig-zag position -> natural (row-major) position of the 8x8 block: T.81 Figure A.6, libjpeg's
# jpeg_natural_order. The anti-diagonals in turn (row + column), walked up and to the right on an
# even one, down and to the left on an odd one. A DQT segment lists its 64 values in this order.
ZIGZAG = np.array(sorted(range(64), key=lambda n: (n // 8 + n % 8, n // 8 if (n // 8 + n % 8) % 2 else n % 8)))
# SOFn markers with a DCT frame header: baseline, extended, progressive, Huffman or arithmetic
# (T.81 Table B.1). SOF3/7/11/15 are lossless and 5/6/7/13/14/15 hierarchical: not handled here.
_DCT_FRAMES = {0xC0, 0xC1, 0xC2, 0xC9, 0xCA}
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM and RSTn carry no length


@dataclass(frozen=True)
class Frame:
    """What the frame header and the tables before the first scan say."""

    width: int
    height: int
    ids: tuple[int, ...]  # component identifiers
    sampling: np.ndarray  # int (components, 2): (vertical, horizontal) sampling factor, as jpeglib orders them
    tables: list[np.ndarray]  # per component, its quantisation table: uint16 8x8, natural order
    ycc: bool  # three components coded as YCbCr (libjpeg's guess from JFIF, Adobe and the ids)
    tables_later: bool  # a DQT segment after the first scan (a progressive file may redefine tables)

    @property
    def gray(self) -> bool:
        return len(self.ids) == 1

    def blocks(self, c: int) -> tuple[int, int]:
        """Component `c`'s size in 8x8 blocks (rows, columns), as libjpeg counts them (jdinput.c,
        initial_setup: jdiv_round_up(image_height * v_samp_factor, max_v_samp_factor * DCTSIZE))."""
        vmax, hmax = self.sampling.max(axis=0)
        v, h = self.sampling[c]
        return int(-(-self.height * v // (vmax * 8))), int(-(-self.width * h // (hmax * 8)))


class NotAFrame(ValueError):
    """The bytes are not a JPEG this reader handles (no SOI, a lossless or hierarchical frame,
    12-bit samples, a table missing, or a truncated header)."""


def read_frame(data: bytes) -> Frame:
    """The frame of the JPEG `data` (its whole bytes). Raises NotAFrame."""
    if data[:2] != b"\xff\xd8":
        raise NotAFrame("no JPEG start-of-image marker")
    tables: dict[int, np.ndarray] = {}
    frame: tuple[int, int, list[tuple[int, int, int, int]]] | None = None
    jfif = adobe = False
    transform = -1
    i = 2
    while True:
        marker, i = _next_marker(data, i)
        if marker in _STANDALONE:
            continue
        if i + 2 > len(data):
            raise NotAFrame("the header is cut short")
        length = int.from_bytes(data[i : i + 2], "big")
        body = data[i + 2 : i + length]
        if len(body) != length - 2:
            raise NotAFrame("the header is cut short")
        if marker == 0xDA:  # the first scan: the frame is known
            break
        if marker == 0xDB:
            tables.update(_dqt(body))
        elif marker in _DCT_FRAMES:
            frame = _sof(body)
        elif 0xC3 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            raise NotAFrame(f"a lossless or hierarchical JPEG (SOF{marker - 0xC0})")
        elif marker == 0xE0 and body[:5] == b"JFIF\x00":
            jfif = True
        elif marker == 0xEE and body[:5] == b"Adobe" and len(body) >= 12:
            adobe, transform = True, body[11]
        i += length
    if frame is None:
        raise NotAFrame("no frame header before the first scan")
    height, width, comps = frame
    if any(tq not in tables for *_, tq in comps):
        raise NotAFrame("a component's quantisation table is not defined before the first scan")
    ids = tuple(c[0] for c in comps)
    return Frame(
        width=width,
        height=height,
        ids=ids,
        sampling=np.array([(v, h) for _, h, v, _ in comps], dtype=int),
        tables=[tables[tq] for *_, tq in comps],
        ycc=len(ids) == 3 and _is_ycc(ids, jfif, adobe, transform),
        tables_later=data.find(b"\xff\xdb", i) != -1,  # in coded data a 0xFF is followed by 0x00 or RSTn
    )


def _next_marker(data: bytes, i: int) -> tuple[int, int]:
    """(marker, index after it) of the marker at `i`; fill bytes (0xFF runs) skipped."""
    if i >= len(data) or data[i] != 0xFF:
        raise NotAFrame("the header is corrupt: a marker was expected")
    while i < len(data) and data[i] == 0xFF:
        i += 1
    if i >= len(data):
        raise NotAFrame("the header is cut short")
    return data[i], i + 1


def _dqt(body: bytes) -> dict[int, np.ndarray]:
    """The tables of one DQT segment (T.81 B.2.4.1): Pq (0: 8-bit, 1: 16-bit values), Tq, 64 values
    in zig-zag order; as 8x8 natural order."""
    out, j = {}, 0
    while j < len(body):
        pq, tq = body[j] >> 4, body[j] & 15
        size = 64 * (2 if pq else 1)
        raw = body[j + 1 : j + 1 + size]
        if len(raw) != size:
            raise NotAFrame("a quantisation table is cut short")
        values = np.frombuffer(raw, dtype=">u2" if pq else np.uint8).astype(np.uint16)
        natural = np.empty(64, np.uint16)
        natural[ZIGZAG] = values
        out[tq] = natural.reshape(8, 8)
        j += 1 + size
    return out


def _sof(body: bytes) -> tuple[int, int, list[tuple[int, int, int, int]]]:
    """(height, width, [(id, h, v, tq)]) of a frame header (T.81 B.2.2)."""
    if len(body) < 6 or body[0] != 8:
        raise NotAFrame(f"{body[0] if body else '?'}-bit samples (8-bit JPEGs only)")
    height, width, n = int.from_bytes(body[1:3], "big"), int.from_bytes(body[3:5], "big"), body[5]
    if len(body) < 6 + 3 * n or n not in (1, 3) or height == 0:
        raise NotAFrame("a frame header Lasso does not handle (not 1 or 3 components, or no height)")
    comps = [(body[6 + 3 * k], body[7 + 3 * k] >> 4, body[7 + 3 * k] & 15, body[8 + 3 * k]) for k in range(n)]
    if any(not (1 <= h <= 4 and 1 <= v <= 4) for _, h, v, _ in comps):
        raise NotAFrame("sampling factors outside 1-4")
    return height, width, comps


def _is_ycc(ids: tuple[int, ...], jfif: bool, adobe: bool, transform: int) -> bool:
    """Whether three components are YCbCr, as libjpeg guesses (jdapimin.c, default_decompress_parms):
    a JFIF marker says YCbCr; else an Adobe marker's transform (0: RGB); else the ids ('R','G','B': RGB)."""
    if jfif:
        return True
    if adobe:
        return transform != 0
    return ids != (0x52, 0x47, 0x42)
