"""Map a VLM's box from the frame its vision tower saw back to pixels of the original image.

LLaVA-1.5 answers region questions with `[x0, y0, x1, y1]` as fractions of the image *as the
vision tower saw it* (docs/models.md). The hf processors build that frame in three steps, which we
replay exactly, as transformers 5 implements them:

1. `do_pad` (LlavaImageProcessor.pad_to_square): pad to a square of the longest side, the
   image centred with `(max_dim - side) // 2` pixels before it;
2. `do_resize`: `{"shortest_edge": s}` scales the short side to s and the long side to
   `int(s * long / short)` (image_transforms.get_resize_output_image_size); `{"height", "width"}`
   scales each axis to the given size;
3. `do_center_crop` (TorchvisionBackend.center_crop): `top = int((H - ch) / 2)`,
   `left = int((W - cw) / 2)`; a crop larger than the image pads it by `(c - side) // 2` first.

llava-1.5-hf ships `do_center_crop=True` without padding, so a wide photo's left and right edges
are outside the frame; a box touching the frame's edge then maps to the crop's edge, not the
photo's. LLaVA-NeXT and OneVision see the whole image (anyres tiles of the original plus a
resized overview), so their fractions are taken relative to the original image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar, overload

import numpy as np

from ..core.plan import Box
from .arrays import clip_box

_F = TypeVar("_F", float, np.ndarray)  # a coordinate, or an array of them


@overload
def size_field(size: object, key: str) -> int | None: ...
@overload
def size_field(size: object, key: str, default: int) -> int: ...
def size_field(size: object, key: str, default: int | None = None) -> int | None:
    """A field of a processor's size setting: a dict in some transformers versions, an object in
    others, or None. `default` when the field is missing or None."""
    if size is None:
        return default
    v = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return default if v is None else v


@dataclass(frozen=True)
class VisionFrame:
    """Forward map of a (width, height) image into the frame: u = ((x + pad_x) * sx - crop_x) / frame_w."""

    width: int
    height: int
    pad_x: float = 0.0
    pad_y: float = 0.0
    sx: float = 1.0
    sy: float = 1.0
    crop_x: float = 0.0
    crop_y: float = 0.0
    frame_w: float = 1.0
    frame_h: float = 1.0

    @classmethod
    def identity(cls, width: int, height: int) -> VisionFrame:
        return cls(width, height, frame_w=float(width), frame_h=float(height))

    @classmethod
    def from_image_processor(cls, ip: Any, width: int, height: int) -> VisionFrame:
        """Replay the processor's pad / resize / centre-crop on an image of this size."""
        name = type(ip).__name__
        if "LlavaNext" in name or "LlavaOnevision" in name:
            return cls.identity(width, height)
        w, h = float(width), float(height)
        pad_x = pad_y = 0.0
        if getattr(ip, "do_pad", False) and "Llava" in name:
            side = max(width, height)
            pad_x, pad_y = float((side - width) // 2), float((side - height) // 2)
            w = h = float(side)
        sx = sy = 1.0
        if getattr(ip, "do_resize", True) and ip.size is not None:
            short_target = size_field(ip.size, "shortest_edge")
            th, tw = size_field(ip.size, "height"), size_field(ip.size, "width")
            nw: float
            nh: float
            if short_target:
                short, long = (w, h) if w <= h else (h, w)
                new_short, new_long = short_target, int(short_target * long / short)
                nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
            elif th and tw:
                nw, nh = tw, th
            else:
                nw, nh = w, h
            sx, sy = nw / w, nh / h
            w, h = float(nw), float(nh)
        crop_x = crop_y = 0.0
        if getattr(ip, "do_center_crop", False) and ip.crop_size is not None:
            ch, cw = size_field(ip.crop_size, "height"), size_field(ip.crop_size, "width")
            if ch and cw:
                pad_l = (cw - w) // 2 if cw > w else 0
                pad_t = (ch - h) // 2 if ch > h else 0
                w2, h2 = max(w, cw), max(h, ch)
                crop_x = int((w2 - cw) / 2.0) - pad_l
                crop_y = int((h2 - ch) / 2.0) - pad_t
                w, h = float(cw), float(ch)
        return cls(width, height, pad_x, pad_y, sx, sy, float(crop_x), float(crop_y), w, h)

    def to_pixels(self, box: Box) -> Box:
        """Fractions [0, 1] of the frame -> XYXY pixels of the original image, clipped to it."""
        u0, v0, u1, v1 = box
        xs = [(u * self.frame_w + self.crop_x) / self.sx - self.pad_x for u in (u0, u1)]
        ys = [(v * self.frame_h + self.crop_y) / self.sy - self.pad_y for v in (v0, v1)]
        return clip_box((xs[0], ys[0], xs[1], ys[1]), (self.width, self.height))

    def points_to_pixels(self, u: _F, v: _F) -> tuple[_F, _F]:
        """Fractions of the frame -> XY pixels of the original image, unclipped (arrays welcome): a
        point in padding or outside a crop lands outside [0, width) x [0, height)."""
        return (u * self.frame_w + self.crop_x) / self.sx - self.pad_x, (
            v * self.frame_h + self.crop_y
        ) / self.sy - self.pad_y

    def to_frame(self, box: Box) -> Box:
        """XYXY pixels of the original image -> fractions of the frame (the inverse of to_pixels)."""
        x0, y0, x1, y1 = box
        us = [((x + self.pad_x) * self.sx - self.crop_x) / self.frame_w for x in (x0, x1)]
        vs = [((y + self.pad_y) * self.sy - self.crop_y) / self.frame_h for y in (y0, y1)]
        return us[0], vs[0], us[1], vs[1]
