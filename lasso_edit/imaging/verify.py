"""Proof of preservation: what changed between two images, outside a mask and inside it.

    v = verify(before, after, mask)        # LoadedImage or arrays; mask: 0 kept, > 0 may change
    v.identical_outside, v.changed_outside, v.psnr_outside, v.line()

"Outside" is where the mask is 0 (Lasso's `--mask-out` convention: 0 kept, anything above 0 allowed
to change); without a mask everything is outside. A pixel changed when any of its samples
differs, each file read at its own depth when the two share it: 16-bit RGB(A) and grey + alpha
(deep.py), 16-bit grey, 32-bit integer and float grey, CMYK's inks, 1-bit; else (two depths, or
palette and 8-bit modes) the 8-bit RGB and the alpha, a 16-bit one rounded to 8 bits (a missing
alpha counts as opaque). `bits` says which depth was compared.

The field's preservation numbers are PIE-Bench's (Ju et al., ICLR 2024), computed as its own
evaluation code does (cure-lab/PnPInversion, evaluation/matrics_calculator.py: both images on
[0, 1], the edit region zeroed in both, then torchmetrics over the whole frame): MSE = the mean
squared difference over every pixel and channel of the masked images, PSNR = 10 log10(1 / MSE)
(infinite, `None` here, when nothing outside differs), SSIM = torchmetrics' default (11x11
Gaussian window, sigma 1.5, K1 0.01, K2 0.03, per channel, reflect-padded, the 5-pixel border left
out of the mean). So they sit beside PIE-Bench's published figures. `containment` is the share of
all changed pixels that lie inside the mask.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import InvalidInputError

if TYPE_CHECKING:
    from .decode import LoadedImage

Box = tuple[int, int, int, int]


@dataclass
class Verification:
    width: int
    height: int
    outside_pixels: int  # pixels where the mask is 0 (all of them without a mask)
    changed_outside: int
    changed_inside: int
    bbox_outside: Box | None  # XYXY (x1, y1 exclusive) around the changes outside; None: none
    mse_outside: float  # [0, 1] samples
    psnr_outside: float | None  # dB; None when nothing outside differs (infinite)
    ssim_outside: float | None  # None when there is no pixel outside
    containment: float | None  # changed inside / all changed; None when nothing changed
    identical_outside: bool
    decoded_jpeg: bool = False  # a JPEG was compared decoded (its own rounding is in the numbers)
    bits: int = 8  # the depth compared: 16 or 32 when both files hold it, 1 for two 1-bit files
    unread_bits: int = 0  # a file holds this many bits per sample, more than were compared (0: none)

    @property
    def inside_pixels(self) -> int:
        return self.width * self.height - self.outside_pixels

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bbox_outside"] = list(self.bbox_outside) if self.bbox_outside else None
        d["inside_pixels"] = self.inside_pixels
        return d

    def line(self) -> str:
        """One sentence: "outside the mask: 0 of 1,204,112 pixels changed"."""
        where = "outside the mask" if self.inside_pixels else "anywhere (no mask)"
        text = f"{where}: {self.changed_outside:,} of {self.outside_pixels:,} pixels changed"
        if self.changed_outside:
            text += f" (PSNR {self.psnr_outside:.1f} dB, box {list(self.bbox_outside or ())})"
        if self.decoded_jpeg:
            text += "; compared decoded (JPEG)"
        if self.unread_bits:
            text += f"; compared at {self.bits} bits, the files' {self.unread_bits}-bit samples' low bits unread"
        return text


@dataclass
class _Samples:
    """An image's samples for a comparison: HxWxC, the largest value one can take, its bits."""

    a: np.ndarray
    top: float
    bits: int
    space: str = "rgb"  # "rgb" (grey is RGB with one channel), "cmyk" or "float": the same space compares
    jpeg: bool = False


_SIXTEEN = ("I;16", "I;16B", "I;16L", "I;16N")


def _own(image: LoadedImage | np.ndarray) -> _Samples:
    """The samples the file holds, at its own depth: 16-bit colour (deep.py) and 16-bit grey whole,
    32-bit integer and float grey as they are, CMYK as its inks, 1-bit as 0 and 255, palette as
    its colours, the rest as 8-bit RGB(A). An array: as it is (uint16: 16 bits)."""
    from . import LoadedImage

    if not isinstance(image, LoadedImage):
        a = np.asarray(image)
        if a.ndim == 2:
            a = a[..., None]
        return _Samples(a, 65535, 16) if a.dtype == np.uint16 else _Samples(a, 255, 8)
    jpeg = (image.format or "").upper() in ("JPEG", "MPO")
    mode = image.mode
    if image.deep is not None:
        return _Samples(image.deep, 65535, 16, jpeg=jpeg)
    if mode in _SIXTEEN:
        return _Samples(np.asarray(image.original)[..., None], 65535, 16, jpeg=jpeg)
    if mode == "I":
        bits = _int_bits(image)
        return _Samples(np.asarray(image.original)[..., None], 2**bits - 1, bits, jpeg=jpeg)
    if mode == "F":
        a = np.asarray(image.original)[..., None]
        top = float(np.nanmax(np.abs(a), initial=0.0)) if a.size else 1.0
        return _Samples(a, max(1.0, top if math.isfinite(top) else 1.0), 32, "float", jpeg)
    if mode == "CMYK":
        return _Samples(np.asarray(image.original), 255, 8, "cmyk", jpeg)
    if mode == "1":
        return _Samples(np.asarray(image.original).astype(np.uint8)[..., None] * 255, 255, 1, jpeg=jpeg)
    return _common(image)


def _common(image: LoadedImage | np.ndarray) -> _Samples:
    """The footing any two images share: 16-bit RGB(A) where there is one, else 8-bit RGB and the
    alpha (a LoadedImage's `rgb` and `alpha`: what the models see)."""
    from . import LoadedImage

    if not isinstance(image, LoadedImage):
        return _own(image)
    jpeg = (image.format or "").upper() in ("JPEG", "MPO")
    if image.deep is not None:
        return _Samples(image.deep, 65535, 16, jpeg=jpeg)
    rgb = image.rgb if image.alpha is None else np.dstack([image.rgb, image.alpha])
    return _Samples(rgb, 255, 8, jpeg=jpeg)


def _int_bits(image: LoadedImage) -> int:
    """Bits per sample of a file Pillow reads as 32-bit integers ("I"): 16 for a PNG or a 16-bit
    PGM, a TIFF's BitsPerSample, else 32."""
    fmt = (image.format or "").upper()
    if fmt in ("PNG", "PPM"):
        return 16
    if fmt == "TIFF" and image.path is not None:
        from PIL import Image

        try:
            with Image.open(image.path) as f:
                bits = f.tag_v2.get(258)
            bits = bits[0] if isinstance(bits, tuple) else bits
            return int(bits) if bits in (8, 16, 32) else 32
        except Exception:  # noqa: BLE001 - the file was read once already; 32 bits is what Pillow holds
            return 32
    return 32


def _pair(
    before: LoadedImage | np.ndarray, after: LoadedImage | np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, int, bool]:
    """(before, after, top, bits, jpeg): the two on a common footing. Each at its own depth where
    the two have the same depth and space (two 16-bit grey PNGs compare at 16 bits, two CMYK TIFFs
    ink by ink); else both as `_common` reads them, and a 16-bit one against an 8-bit one at 8 bits,
    as the 8-bit one holds no more. Raises InvalidInputError when their sizes differ."""
    x, y = _own(before), _own(after)
    if x.a.shape[:2] != y.a.shape[:2]:
        (h0, w0), (h1, w1) = x.a.shape[:2], y.a.shape[:2]
        raise InvalidInputError(f"the images differ in size: before is {w0}x{h0}, after {w1}x{h1}")
    if x.bits != y.bits or x.space != y.space:
        x, y = _common(before), _common(after)
    a, b, top = _match(x.a, x.top, y.a, y.top)
    if x.space == "float":
        top = max(x.top, y.top)
    return a, b, top, x.bits if x.bits == y.bits else 8, x.jpeg or y.jpeg


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where any sample differs (HxW bool); two NaNs are the same sample."""
    if a.dtype == b.dtype and a.dtype in (np.uint8, np.uint16) and a.shape == b.shape and a.shape[2] <= 4:
        return _changed_samples(a, b)
    diff = a != b
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        diff &= ~(np.isnan(a) & np.isnan(b))
    return diff.any(axis=2)


def _changed_samples(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`_changed` for two integer images of one shape, ten times faster on a 24 MP photo (0.35 ->
    0.03 CPU-s): by strips of rows, OpenCV's SIMD absolute difference, then a strip with no
    difference (most of them, after an edit) is skipped whole and the others are reduced over
    their channels with an OR, where numpy's any(axis=2) walks three samples at a time."""
    import cv2

    h, w, c = a.shape
    out = np.zeros((h, w), dtype=bool)
    for y0 in range(0, h, STRIP):
        d = cv2.absdiff(
            np.ascontiguousarray(a[y0 : y0 + STRIP]).reshape(-1, w * c),
            np.ascontiguousarray(b[y0 : y0 + STRIP]).reshape(-1, w * c),
        )
        if cv2.countNonZero(d) == 0:
            continue
        d = d.reshape(-1, w, c)
        any_of = d[..., 0].copy()
        for k in range(1, c):
            any_of |= d[..., k]
        out[y0 : y0 + STRIP] = any_of != 0
    return out


def _match(a: np.ndarray, amax: float, b: np.ndarray, bmax: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The two on a common footing: the same channels (grey as RGB, a missing alpha opaque) and depth."""
    if amax != bmax:  # one 16-bit, one 8-bit (`_pair` sees to it): compare at 8 bits
        a = (a.astype(np.float64) / 257.0).round().astype(np.uint8) if amax == 65535 else a
        b = (b.astype(np.float64) / 257.0).round().astype(np.uint8) if bmax == 65535 else b
        amax = bmax = 255
    if a.shape[2] != b.shape[2]:
        a, b = _as_colour(a), _as_colour(b)
    if a.shape[2] == 3 and b.shape[2] == 4:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), amax, a.dtype)], axis=2)
    elif a.shape[2] == 4 and b.shape[2] == 3:
        b = np.concatenate([b, np.full(b.shape[:2] + (1,), bmax, b.dtype)], axis=2)
    return a, b, amax


def _as_colour(a: np.ndarray) -> np.ndarray:
    """Grey (HxWx1) as RGB, grey and alpha (HxWx2) as RGBA; colour as it is."""
    if a.shape[2] == 1:
        return np.repeat(a, 3, axis=2)
    if a.shape[2] == 2:
        return np.concatenate([np.repeat(a[..., :1], 3, axis=2), a[..., 1:]], axis=2)
    return a


def _inside(mask: np.ndarray | None, h: int, w: int) -> np.ndarray:
    """Where a mask (HxW, or HxWxC: any channel) allows changes (> 0); nowhere without a mask."""
    if mask is None:
        return np.zeros((h, w), dtype=bool)
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m.max(axis=2)
    if m.shape != (h, w):
        raise InvalidInputError(f"the mask is {m.shape[1]}x{m.shape[0]}; the images are {w}x{h}")
    return m if m.dtype == bool else m > 0


def allowed(mask: LoadedImage | np.ndarray) -> np.ndarray:
    """Where a mask image (a LoadedImage, as `lasso verify --mask` reads it) allows changes: bool HxW,
    True where any colour sample is above 0 at the file's own depth (a 16-bit mask's 100 of 65535
    counts; its alpha, if any, does not)."""
    s = _own(mask)
    colour = s.a[..., :1] if s.a.shape[2] in (1, 2) else s.a[..., :3] if s.space != "cmyk" else s.a
    return (np.nan_to_num(colour) > 0).any(axis=2)


def verify(
    before: LoadedImage | np.ndarray, after: LoadedImage | np.ndarray, mask: np.ndarray | None = None
) -> Verification:
    """Compare `after` with `before` (LoadedImage or arrays), outside and inside `mask` (HxW; > 0 may change)."""
    a, b, top, bits, jpeg = _pair(before, after)
    h, w = a.shape[:2]
    inside = _inside(mask, h, w)
    changed = _changed(a, b)
    if a.dtype.kind == "f" or b.dtype.kind == "f":  # the numbers below on finite samples
        a, b = np.nan_to_num(a), np.nan_to_num(b)
    # counted without a full-frame mask of each kind (100 MB apiece at 100 MP) where none changed outside
    n_ch, n_ch_in = int(np.count_nonzero(changed)), int(np.count_nonzero(changed & inside))
    n_out, n_ch_out = h * w - int(np.count_nonzero(inside)), n_ch - n_ch_in
    bbox, mse, ssim = None, 0.0, None
    if n_ch_out:
        outside = ~inside
        ch_out = changed & outside
        ys, xs = np.nonzero(ch_out.any(axis=1))[0], np.nonzero(ch_out.any(axis=0))[0]
        bbox = (int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)
        mse = _squares(a, b, ch_out, top) / (h * w * a.shape[2])  # PIE-Bench's: the masked images' MSE over the frame
        ssim = _ssim(a, b, outside, top)
    elif n_out:
        ssim = 1.0
    psnr = None if mse == 0.0 else 10.0 * math.log10(1.0 / mse)
    total = n_ch_out + n_ch_in
    return Verification(
        width=w,
        height=h,
        outside_pixels=n_out,
        changed_outside=n_ch_out,
        changed_inside=n_ch_in,
        bbox_outside=bbox,
        mse_outside=mse,
        psnr_outside=psnr,
        ssim_outside=ssim,
        containment=None if total == 0 or not inside.any() else n_ch_in / total,
        identical_outside=n_ch_out == 0,
        decoded_jpeg=jpeg,
        bits=bits,
        unread_bits=max((int(getattr(x, "unread_bits", 0) or 0) for x in (before, after)), default=0),
    )


STRIP = 256  # rows at a time: a 100 MP comparison never holds a float copy of the whole frame
_PAD = 5  # torchmetrics' SSIM leaves this border out of its mean (the 11x11 window's radius)


def _squares(a: np.ndarray, b: np.ndarray, where: np.ndarray, top: float) -> float:
    """The sum of squared differences, on [0, 1] samples, over the pixels `where` is True."""
    total = 0.0
    for y0 in range(0, a.shape[0], STRIP):
        m = where[y0 : y0 + STRIP]
        if m.any():
            d = (a[y0 : y0 + STRIP][m].astype(np.float64) - b[y0 : y0 + STRIP][m]) / top
            total += float((d * d).sum())
    return total


def _ssim(a: np.ndarray, b: np.ndarray, keep: np.ndarray, top: float) -> float:
    """torchmetrics' StructuralSimilarityIndexMeasure(data_range=1.0) of the two images with the
    pixels `keep` is False at zeroed in both (PIE-Bench's masking): the SSIM map of each channel,
    its 5-pixel border left out, averaged. Computed in strips of rows, each read with a margin of
    twice the window's radius so that its own rows are exactly the whole frame's."""
    h, w = keep.shape
    pad = _PAD if h > 2 * _PAD and w > 2 * _PAD else 0
    total, count = 0.0, 0
    for y0 in range(0, h, STRIP):
        lo, hi = max(0, y0 - 2 * _PAD), min(h, y0 + STRIP + 2 * _PAD)
        k = keep[lo:hi, :, None]
        m = _ssim_map(a[lo:hi] / top * k, b[lo:hi] / top * k)
        r0, r1 = max(y0, pad), min(y0 + STRIP, h - pad)
        if r1 > r0:
            part = m[r0 - lo : r1 - lo, pad : w - pad]
            total += float(part.sum())
            count += part.size
    return total / count


def _ssim_map(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The SSIM map (HxW, channels averaged) of two HxWxC images with samples in [0, 1]."""
    import cv2

    c1, c2 = 0.01**2, 0.03**2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    out = np.zeros(x.shape[:2], dtype=np.float64)
    for c in range(x.shape[2]):
        xc, yc = x[..., c].astype(np.float64), y[..., c].astype(np.float64)
        mx, my = blur(xc), blur(yc)
        sxx, syy, sxy = blur(xc * xc) - mx * mx, blur(yc * yc) - my * my, blur(xc * yc) - mx * my
        out += ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return out / x.shape[2]


def diff_picture(
    before: LoadedImage | np.ndarray, after: LoadedImage | np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Where it changed, as RGB uint8: the after image dimmed to grey, changes inside the mask in
    yellow, changes outside it in magenta, which nothing in a dimmed photo looks like."""
    a, b, top, _, _ = _pair(before, after)
    changed = _changed(a, b)
    inside = _inside(mask, *changed.shape)
    grey = (b[..., :3].astype(np.float64) / top).mean(axis=2) if b.shape[2] >= 3 else b[..., 0] / top
    out = np.repeat((40 + 60 * grey)[..., None], 3, axis=2).round().astype(np.uint8)
    out[changed & inside] = (255, 210, 0)
    out[changed & ~inside] = (255, 0, 255)
    return out


def prove(source: LoadedImage, written: str | os.PathLike | LoadedImage, alpha: np.ndarray) -> Verification:
    """The proof of an edit: the output as written (a path, decoded as Lasso loads inputs, or a
    LoadedImage) against its input (`source`, a LoadedImage), outside where `alpha` > 0."""
    from . import LoadedImage, load_image

    after = written if isinstance(written, LoadedImage) else load_image(written)
    if after is not written and after.deep is None and after.mode in _PLAIN:
        # its samples are in `rgb` and `alpha` (what verify reads for these modes): Pillow's own
        # decoded copy is let go before the comparison (400 MB at 100 MP)
        after.stored = None
    return verify(source, after, np.asarray(alpha) > 0)


_PLAIN = ("RGB", "RGBA", "L", "LA", "P", "PA")  # modes `_own` reads through `_common`: rgb and alpha


def line_of(d: dict) -> str:
    """Verification.line() from its to_dict() (a record read back, a server's answer)."""
    fields = {k: d[k] for k in Verification.__dataclass_fields__ if k in d}
    if fields.get("bbox_outside") is not None:
        fields["bbox_outside"] = tuple(fields["bbox_outside"])
    return Verification(**fields).line()


def credentials_report(
    before: LoadedImage | None, after: LoadedImage, data: bytes, trust: list[bytes] | None = None
) -> dict[str, Any]:
    """`lasso verify`'s `credentials`: whether AFTER's bytes `data` carry Content Credentials, their
    `state` ("Valid", "Trusted" or "Invalid", as c2pa reports it; a file changed after signing is
    Invalid), `signer`, `failures`, the `actions` with their `regions` ([x0, y0, x1, y1] pixels),
    the `ingredients`, and `changes_inside_regions`: whether every pixel that differs from BEFORE
    lies inside a signed region (None without BEFORE, at another size, with no regions, or with
    regions other than pixel rectangles, which Lasso does not write)."""
    from .credentials import mime_of_bytes, read

    mime = mime_of_bytes(data)
    found = read(data, mime, trust or []) if mime is not None else None
    if found is None:
        return {"present": False}
    manifest = found["manifest"] or {}
    actions = [
        _action(a)
        for s in manifest.get("assertions", [])
        if s.get("label", "").startswith("c2pa.actions")
        for a in s.get("data", {}).get("actions", [])
    ]
    ingredients = [
        {k: i.get(k) for k in ("title", "relationship", "active_manifest")} for i in manifest.get("ingredients", [])
    ]
    inside = None
    boxes = [r for a in actions for r in a["regions"]]
    other = any(a["other_regions"] for a in actions)  # a polygon or circle (another signer's): not checked here
    if before is not None and before.size == after.size and boxes and not other:
        region = np.zeros(after.rgb.shape[:2], dtype=bool)
        for x0, y0, x1, y1 in boxes:
            region[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = True
        inside = verify(before, after, region).identical_outside
    return {
        "present": True,
        "state": found["state"],
        "signer": found["signer"],
        "failures": found["failures"],
        "actions": actions,
        "ingredients": ingredients,
        "changes_inside_regions": inside,
    }


def _action(a: dict[str, Any]) -> dict[str, Any]:
    """One signed action as verify reports it: its name, sentence, source type, agent and rectangles."""
    regions, other = [], 0
    for change in a.get("changes") or []:
        for r in change.get("region") or []:
            shape = r.get("shape") or {}
            if shape.get("type") == "rectangle" and shape.get("unit", "pixel") == "pixel":
                x, y = int(shape["origin"]["x"]), int(shape["origin"]["y"])
                regions.append([x, y, x + int(shape["width"]), y + int(shape["height"])])
            else:
                other += 1
    agent = a.get("softwareAgent")
    return {
        "action": a.get("action"),
        "description": a.get("description"),
        "digitalSourceType": a.get("digitalSourceType"),
        "softwareAgent": agent.get("name") if isinstance(agent, dict) else agent,
        "regions": regions,  # rectangles in pixels, [x0, y0, x1, y1]
        "other_regions": other,  # regions of other shapes or units, counted
    }
