"""Where Lasso's images and masks are converted between its conventions and PIL, cropped, pasted,
composited and resized to fit (shrink, crops for the painter), so every stage shares one rounding.
Resizing that belongs to one algorithm stays with it: SAM's long side (segment/sam.py), a
pixelation's block average (edit/adjust.py), a heatmap rendered to the photo (ground/attention.py),
JPEG chroma subsampling (jpeg_blocks.py), the metrics' and training data's reference pipelines.

Inside Lasso an image is a numpy array, RGB, uint8, HxWx3, values in [0, 255]; a mask is a bool
HxW array of the same height and width; a soft mask (alpha) is float32 HxW in [0, 1]; boxes are
XYXY floats in pixels of the original image. PIL appears only at the boundary: files (imaging/)
and the model processors (to_pil / from_pil here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

BoxLike = Sequence[float] | np.ndarray  # XYXY pixels: a tuple, a list or an array of four numbers


def mask_to_image(alpha: np.ndarray) -> Image.Image:
    """A soft or hard mask as an 8-bit grayscale image: 0 = untouched, 255 = fully repainted.

    Any weight above zero maps to at least 1, so 0 in the PNG means bit-identical output.
    """
    a = alpha.astype(np.float32)
    return Image.fromarray(np.ceil(np.clip(a, 0, 1) * 255).astype(np.uint8), "L")


def to_pil(rgb: np.ndarray) -> Image.Image:
    """RGB uint8 HxWx3 array -> PIL image (for model processors)."""
    return Image.fromarray(rgb, "RGB")


def from_pil(img: Image.Image) -> np.ndarray:
    """PIL image -> RGB uint8 HxWx3 array."""
    return pixels_of(img if img.mode == "RGB" else img.convert("RGB"))


_RAW_CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}  # 8-bit modes `pixels_of` unpacks itself
_UNPACK_BLOCK = 1 << 20  # bytes unpacked at a time: a block stays in the CPU's cache until it is copied


def pixels_of(img: Image.Image) -> np.ndarray:
    """The pixels of a PIL image as a new, writable uint8 array: HxW for L, HxWxC for LA, RGB, RGBA.

    Unpacked once, block by block, straight into the array. `np.asarray(img)` unpacks the whole
    image into blocks of bytes, joins them into a second copy and gives a read-only view of it,
    so a writable array cost a third copy (72 MB each at 24 MP). Other modes: `np.array(img)`."""
    channels = _RAW_CHANNELS.get(img.mode)
    if channels is None:
        return np.array(img)
    img.load()
    w, h = img.size
    out = np.empty((h, w) if channels == 1 else (h, w, channels), np.uint8)
    if out.size == 0:
        return out
    flat = out.data.cast("B")
    encoder = Image._getencoder(img.mode, "raw", img.mode)
    try:
        encoder.setimage(img.im, (0, 0, w, h))
        pos, err = 0, 0
        while not err:
            _, err, data = encoder.encode(max(_UNPACK_BLOCK, w * 4))
            flat[pos : pos + len(data)] = data
            pos += len(data)
    finally:
        encoder.cleanup()
    if err < 0 or pos != out.size:
        raise RuntimeError(f"Pillow's raw encoder failed ({err}) unpacking a {img.mode} image")
    return out


def image_key(rgb: np.ndarray) -> str:
    """A content hash of an image (used to cache SAM embeddings per image, in this process only).

    SHA-256 through OpenSSL, which uses the CPU's SHA instructions where it has them: 0.04 CPU-s
    for a 24 MP photo's 72 MB against blake2b's 0.10 (CPython's own, portable C)."""
    import hashlib

    h = hashlib.sha256(str(rgb.shape).encode())
    h.update(np.ascontiguousarray(rgb).data)
    return h.hexdigest()[:32]


# --------------------------------------------------------------------------- geometry of pixels
def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize RGB uint8 HxWx3 to `size` = (width, height): area filter down, Lanczos up."""
    import cv2

    w, h = size
    if (w, h) == (rgb.shape[1], rgb.shape[0]):
        return rgb.copy()
    down = w * h < rgb.shape[0] * rgb.shape[1]
    return cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if down else cv2.INTER_LANCZOS4)


def shrink(rgb: np.ndarray, max_long: int | None = None, max_short: int | None = None) -> np.ndarray:
    """An RGB uint8 HxWx3 image area-resized down so that its long side is at most `max_long` and
    its short side at most `max_short` (aspect ratio kept); the same array, not a copy, when it
    already fits. Model processors get these instead of a 24 MP array: they resize to a few
    hundred pixels anyway, and resizing a full frame through PIL costs more than the model."""
    import cv2

    h, w = rgb.shape[:2]
    scale = 1.0
    if max_long:
        scale = min(scale, max_long / max(h, w))
    if max_short:
        scale = min(scale, max_short / min(h, w))
    if scale >= 1.0:
        return rgb
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a bool HxW mask to `size` = (width, height), nearest-neighbour."""
    import cv2

    w, h = size
    return cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Integer XYXY box (exclusive right/bottom) of a bool mask's True pixels, or None if empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return None
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[y0:y1].any(axis=0))
    return int(cols[0]), y0, int(cols[-1]) + 1, y1


def box_to_mask(box: BoxLike, shape: tuple[int, int]) -> np.ndarray:
    """A bool HxW mask that is True inside the XYXY pixel box."""
    h, w = shape
    x0, y0, x1, y1 = clip_box(box, (w, h))
    m = np.zeros((h, w), dtype=bool)
    m[int(np.floor(y0)) : int(np.ceil(y1)), int(np.floor(x0)) : int(np.ceil(x1))] = True
    return m


def clip_box(box: BoxLike, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """Order a box's corners and clip it to an image of `size` = (width, height)."""
    w, h = size
    x0, y0, x1, y1 = (float(v) for v in box)
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    return max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)


def crop_window(
    region: np.ndarray, margin: float = 0.25, min_side: int = 64, max_aspect: float = 3.0
) -> tuple[int, int, int, int]:
    """The crop to inpaint for a bool HxW `region`: its bounding box grown by `margin` of its size
    for context, at least `min_side` pixels a side where the image allows, and no more elongated
    than `max_aspect` where the image allows. Integer XYXY, exclusive right/bottom.
    """
    h, w = region.shape
    bb = mask_bbox(region)
    if bb is None:
        return 0, 0, w, h
    x0, y0, x1, y1 = bb
    bw, bh = x1 - x0, y1 - y0
    grow = margin * max(bw, bh)
    cw = min(w, max(bw + 2 * grow, min_side))
    ch = min(h, max(bh + 2 * grow, min_side))
    cw = min(w, max(cw, ch / max_aspect))
    ch = min(h, max(ch, cw / max_aspect))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - cw / 2, 0), w - cw)))
    top = int(round(min(max(cy - ch / 2, 0), h - ch)))
    return left, top, min(w, left + int(round(cw))), min(h, top + int(round(ch)))


def model_size(crop_w: int, crop_h: int, native: int, multiple: int = 8) -> tuple[int, int]:
    """The (width, height) to run a model of native resolution `native` on a crop of this size:
    about native*native pixels, the crop's aspect ratio kept (never squashed to a square), each
    side a multiple of `multiple` and at least a quarter of `native`, the longer at most 2*native.
    """
    aspect = crop_w / crop_h
    w = native * aspect**0.5
    h = native / aspect**0.5
    scale = min(1.0, 2 * native / max(w, h))
    w, h = w * scale, h * scale
    lo = max(multiple, (native // 4) // multiple * multiple)

    def snap(v: float) -> int:
        return max(lo, int(round(v / multiple)) * multiple)

    return snap(w), snap(h)


def paste(base: np.ndarray, patch: np.ndarray, window: tuple[int, int, int, int]) -> np.ndarray:
    """A copy of `base` with `patch` (HxWx3, the window's size) written into `window` (XYXY ints)."""
    x0, y0, x1, y1 = window
    out = base.copy()
    out[y0:y1, x0:x1] = patch
    return out


_CV_COPY_TYPES = {np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)}


def copy_where(dst: np.ndarray, src: np.ndarray, where: np.ndarray) -> None:
    """dst[where] = src[where] in place, for HxW or HxWxC arrays and a bool HxW `where`:
    `np.copyto(dst, src, where=where[..., None])`, through OpenCV's masked copy where it can (40x
    faster on 24 MP; native-order uint8, uint16 and float32 with at most 4 channels)."""
    import cv2

    rows_contiguous = dst.strides[-1] == dst.itemsize and (
        dst.ndim == 2 or dst.strides[1] == dst.shape[2] * dst.itemsize
    )
    if (
        dst.dtype in _CV_COPY_TYPES
        and src.dtype == dst.dtype
        and dst.shape == src.shape
        and (dst.ndim == 2 or dst.shape[2] <= 4)
        and rows_contiguous
        and dst.flags.writeable
    ):
        result = cv2.copyTo(src, where.view(np.uint8), dst)
        if np.shares_memory(result, dst):  # OpenCV wrote into dst itself
            return
    np.copyto(dst, src, where=where if dst.ndim == 2 else where[:, :, None])


def feather(region: np.ndarray, radius: int, inward: bool = False) -> np.ndarray:
    """A float32 HxW alpha in [0, 1] that ramps linearly over `radius` pixels at the region's edge.

    inward=False: alpha is 1 on `region` and fades to 0 outside it; the region must already be
    dilated by `radius` for the ramp to lie inside what may change. inward=True: alpha is 0
    outside `region` and ramps up inside it, so nothing outside `region` changes (background
    edits keep the subject bit-identical this way). Either way alpha is 0 outside `region`
    when inward=True, and outside `region` dilated by `radius` when inward=False.
    """
    import cv2

    if radius <= 0 or not region.any():
        return region.astype(np.float32)
    # the arithmetic in place on the float32 distances (each step as np.clip(1 - dist / r) would
    # round it): the same values, without five full-size temporaries
    if inward:
        dist = cv2.distanceTransform(region.view(np.uint8), cv2.DIST_L2, 5)
        np.divide(dist, radius, out=dist)
        np.minimum(dist, 1.0, out=dist)  # >= 0 already; 0 outside the region, whose distance is 0
        return dist
    dist = cv2.distanceTransform(np.logical_not(region).view(np.uint8), cv2.DIST_L2, 5)
    np.divide(dist, radius + 1, out=dist)
    np.subtract(1.0, dist, out=dist)
    np.maximum(dist, 0.0, out=dist)  # <= 1 already
    return dist


def composite(
    original: np.ndarray, edited: np.ndarray, alpha: np.ndarray, window: tuple[int, int, int, int] | None = None
) -> np.ndarray:
    """Blend `edited` over `original` (both RGB uint8 HxWx3) with `alpha` (float32 HxW in [0, 1]).

    Every pixel where alpha == 0 is copied from `original`, bit for bit. `window` (XYXY ints,
    exclusive) bounds where alpha > 0, when the caller knows it: only that part is blended.
    """
    if window is None:
        window = mask_bbox(alpha > 0)
    out = original.copy()
    if window is None:
        return out
    import cv2

    x0, y0, x1, y1 = window
    a = alpha[y0:y1, x0:x1]  # OpenCV reads a window of rows in place (no contiguous copy)
    if a.dtype != np.float32 or a.strides[1] != a.itemsize:
        a = np.ascontiguousarray(a, dtype=np.float32)
    o, e, view = original[y0:y1, x0:x1], edited[y0:y1, x0:x1], out[y0:y1, x0:x1]
    copy_where(view, e, a >= 1.0)  # the core: the edited pixels as they are
    # the feathered edge (0 < alpha < 1) in one OpenCV pass (numpy's three passes and boolean
    # gathers over a 60% mask of 24 MP cost 0.1 s), its pixels listed by OpenCV's findNonZero
    # (numpy's flatnonzero of the same uint8 mask: 31 ms there, findNonZero 5; the window's
    # contiguous copy saved 13 more): a float blend of the few pixels there
    rim = cv2.findNonZero(cv2.inRange(a, _ABOVE_ZERO, _BELOW_ONE))  # None, or int32 (x, y) pairs
    if rim is not None:
        rim = rim.reshape(-1, 2)  # N x 1 x 2 or N x 2, by OpenCV's version
        xs, ys = rim[:, 0], rim[:, 1]
        w = a[ys, xs][:, None]
        view[ys, xs] = np.clip(
            np.round(o[ys, xs].astype(np.float32) * (1.0 - w) + e[ys, xs].astype(np.float32) * w), 0, 255
        ).astype(np.uint8)
    return out


_ABOVE_ZERO = float(np.nextafter(np.float32(0), np.float32(1)))  # the least positive float32
_BELOW_ONE = float(np.nextafter(np.float32(1), np.float32(0)))  # the greatest float32 below 1


def union_max(union: np.ndarray, alpha: np.ndarray, window: tuple[int, int, int, int] | None) -> None:
    """union = max(union, alpha) in place, inside `window` (XYXY ints) where alpha may be non-zero."""
    if window is None:
        return
    x0, y0, x1, y1 = window
    np.maximum(union[y0:y1, x0:x1], alpha[y0:y1, x0:x1], out=union[y0:y1, x0:x1])


def ellipse_mask(box: BoxLike, shape: tuple[int, int]) -> np.ndarray:
    """A bool HxW mask of the ellipse inscribed in the XYXY pixel box (where an added object goes)."""
    import cv2

    h, w = shape
    x0, y0, x1, y1 = clip_box(box, (w, h))
    m = np.zeros((h, w), dtype=np.uint8)
    center = (int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2)))
    axes = (max(1, int(round((x1 - x0) / 2))), max(1, int(round((y1 - y0) / 2))))
    cv2.ellipse(m, center, axes, 0, 0, 360, 1, thickness=-1)
    return m.astype(bool)
