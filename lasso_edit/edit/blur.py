"""A Gaussian blur whose cost per pixel does not grow with sigma, and the masked blur built on it.

`cv2.GaussianBlur` convolves with a kernel 8 sigma wide, so its cost per pixel grows with sigma: the
default background blur of a 24 MP photo (sigma about 320 px) took half an hour (issue 17). Past a
small sigma the blurred picture is smooth, so most of the blur can run on a coarser grid:

1. k levels of `cv2.pyrDown` (5-tap binomial, then every second pixel). The binomial's response
   is zero at the grid's Nyquist frequency, so what folds back (aliases) into the low frequencies
   that survive the blur is of order 1e-5 of the signal.
2. A Gaussian on the coarsest grid, of the variance that is left: each pyrDown and each pyrUp adds
   variance 1 in its finer grid's pixels (4^l full-size pixels at level l), so the coarse blur's is
   sigma^2 - 2 (4^k - 1) / 3, at least (3 coarse pixels)^2 so that step 3 interpolates a smooth signal.
3. k levels of `cv2.pyrUp` back to full size.

Borders: the photo is padded by edge replication first, as the direct blur treats its border, so
the pyramid's own border rule only ever sees copies of the edge. The full-size steps run a strip
of rows at a time, so no full-size float array is held; the last pyrUp runs on all four channels
at once and makes only the crop's own columns (the same bytes as plane by plane over the padded
width: tests/edit/test_blur.py keeps that code as its reference).

Against the direct blur this differs by at most one level of 255 on a small share of pixels
(rounding of values within a hair of .5; tests/edit/test_adjust.py measures it). Below DIRECT_BELOW
(6.16 px) no level is taken and the direct blur runs, byte for byte as before. Cost: about what a
blur of sigma 6 costs, whatever sigma is (a 24 MP background: 0.3 s alone, 1.2 s as a whole edit's step;
it took half an hour).
"""

from __future__ import annotations

import numpy as np

MIN_COARSE_SIGMA = 3.0  # the coarse blur's sigma in coarse pixels, for step 3 to interpolate smooth data
DIRECT_BELOW = (2 + (2 * MIN_COARSE_SIGMA) ** 2) ** 0.5  # 6.16 px: below it no level is taken


def levels_for(sigma: float) -> int:
    """How many halvings a blur of `sigma` takes: the most that leave at least MIN_COARSE_SIGMA."""
    k = 0
    while sigma * sigma - 2 * (4 ** (k + 1) - 1) / 3 >= (MIN_COARSE_SIGMA * 2 ** (k + 1)) ** 2:
        k += 1
    return k


def _coarse(level1: np.ndarray, k: int, sigma: float) -> np.ndarray:
    """Steps 1-3 from level 1 (half size) back to level 1: the pyramid's small arrays, whole."""
    import cv2

    sizes = []
    grid = level1
    for _ in range(k - 1):
        sizes.append((grid.shape[1], grid.shape[0]))
        grid = cv2.pyrDown(grid, borderType=cv2.BORDER_REPLICATE)
    rest = np.sqrt(sigma * sigma - 2 * (4**k - 1) / 3) / 2**k
    grid = cv2.GaussianBlur(grid, (0, 0), rest, borderType=cv2.BORDER_REPLICATE)
    for size in reversed(sizes):
        grid = cv2.pyrUp(grid, dstsize=size)
    return grid


ROWS = 256  # full-size rows made at a time (even): no full-size float array is ever held whole


def masked_blur(image: np.ndarray, region: np.ndarray, sigma: float, box: tuple[int, int, int, int]) -> None:
    """Blur `image` (RGB uint8, changed in place) inside `region` with sigma px, averaging only the
    region's own pixels: blur(image * m) / blur(m) (normalised convolution), so blurring a
    background does not smear the kept subject into it. `box`: the region's XYXY box.

    Colour times mask and the mask go through the blur as one 4-channel float image. Past
    DIRECT_BELOW the full-size steps (the first pyrDown, the last pyrUp and the division) run
    ROWS rows at a time, so the extra memory is about 4 bytes a pixel instead of 40."""
    import cv2

    x0, y0, x1, y1 = box
    reach = int(np.ceil(3 * sigma))
    h, w = region.shape
    cx0, cy0, cx1, cy1 = max(0, x0 - reach), max(0, y0 - reach), min(w, x1 + reach), min(h, y1 + reach)
    m8 = region[cy0:cy1, cx0:cx1].view(np.uint8)
    crop = image[cy0:cy1, cx0:cx1]  # a view: written in place
    h = m8.shape[0]

    k = levels_for(sigma)
    if k == 0:
        blurred = cv2.GaussianBlur(_four_channel(crop, m8, 0, h), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        for top in range(0, h, ROWS):
            _write_blurred(crop, m8, top, blurred[top : top + ROWS])
        return
    _pyramid_blur(crop, m8, k, sigma)


def _four_channel(crop: np.ndarray, m8: np.ndarray, first: int, last: int, left: int = 0, right: int = 0) -> np.ndarray:
    """Crop rows first..last-1 (clipped rows repeat the edge) as the 4-channel float (colour times
    mask `m8`, then the mask), with `left`/`right` replicated columns added."""
    import cv2

    h = m8.shape[0]
    a = min(max(first, 0), h - 1)
    b = max(min(last, h), a + 1)  # at least the edge row, for strips wholly past it
    top = min(max(a - first, 0), last - first - (b - a))
    bottom = last - first - (b - a) - top
    c, mm = crop[a:b], m8[a:b]
    # colour times mask (0 or 1) is the colour where the mask is, else 0: one masked AND, not three
    # strided products over one channel of three (the same bytes: tests/edit/test_blur.py)
    four = cv2.merge([cv2.bitwise_and(c, c, mask=mm), mm])
    if top or bottom or left or right:
        four = cv2.copyMakeBorder(four, top, bottom, left, right, cv2.BORDER_REPLICATE)
    return four.astype(np.float32)


def _write_blurred(crop: np.ndarray, m8: np.ndarray, top: int, four: np.ndarray) -> None:
    """Crop rows top.. from their blurred 4-channel float (colour x mask, then mask): the colour's
    blur over the mask's, rounded (cv2's saturating cast rounds half to even, as np.rint) and
    written where the mask is. All four channels are divided by the mask's blur in one call (the
    same float32 division per element as one plane at a time; the fourth is dropped). OpenCV's
    channel copies and conversions, not numpy's strided loops over one channel of four."""
    import cv2

    n, w = four.shape[:2]
    den = cv2.extractChannel(four, 3).reshape(n, w)
    np.maximum(den, np.float32(1e-6), out=den)  # (numpy: cv2.max turns a 1x1 plane into 4x1)
    quotient = cv2.divide(four, cv2.merge([den, den, den, den]).reshape(n, w, 4))
    value = cv2.cvtColor(cv2.convertScaleAbs(quotient).reshape(n, w, 4), cv2.COLOR_RGBA2RGB)
    cv2.copyTo(value.reshape(n, w, 3), m8[top : top + n], crop[top : top + n])  # in place: crop is a view


def _pyramid_blur(crop: np.ndarray, m8: np.ndarray, k: int, sigma: float) -> None:
    """The masked blur of `crop` past DIRECT_BELOW, through `k` pyramid levels (steps 1-3 of the
    module's docstring), the full-size steps ROWS rows at a time."""
    import cv2

    h, w = m8.shape
    # The padded frame: `pad` replicated rows and columns around the crop (past every level's
    # reach), its size divisible by 2^k. Padded row p is crop row clip(p - pad): rows are made on
    # demand, never padded as a whole.
    pad, step = 2 ** (k + 2), 2**k
    ph, pw = -(-(h + 2 * pad) // step) * step, -(-(w + 2 * pad) // step) * step

    def padded(first: int, last: int) -> np.ndarray:  # padded rows first..last-1, every column
        return _four_channel(crop, m8, first - pad, last - pad, pad, pw - w - pad)

    # 1. level 1 strip by strip: its row i is made from padded rows 2i-2..2i+2
    half = ROWS // 2
    level1 = np.empty((ph // 2, pw // 2, 4), np.float32)
    for a in range(0, ph // 2, half):
        b = min(a + half, ph // 2)
        down = cv2.pyrDown(padded(2 * a - 2, 2 * b + 2), borderType=cv2.BORDER_REPLICATE)
        level1[a:b] = down[1 : 1 + b - a]
    # 2. the rest of the pyramid, on arrays a quarter of the size and less
    coarse = _coarse(level1, k, sigma)
    del level1
    # 3. the last pyrUp strip by strip (padded rows 2r, 2r+1 come from level-1 rows r-1..r+1, and
    #    columns likewise), all four channels at once, straight into the division; only the
    #    crop's own rows and columns are made (level-1 columns c0..c1-1, one past each side)
    c0, c1 = pad // 2 - 1, min((pad + w - 1) // 2 + 2, pw // 2)
    for top in range(0, h, ROWS):
        bottom = min(top + ROWS, h)
        r0, r1 = (top + pad) // 2, -(-(bottom + pad) // 2)  # top + pad is even: pad and ROWS are
        lo, hi = r0 - 1, min(r1 + 1, ph // 2)  # r0 >= pad / 2 >= 4
        first, left = top + pad - 2 * lo, pad - 2 * c0
        up = cv2.pyrUp(coarse[lo:hi, c0:c1], dstsize=(2 * (c1 - c0), 2 * (hi - lo)))
        _write_blurred(crop, m8, top, up[first : first + bottom - top, left : left + w])
