"""arrays: the masked copy and the feather, against the plain numpy they replace."""


import numpy as np
import pytest

from lasso_edit.core.plan import Action
from lasso_edit.imaging.arrays import composite, copy_where, feather, mask_bbox
from lasso_edit.pipeline.refine import RefineSettings, refine

from ..helpers import masked_scenes


@pytest.mark.parametrize("dtype,channels,layout", [
    (np.uint8, 3, "whole"), (np.uint8, 3, "window"), (np.uint8, None, "window"), (np.uint16, 3, "window"),
    (np.float32, 4, "window"), (">u2", 3, "whole"), (np.uint16, 4, "first three channels"), (np.int32, 3, "whole"),
    (np.uint8, 5, "whole"),
])
def test_copy_where_is_numpy_copyto_for_every_layout(dtype, channels, layout):
    """Issue 17: OpenCV's masked copy where it applies, numpy's elsewhere; the same result."""
    rng = np.random.default_rng(0)
    shape = (50, 70) if channels is None else (50, 70, channels)
    base = rng.integers(0, 255, shape).astype(dtype)
    src_full = rng.integers(0, 255, shape).astype(dtype)
    where_full = rng.random((50, 70)) < 0.4
    want, got = base.copy(), base.copy()
    if layout == "whole":
        dst_w, dst_g, src, where = want, got, src_full, where_full
    elif layout == "window":
        dst_w, dst_g, src, where = want[5:40, 7:60], got[5:40, 7:60], src_full[5:40, 7:60], where_full[5:40, 7:60]
    else:
        dst_w, dst_g, src, where = want[..., :3], got[..., :3], src_full[..., :3], where_full
    np.copyto(dst_w, src, where=where if src.ndim == 2 else where[:, :, None])
    copy_where(dst_g, src, where)
    assert (got == want).all() and got.dtype == want.dtype


@pytest.mark.parametrize("inward", [False, True])
def test_the_feather_in_place_is_the_feather_by_formula(inward):
    import cv2

    rng = np.random.default_rng(2)
    region = cv2.resize(rng.random((6, 8)).astype(np.float32), (90, 70)) > 0.5
    for radius in (1, 3, 7, 40):
        if inward:
            dist = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, 5)
            want = np.clip(dist / radius, 0.0, 1.0).astype(np.float32) * region
        else:
            dist = cv2.distanceTransform((~region).astype(np.uint8), cv2.DIST_L2, 5)
            want = np.clip(1.0 - dist / (radius + 1), 0.0, 1.0).astype(np.float32)
        got = feather(region, radius, inward)
        assert got.dtype == np.float32 and (got == want).all()


def _blend_reference(o, e, a):  # the whole-frame formula the editor used before the windowed one
    a3 = a[:, :, None].astype(np.float32)
    out = np.clip(np.round(o.astype(np.float32) * (1 - a3) + e.astype(np.float32) * a3), 0, 255).astype(np.uint8)
    return np.where(a3 > 0, out, o)


def test_composite_in_the_window_equals_the_whole_frame_blend():
    for img, m in masked_scenes(10, seed=5):
        _, alpha = refine(m, Action.REMOVE, RefineSettings(feather=6), img)
        edited = img[::-1, ::-1].copy()
        got = composite(img, edited, alpha)
        assert (got == _blend_reference(img, edited, alpha)).all()
        assert (got == composite(img, edited, alpha, mask_bbox(alpha > 0))).all()


def test_mask_bbox():
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = np.zeros((50, 70), bool)
        m[rng.integers(0, 50, 5), rng.integers(0, 70, 5)] = True
        ys, xs = np.nonzero(m)
        assert mask_bbox(m) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert mask_bbox(np.zeros((4, 4), bool)) is None


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "P", "I;16", "1", "CMYK"])
def test_pixels_of_is_numpys_view_of_the_image_as_a_writable_copy(mode):
    from PIL import Image

    from lasso_edit.imaging.arrays import pixels_of

    rgba = np.random.default_rng(0).integers(0, 256, (301, 457, 4), dtype=np.uint8)
    img = Image.fromarray(rgba, "RGBA").convert(mode)
    out = pixels_of(img)
    assert out.dtype == np.asarray(img).dtype and np.array_equal(out, np.asarray(img)) and out.flags.writeable
    out[0, 0] = 0  # a copy: the image is untouched
    assert np.array_equal(np.asarray(img), np.asarray(Image.fromarray(rgba, "RGBA").convert(mode)))


def test_image_key_follows_every_pixel_and_the_shape():
    from lasso_edit.imaging.arrays import image_key

    a = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    b = a.copy()
    b[29, 39, 2] ^= 1  # one bit of the last pixel
    assert image_key(a) == image_key(a.copy()) and image_key(a) != image_key(b)
    assert image_key(a) != image_key(a.reshape(40, 30, 3)) and len(image_key(a)) == 32
    assert image_key(a[:, ::2]) == image_key(np.ascontiguousarray(a[:, ::2]))  # a view hashes as its pixels
