"""The masked blur's issue-34 speed-ups give the bytes of the code they replaced: the last pyrUp on
all four channels at once and on the crop's own columns only, one division call per strip, and
colour times mask as one masked AND."""

import numpy as np
import pytest

from lasso_edit.edit import blur
from lasso_edit.imaging.arrays import mask_bbox

from ..helpers import noise_image, scene

pytestmark = pytest.mark.unit


def _old_write_blurred(crop, m8, top, planes) -> None:
    """blur._write_blurred before issue 34: one plane at a time."""
    import cv2

    den = np.maximum(planes[3], np.float32(1e-6))
    value = cv2.merge([cv2.convertScaleAbs(cv2.divide(p, den)) for p in planes[:3]])
    n = len(value)
    cv2.copyTo(value, m8[top : top + n], crop[top : top + n])


def _old_four_channel(crop, m8, first, last, left=0, right=0):
    """blur._four_channel before issue 34's third round: colour times mask channel by channel."""
    import cv2

    h = m8.shape[0]
    a = min(max(first, 0), h - 1)
    b = max(min(last, h), a + 1)
    top = min(max(a - first, 0), last - first - (b - a))
    bottom = last - first - (b - a) - top
    c, mm = crop[a:b], m8[a:b]
    four = cv2.merge([c[..., 0] * mm, c[..., 1] * mm, c[..., 2] * mm, mm])
    if top or bottom or left or right:
        four = cv2.copyMakeBorder(four, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return four.astype(np.float32)


def _old_masked_blur(image, region, sigma) -> None:
    """blur.masked_blur before issue 34: the planes split, each pyrUp'd over the padded width."""
    import cv2

    x0, y0, x1, y1 = mask_bbox(region)
    reach = int(np.ceil(3 * sigma))
    h, w = region.shape
    cx0, cy0, cx1, cy1 = max(0, x0 - reach), max(0, y0 - reach), min(w, x1 + reach), min(h, y1 + reach)
    m8 = region[cy0:cy1, cx0:cx1].view(np.uint8)
    crop = image[cy0:cy1, cx0:cx1]
    h, w = m8.shape
    k = blur.levels_for(sigma)
    rows = blur.ROWS
    if k == 0:
        four = _old_four_channel(crop, m8, 0, h)
        planes = cv2.split(cv2.GaussianBlur(four, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE))
        for top in range(0, h, rows):
            _old_write_blurred(crop, m8, top, [p[top : top + rows] for p in planes])
        return
    pad, step = 2 ** (k + 2), 2**k
    ph, pw = -(-(h + 2 * pad) // step) * step, -(-(w + 2 * pad) // step) * step
    half = rows // 2
    level1 = np.empty((ph // 2, pw // 2, 4), np.float32)
    for a in range(0, ph // 2, half):
        b = min(a + half, ph // 2)
        four = _old_four_channel(crop, m8, 2 * a - 2 - pad, 2 * b + 2 - pad, pad, pw - w - pad)
        level1[a:b] = cv2.pyrDown(four, borderType=cv2.BORDER_REPLICATE)[1 : 1 + b - a]
    planes = cv2.split(blur._coarse(level1, k, sigma))
    for top in range(0, h, rows):
        bottom = min(top + rows, h)
        r0, r1 = (top + pad) // 2, -(-(bottom + pad) // 2)
        lo, hi = r0 - 1, min(r1 + 1, ph // 2)
        first = top + pad - 2 * lo
        ups = [
            cv2.pyrUp(p[lo:hi], dstsize=(pw, 2 * (hi - lo)))[first : first + bottom - top, pad : pad + w]
            for p in planes
        ]
        _old_write_blurred(crop, m8, top, ups)


def _cases():
    h, w = 300, 401
    yy, xx = np.mgrid[:h, :w]
    subject = ((xx - w * 0.45) / (w * 0.3)) ** 2 + ((yy - h * 0.5) / (h * 0.35)) ** 2 < 1
    one = np.zeros((h, w), bool)
    one[150, 200] = True
    return [
        (scene(h, w), subject),
        (scene(h, w), ~subject),
        (noise_image(h, w, seed=4), xx > w - 25),
        (noise_image(h, w, seed=2), yy < 3),
        (noise_image(h, w, seed=3), one),
        (noise_image(1, 7, seed=5), np.ones((1, 7), bool)),
        (noise_image(37, 1, seed=6), np.ones((37, 1), bool)),
    ]


@pytest.mark.parametrize("rows", [256, 18])
@pytest.mark.parametrize("sigma", [2.0, 6.0, 6.5, 9.0, 31.0, 150.0, 500.0])
def test_the_blur_gives_the_bytes_of_the_plane_by_plane_blur(sigma, rows, monkeypatch):
    monkeypatch.setattr(blur, "ROWS", rows)
    changed = 0
    for image, region in _cases():
        got, want = image.copy(), image.copy()
        blur.masked_blur(got, region, sigma, mask_bbox(region))
        _old_masked_blur(want, region, sigma)
        assert np.array_equal(got, want), (image.shape, sigma)
        changed += not np.array_equal(got, image)
    assert changed >= 4
