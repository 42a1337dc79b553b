"""Recolour's speed-ups give the bytes of the code they replaced (issue 34): the gamut step once per
distinct L* instead of once per colour, the colour table looked up one 4-byte word per pixel, and a
target colour's work once per distinct L* ("level"), each box pixel's level gathered once."""

import numpy as np
import pytest

from lasso_edit.edit import recolor as rc

pytestmark = pytest.mark.unit


def _old_linear_rgb(lab: np.ndarray) -> np.ndarray:
    """recolor._linear_rgb before issue 34: one product over all rows (OpenBLAS's threads)."""
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    d = 6.0 / 29.0
    xyz = np.where(f > d, f**3, 3 * d * d * (f - 4.0 / 29.0)) * np.array([0.950456, 1.0, 1.088754], np.float32)
    return xyz @ rc._XYZ_TO_RGB.T


def _old_rgb(lab: np.ndarray) -> np.ndarray:
    """recolor._rgb before issue 34: ten bisection passes over every out-of-gamut colour."""
    lab = lab.astype(np.float32)
    ok = lambda x: ((x >= -1e-4) & (x <= 1 + 1e-4)).all(axis=-1)  # noqa: E731
    outside = ~ok(_old_linear_rgb(lab))
    if outside.any():
        lab = lab.copy()
        far = lab[outside]
        lo = np.zeros(far.shape[:-1], np.float32)
        hi = np.ones(far.shape[:-1], np.float32)
        for _ in range(10):
            mid = (lo + hi) / 2
            trial = far.copy()
            trial[..., 1:] *= mid[..., None]
            good = ok(_old_linear_rgb(trial))
            lo = np.where(good, mid, lo)
            hi = np.where(good, hi, mid)
        far[..., 1:] *= lo[..., None]
        lab[outside] = far
    rgb = rc._rgb_float(lab)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def _old_paint(box, inside, codes, uniq, which, new) -> None:
    import cv2

    table = np.zeros((1 << 24, 3), np.uint8)
    table[uniq] = new
    cv2.copyTo(np.take(table, codes, axis=0), inside.view(np.uint8), box)


def _grainy(h: int, w: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    "color", ["red", "pale navy blue", "#00ff88", "white", "dark green", "darker", "more colourful"]
)
def test_the_gamut_step_per_distinct_lightness_gives_the_per_colour_bisections_bytes(monkeypatch, color):
    img = _grainy(240, 320)
    region = np.zeros(img.shape[:2], bool)
    region[20:220, 30:300] = True
    new = rc.recolor(img, region, color)
    assert np.array_equal(new, _old_recolor(img, region, color))  # the sorting path (under _TABLE_FROM)
    assert not np.array_equal(new, img)


def _old_recolor(image, region, color):
    """recolor.recolor before issue 34's strips: whole-box codes, the copying bisection, a table of
    all 2^24 colours painted at once."""
    from lasso_edit.imaging.arrays import mask_bbox
    from lasso_edit.imaging.colors import parse_color

    base, dl, dc = parse_color(color)
    out = image.copy()
    x0, y0, x1, y1 = mask_bbox(region)
    box, inside = out[y0:y1, x0:x1], region[y0:y1, x0:x1]
    codes = rc.color_codes(box)
    uniq, which = rc.distinct_codes(codes[inside])
    colors = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.uint8)
    lab = rc._lab(colors[None])[0]
    mean_l = float(lab[which, 0].mean())
    L = lab[:, 0]
    if base[0] < 0:
        new_l = L + dl
        ab = lab[:, 1:] * dc
    else:
        t = rc._lab(np.array([[base]], dtype=np.uint8))[0, 0]
        pull = rc.ACHROMATIC_PULL if float(np.hypot(t[1], t[2])) < 12 else rc.CHROMATIC_PULL
        new_l = L + pull * (t[0] - mean_l) + dl
        ab = np.broadcast_to(t[1:] * dc, lab[:, 1:].shape)
    new = np.concatenate([np.clip(new_l, 0, 100)[:, None], ab], axis=1)
    _old_paint(box, inside, codes, uniq, which, _old_rgb(new[None])[0])
    return out


@pytest.mark.parametrize("color", ["red", "brighter"])
def test_recolouring_by_strips_gives_the_whole_box_bytes(monkeypatch, color):
    """Issue 34: past _TABLE_FROM pixels the codes, numbers and paint run ROWS rows at a time (no
    full-size temporaries); the bytes are the whole-box code's, strip seams included."""
    monkeypatch.setattr(rc, "ROWS", 37)
    img = _grainy(1300, 1100, seed=3)
    yy, xx = np.mgrid[:1300, :1100]
    region = ((xx - 550) / 540.0) ** 2 + ((yy - 660) / 640.0) ** 2 <= 1  # rows of every width
    assert region.sum() >= rc._TABLE_FROM
    new = rc.recolor(img, region, color)
    assert np.array_equal(new, _old_recolor(img, region, color))
    assert (new[region] != img[region]).any() and np.array_equal(new[~region], img[~region])


@pytest.mark.parametrize("shape", [(1200, 1000), (90, 70)])  # the table and the sorting paths
def test_the_colours_number_the_pixels_as_the_whole_box_numbering_did(monkeypatch, shape):
    monkeypatch.setattr(rc, "ROWS", 50)
    img = _grainy(*shape, seed=5)
    inside = np.random.default_rng(2).random(shape) < 0.9
    inside[7] = False  # an empty row
    colours = rc.Colours(img, inside)
    want_uniq, want = rc.distinct_codes(rc.color_codes(img)[inside])
    assert np.array_equal(colours.uniq, want_uniq)
    assert np.array_equal(colours.at_pixels(np.arange(len(want_uniq), dtype=np.int32)), want)


@pytest.mark.parametrize("chunk", [None, 1000])  # one bisection block, and many blocks and chunks
def test_the_chunked_bisection_gives_the_whole_array_bisections_bytes(monkeypatch, chunk):
    """Issue 34: relative colours ("brighter") solve the gamut per distinct colour, CHUNK rows at a
    time with the constant parts computed once; the same scales as the copying bisection over all
    rows at once, on rows across several chunks, most of them outside the gamut."""
    rng = np.random.default_rng(7)
    n = 3 * rc.CHUNK + 123
    if chunk:
        monkeypatch.setattr(rc, "CHUNK", chunk)
    lab = np.stack([rng.uniform(0, 100, n), rng.uniform(-200, 200, n), rng.uniform(-200, 200, n)], axis=1)
    rows = lab.astype(np.float32)[None]
    assert (~rc._in_gamut(_old_linear_rgb(rows[0]))).sum() > 2 * rc.CHUNK
    assert np.array_equal(rc._rgb_exact(rc._into_gamut(rows[0])), _old_rgb(rows)[0])
    assert np.array_equal(rc._linear_rgb(rows[0]), _old_linear_rgb(rows[0]))


def test_a_recolour_to_a_target_colour_solves_the_gamut_once_per_level(monkeypatch):
    img = _grainy(240, 320, seed=4)
    region = np.ones(img.shape[:2], bool)
    colors = np.unique(rc.color_codes(img).reshape(-1))
    rgb = np.stack([(colors >> 16) & 255, (colors >> 8) & 255, colors & 255], axis=1).astype(np.uint8)
    solved = []
    real = rc._into_gamut
    monkeypatch.setattr(rc, "_into_gamut", lambda x: solved.append(len(x)) or real(x))
    rc.recolor(img, region, "red")
    assert solved == [len(np.unique(rc._lab(rgb[None])[0][:, 0]))] and solved[0] < len(colors)


def test_distinct_levels_are_np_uniques():
    rng = np.random.default_rng(11)
    plain = (np.round(rng.uniform(0, 100, 50000) * 40) / 40).astype(np.float32)
    bits = np.float32(37.5).view(np.uint32)
    shared = np.array([bits, bits + 1, bits + 255, bits], np.uint32).view(np.float32)  # one key, 3 values
    for values in (plain, np.concatenate([plain, shared]), np.float32([3.0, -0.0, 0.0, -2.0, 3.0]), plain[:1]):
        levels, back = rc.distinct_levels(values)
        want_levels, want_back = np.unique(values, return_inverse=True)
        assert np.array_equal(levels, want_levels) and np.array_equal(back, want_back.reshape(-1))
        assert np.array_equal(levels[back], values)


def test_the_kept_tables_are_handed_back_zeroed_and_reused(monkeypatch):
    monkeypatch.setattr(rc, "ROWS", 64)
    monkeypatch.setattr(rc, "_SPARE", {})
    region = np.ones((1100, 1000), bool)
    assert region.sum() >= rc._TABLE_FROM
    for seed in (1, 2):  # the second recolour reuses the first's tables
        img = _grainy(1100, 1000, seed=seed)
        for color in ("red", "brighter"):
            assert np.array_equal(rc.recolor(img, region, color), _old_recolor(img, region, color))
    assert sorted(rc._SPARE) == [(1, True), (2, True), (4, False)] and [len(v) for v in rc._SPARE.values()] == [1, 1, 1]
    assert not rc._SPARE[(1, True)][0].any() and not rc._SPARE[(2, True)][0].any()


def test_the_gamut_check_is_the_comparisons_to_the_last_float():
    """Issue 34: cv2.inRange gives numpy's float32 comparisons with -1e-4 and 1 + 1e-4, at the
    bounds and one float either side of them, on each channel."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-0.01, 1.01, (70000, 3)).astype(np.float32)
    for bound in (np.float32(-1e-4), np.float32(1 + 1e-4)):
        for k, value in enumerate((np.nextafter(bound, -2), bound, np.nextafter(bound, 2))):
            x[k * 9000 : k * 9000 + 3000, 0] = value
            x[k * 9000 + 3000 : k * 9000 + 6000, 1] = value
            x[k * 9000 + 6000 : k * 9000 + 9000, 2] = value
        want = ((x >= -1e-4) & (x <= 1 + 1e-4)).all(axis=-1)
        assert np.array_equal(rc._in_gamut(x), want) and np.array_equal(rc._in_gamut(x[None]), want[None])
        assert 0 < want.sum() < len(x)


def test_the_rounding_to_bytes_is_numpys_half_to_even(monkeypatch):
    """Issue 34: cv2.convertScaleAbs(x, alpha=255) gives np.clip(np.round(x * 255), 0, 255) on
    [0, 1], at exact halves (x * 255 == k + 0.5 in float32, where half to even decides) too."""
    rng = np.random.default_rng(5)
    near = np.float32((np.arange(255) + 0.5) / 255)
    down, up = [near], [near]
    for _ in range(3):  # three floats either side of each half
        down.append(np.nextafter(down[-1], np.float32(0)))
        up.append(np.nextafter(up[-1], np.float32(1)))
    steps = down + up[1:]
    x = np.concatenate([*steps, rng.random(30000).astype(np.float32), np.float32([0, 1])])
    halves = (x * np.float32(255)) % 1 == 0.5
    assert halves.sum() > 100
    rows = np.resize(x, (len(x) // 3 * 3,)).reshape(-1, 3)
    monkeypatch.setattr(rc, "_rgb_float", lambda lab: lab)
    assert np.array_equal(rc._rgb_exact(rows), np.clip(np.round(rows * 255.0), 0, 255).astype(np.uint8))


def test_unpacked_codes_are_the_shifted_bytes():
    """Issue 34: a code's bytes read backwards give the channels the shifts gave, for every byte
    value of each channel (the codes of 0, 0xFFFFFF and a sweep between)."""
    codes = np.concatenate([np.arange(0, 1 << 24, 65537, dtype=np.int32), np.array([0, 0xFFFFFF], np.int32)])
    want = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)
    got = rc.unpack_codes(codes)
    assert got.dtype == np.uint8 and got.flags.c_contiguous and np.array_equal(got, want)
    assert np.array_equal(rc.color_codes(got[None])[0], codes)  # and back
