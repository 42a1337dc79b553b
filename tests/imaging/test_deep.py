"""16-bit RGB and RGBA: read with all 16 bits, composed at 16 bits, written at 16 bits (lasso_edit/deep.py)."""

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from lasso_edit.imaging import deep, load_image, save_image

from ..helpers import noise_image, run_cli


def _samples(h, w, c, seed=0):
    """A gradient with fine detail in the low byte of every sample (what 8 bits would lose)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:h, :w]
    base = np.stack([x * 400 + y * 3, y * 500 + x * 7, (x * 131 + y * 71) % 60000, x * 300 + 2000][:c], -1)
    return (base + rng.integers(0, 256, base.shape)).astype(np.uint16)


def _write_cv2(a, path):
    cv2.imwrite(str(path), cv2.cvtColor(a, cv2.COLOR_RGB2BGR if a.shape[2] == 3 else cv2.COLOR_RGBA2BGRA))
    return path


def _read_cv2(path):
    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(a, cv2.COLOR_BGR2RGB if a.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)


@pytest.mark.parametrize("name,c", [("in.png", 3), ("in.tif", 3), ("in.png", 4), ("in.tif", 4)])
def test_a_16_bit_colour_edit_keeps_16_bits_outside_the_mask(tiny_dir, tmp_path, name, c):
    src = _write_cv2(_samples(90, 120, c), tmp_path / name)
    out, mask = tmp_path / f"out{src.suffix}", tmp_path / "mask.png"
    r = run_cli("edit", str(src), "remove the ball", "--preset", "tiny", "-o", str(out), "--mask-out", str(mask))
    assert r.returncode == 0, r.stderr
    before, after = _read_cv2(src), _read_cv2(out)
    assert after.dtype == np.uint16 and after.shape == before.shape
    changed = np.asarray(Image.open(mask)) > 0
    assert changed.any() and not changed.all()
    assert (after[~changed] == before[~changed]).all()  # all 16 bits, not the high byte only
    assert (after[changed][:, :3] != before[changed][:, :3]).any()
    if c == 4:
        assert (after[:, :, 3] == before[:, :, 3]).all()  # alpha is never edited


def test_the_models_see_rounded_8_bit_samples_where_pillow_truncates(tmp_path):
    a = np.full((4, 4, 3), 0x12F0, np.uint16)  # high byte 0x12, low byte 0xF0: rounds up to 0x13
    loaded = load_image(_write_cv2(a, tmp_path / "x.png"))
    assert loaded.deep is not None and (loaded.deep == a).all()
    assert (loaded.rgb == 0x13).all() and np.asarray(Image.open(tmp_path / "x.png"))[0, 0, 0] == 0x12


def test_8_bit_and_16_bit_grayscale_inputs_take_the_usual_path(tmp_path):
    Image.fromarray(noise_image(8, 8)).save(tmp_path / "rgb8.png")
    Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).save(tmp_path / "g16.png")
    assert load_image(tmp_path / "rgb8.png").deep is None
    assert load_image(tmp_path / "g16.png").deep is None


def test_compose_is_the_16_bit_composite():
    k = np.arange(24).reshape(2, 4, 3) * 4 + 10
    d = (2 * k * 257 + 100).astype(np.uint16)  # even 8-bit levels (2k) plus a low-byte detail of 100
    before = deep.to_8bit(d)
    assert (before == 2 * k).all()
    alpha = np.array([[1.0, 1.0, 0.5, 0.0]] * 2, np.float32)
    after = before.copy()
    after[alpha == 1] = 200
    after[alpha == 0.5] = before[alpha == 0.5] // 2 + 100  # the 8-bit composite, exact: no rounding
    out = deep.compose(d, before, after, alpha).astype(float)
    assert (out[alpha == 0] == d[alpha == 0]).all()
    assert (out[alpha == 1] == 200 * 257).all()  # fully repainted: the edit, at 16 bits
    expected = d[alpha == 0.5] * 0.5 + 200 * 257 * 0.5  # input * (1 - a) + edit * a, at 16 bits
    assert np.abs(out[alpha == 0.5] - expected).max() <= 1


@pytest.mark.parametrize("c", [3, 4])
def test_the_png_encoder_round_trips_and_carries_metadata(c):
    a = _samples(33, 47, c, seed=c)
    icc = bytes(range(132))  # any bytes: the chunk carries them as given
    data = deep.encode_png(a, 6, icc=icc, dpi=(300, 300))
    back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    back = cv2.cvtColor(back, cv2.COLOR_BGR2RGB if c == 3 else cv2.COLOR_BGRA2RGBA)
    assert back.dtype == np.uint16 and (back == a).all()
    import io

    img = Image.open(io.BytesIO(data))
    assert img.info["icc_profile"] == icc and round(img.info["dpi"][0]) == 300


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_applies_it(tmp_path, orientation):
    a = _samples(6, 10, 3, seed=orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    path.write_bytes(deep.encode_png(a, 1, exif=exif.tobytes()))
    loaded = load_image(path)
    pillow = np.asarray(ImageOps.exif_transpose(Image.open(path)))  # Pillow: the high byte, oriented
    assert loaded.deep is not None and loaded.deep.shape[:2] == pillow.shape[:2]
    assert ((loaded.deep >> 8).astype(np.uint8) == pillow).all()


def test_an_8_bit_format_says_the_low_byte_was_lost(tmp_path):
    loaded = load_image(_write_cv2(_samples(8, 8, 3), tmp_path / "x.png"))
    warnings = save_image(Image.fromarray(loaded.rgb), tmp_path / "y.webp", like=loaded, deep_samples=loaded.deep)
    assert any("8 bits" in w and "low byte" in w for w in warnings)


def test_the_python_api_saves_16_bits_like_the_cli(tiny_editor, tmp_path):
    a = _samples(40, 50, 3)
    res = tiny_editor(str(_write_cv2(a, tmp_path / "in.png")), "remove the ball", seed=1)
    assert res.deep is not None and res.deep.dtype == np.uint16
    assert res.save(tmp_path / "out.png") == []
    back = _read_cv2(tmp_path / "out.png")
    assert (back == res.deep).all() and (back[~res.mask] == a[~res.mask]).all()


def test_a_16_bit_grey_and_alpha_png_is_read_and_written_at_16_bits(tiny_dir, tmp_path):
    """Pillow opens a 16-bit grey + alpha PNG as 8-bit RGBA: Lasso reads its 16 bits (as RGBA, the grey
    in each colour channel) and writes 16-bit RGBA, every sample outside the mask as it was."""
    from lasso_edit.imaging.png import encode

    grey = _samples(90, 120, 4)[..., [0, 3]]
    src = tmp_path / "in.png"
    src.write_bytes(encode(grey))
    assert load_image(src).deep is not None
    out, mask = tmp_path / "out.png", tmp_path / "mask.png"
    r = run_cli("edit", str(src), "remove the ball", "--preset", "tiny", "-o", str(out), "--mask-out", str(mask))
    assert r.returncode == 0, r.stderr
    after = _read_cv2(out)
    before = np.dstack([grey[..., 0], grey[..., 0], grey[..., 0], grey[..., 1]])
    changed = np.asarray(Image.open(mask)) > 0
    assert after.dtype == np.uint16 and changed.any() and (after[~changed] == before[~changed]).all()


def _write_pnm(a, path, maxval=65535):
    """A binary PGM (HxW) or PPM (HxWx3) of uint16 samples, big-endian, as Netpbm writes them."""
    magic = b"P5" if a.ndim == 2 else b"P6"
    path.write_bytes(
        magic + b"\n# made by a test\n%d %d\n%d\n" % (a.shape[1], a.shape[0], maxval) + a.astype(">u2").tobytes()
    )
    return path


def _read_pnm(path):
    """(magic, maxval, samples) of a PNM written by Lasso (its header has no comments)."""
    data = path.read_bytes()
    magic, w, h, maxval, rest = data.split(maxsplit=4)
    c = 1 if magic == b"P5" else 3
    a = np.frombuffer(rest[: int(w) * int(h) * c * 2], ">u2").reshape(int(h), int(w), c)
    return magic, int(maxval), a


@pytest.mark.parametrize("name,maxval", [("in.ppm", 65535), ("in.pgm", 65535), ("in.pgm", 4095), ("in.ppm", 1023)])
def test_a_16_bit_pnm_edit_keeps_its_samples_and_maxval_outside_the_mask(tiny_dir, tmp_path, name, maxval):
    a = np.random.default_rng(9).integers(0, maxval + 1, (64, 80, 3), dtype=np.uint16)  # the tester's own
    src = _write_pnm(a[:, :, 0] if name.endswith(".pgm") else a, tmp_path / name, maxval)
    out, mask = tmp_path / f"out{src.suffix}", tmp_path / "mask.png"
    r = run_cli("edit", str(src), "make the sky blue", "--preset", "tiny", "-o", str(out), "--mask-out", str(mask))
    assert r.returncode == 0, r.stderr
    magic, out_max, after = _read_pnm(out)
    before = _read_pnm_any(src)
    assert magic == (b"P5" if name.endswith(".pgm") else b"P6") and out_max == maxval  # 16-bit, its own maxval
    changed = np.asarray(Image.open(mask)) > 0
    assert changed.any() and not changed.all()
    assert (after[~changed] == before[~changed]).all()  # every sample, not its high byte
    assert (after[changed] != before[changed]).any()


def _read_pnm_any(path):
    data = path.read_bytes()
    head = deep.pnm_header(data)
    magic, w, h, _, offset = head
    c = 1 if magic == b"P5" else 3
    return np.frombuffer(data, ">u2", count=w * h * c, offset=offset).reshape(h, w, c)


def test_16_bit_pnm_samples_read_and_write_back_exactly_at_any_maxval():
    for maxval in (256, 1023, 4095, 65534, 65535):
        v = np.arange(maxval + 1, dtype=np.uint16)[None, :]
        data = b"P5\n%d 1\n%d\n" % (v.shape[1], maxval) + v.astype(">u2").tobytes()
        held = deep.read_pnm(data)
        assert held.shape == (1, v.shape[1], 3) and held[0, -1, 0] == 65535  # scaled to the full 16 bits
        assert deep.encode_pnm(held, maxval, as_grey=True) == data


def test_a_16_bit_sgi_is_read_at_8_bits_with_a_warning_never_silently(tmp_path):
    import struct

    a = _samples(8, 9, 3)
    head = struct.pack(">hBBHHHHII", 474, 0, 2, 3, 9, 8, 3, 0, 65535).ljust(512, b"\0")
    (tmp_path / "x.sgi").write_bytes(head + b"".join(a[::-1, :, c].astype(">u2").tobytes() for c in range(3)))
    loaded = load_image(tmp_path / "x.sgi")
    assert loaded.unread_bits == 16 and any("16-bit samples" in w for w in loaded.warnings)
