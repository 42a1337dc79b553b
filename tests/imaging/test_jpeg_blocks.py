"""jpeg_blocks: JPEG in, JPEG out, only the touched MCUs coded again."""

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

jpeglib = pytest.importorskip("jpeglib")

from lasso_edit.imaging import jpeg_blocks  # noqa: E402


def _photo(h=157, w=203, seed=1):
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.resize(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)


def _tables(src):
    return [src.qt[int(k)] for k in src.quant_tbl_no]


def _whole_frame(path, rgb, changed):
    """The coefficients of encoding the whole edited frame, and the touched MCUs and luma blocks."""
    src = jpeglib.read_dct(str(path))
    gray = not src.has_chrominance
    rows, cols = (src.Cb.shape[:2] if not gray else src.Y.shape[:2])
    ry, rx = -(-src.Y.shape[0] // rows), -(-src.Y.shape[1] // cols)
    mcu = jpeg_blocks._mcu_grid(changed, 8 * ry, 8 * rx, rows, cols)
    new = jpeg_blocks.forward(rgb, np.asarray(src.samp_factor), _tables(src), gray)
    luma = np.repeat(np.repeat(mcu, ry, 0), rx, 1)[: src.Y.shape[0], : src.Y.shape[1]]
    return [c[: p.shape[0], : p.shape[1]] for c, p in zip(new, (src.Y, src.Cb, src.Cr))], luma, mcu


@pytest.mark.parametrize("subsampling", [2, 1, 0, "gray"], ids=["4:2:0", "4:2:2", "4:4:4", "gray"])
def test_forward_gives_libjpegs_coefficients_within_its_rounding(tmp_path, subsampling):
    """The numpy encoder against libjpeg's own (jpeglib.write_spatial): the same coefficients but
    for libjpeg's integer rounding, which moves about 1% of them by 1-2 quantiser steps."""
    photo = 255 - _photo(317, 411, seed=4)
    path = tmp_path / "in.jpg"
    if subsampling == "gray":
        import cv2

        Image.fromarray(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)).save(path, quality=90)
    else:
        Image.fromarray(photo).save(path, quality=90, subsampling=subsampling)
    src = jpeglib.read_dct(str(path))
    gray = not src.has_chrominance
    pixels = photo if not gray else __import__("cv2").cvtColor(photo, __import__("cv2").COLOR_RGB2GRAY)[:, :, None]
    ref = jpeglib.from_spatial(np.ascontiguousarray(pixels))
    ref.samp_factor = src.samp_factor
    ref.write_spatial(str(tmp_path / "ref.jpg"), qt=src.qt, quant_tbl_no=src.quant_tbl_no)
    want = jpeglib.read_dct(str(tmp_path / "ref.jpg"))
    got = jpeg_blocks.forward(photo, np.asarray(src.samp_factor), _tables(src), gray)
    for mine, theirs in zip(got, [want.Y] + ([] if gray else [want.Cb, want.Cr])):
        diff = np.abs(mine[: theirs.shape[0], : theirs.shape[1]].astype(int) - theirs)
        assert diff.max() <= 2 and (diff > 0).mean() < 0.02, (diff.max(), (diff > 0).mean())


@pytest.mark.parametrize("subsampling", [2, 1, 0])
def test_forward_of_a_crop_on_the_mcu_grid_is_the_whole_frames_blocks(tmp_path, subsampling):
    """Blocks are coded independently: a crop starting on an MCU edge gives the whole frame's blocks."""
    photo = _photo(157, 203)
    path = tmp_path / "in.jpg"
    Image.fromarray(photo).save(path, quality=90, subsampling=subsampling)
    src = jpeglib.read_dct(str(path))
    samp = np.asarray(src.samp_factor)
    mh, mw = 8 * samp[:, 0].max(), 8 * samp[:, 1].max()
    whole = jpeg_blocks.forward(photo, samp, _tables(src), False)
    part = jpeg_blocks.forward(photo[2 * mh:, 3 * mw:], samp, _tables(src), False)
    for c, (a, b) in enumerate(zip(whole, part)):
        dv, dh = samp[:, 0].max() // samp[c, 0], samp[:, 1].max() // samp[c, 1]
        oy, ox = 2 * mh // (8 * dv), 3 * mw // (8 * dh)
        assert (a[oy:, ox:] == b).all()


@pytest.mark.parametrize("subsampling", [2, 0, "gray"], ids=["4:2:0", "4:4:4", "gray"])
@pytest.mark.parametrize("where", ["middle", "bottom right corner", "two apart", "everything"])
def test_only_the_touched_mcus_are_coded_again_as_the_whole_frame_would_code_them(tmp_path, subsampling, where):
    """Issue 17: the edited frame is encoded again only from the first to the last touched MCU,
    with the coefficients of encoding the whole frame; every other MCU keeps the input's."""
    h, w = 157, 203  # not a whole number of MCUs: the edge MCUs are padded
    photo = _photo(h, w)
    path = tmp_path / "in.jpg"
    if subsampling == "gray":
        Image.fromarray(photo).convert("L").save(path, quality=90)
    else:
        Image.fromarray(photo).save(path, quality=90, subsampling=subsampling)
    loaded = np.asarray(Image.open(path).convert("RGB"))
    changed = np.zeros((h, w), bool)
    if where == "middle":
        changed[40:70, 50:91] = True
    elif where == "bottom right corner":
        changed[140:, 180:] = True
    elif where == "two apart":
        changed[5:9, 5:9] = True
        changed[120:130, 150:190] = True
    else:
        changed[:] = True
    edited = loaded.copy()
    edited[changed] = 255 - edited[changed]
    written = []
    region = jpeg_blocks.write(SimpleNamespace(path=path), edited, changed, written.append)
    out = tmp_path / "out.jpg"
    out.write_bytes(written[0])
    got, src = jpeglib.read_dct(str(out)), jpeglib.read_dct(str(path))
    want, luma, mcu = _whole_frame(path, edited, changed)
    want_y = want[0][luma]
    want_cb, want_cr = (want[1][mcu], want[2][mcu]) if subsampling != "gray" else (None, None)
    assert (got.Y[luma] == want_y).all() and (got.Y[~luma] == src.Y[~luma]).all()
    if subsampling != "gray":
        assert (got.Cb[mcu] == want_cb).all() and (got.Cr[mcu] == want_cr).all()
        assert (got.Cb[~mcu] == src.Cb[~mcu]).all()
    assert region[changed].all()
    a, b = np.asarray(Image.open(path).convert("RGB")), np.asarray(Image.open(out).convert("RGB"))
    assert (a[~region] == b[~region]).all()


@pytest.mark.parametrize("kind", ["4:2:0", "4:4:4", "gray", "progressive", "restarts", "metadata"])
def test_libjpeg_turbo_writes_the_bytes_libjpeg_6b_wrote(tmp_path, kind, monkeypatch):
    """Issue 34: jpeglib's libjpeg-turbo reads and writes the coefficients faster than its default
    libjpeg 6b; the file written is the same, byte for byte."""
    photo = _photo(157, 203, seed=4)
    path = tmp_path / "in.jpg"
    img = Image.fromarray(photo)
    options = {"quality": 90, "subsampling": 0 if kind == "4:4:4" else 2}
    if kind == "gray":
        img, options = img.convert("L"), {"quality": 90}
    elif kind == "progressive":
        options["progressive"] = True
    elif kind == "restarts":
        options["restart_marker_blocks"] = 3
    elif kind == "metadata":
        exif = Image.Exif()
        exif[0x010F] = "Lasso test camera"
        options.update(exif=exif.tobytes(), icc_profile=b"\x00" * 200, comment=b"a comment")
    img.save(path, **options)
    changed = np.zeros(photo.shape[:2], bool)
    changed[40:70, 50:91] = True
    edited = photo.copy()
    edited[changed] = 255 - edited[changed]
    files = {}
    for version in ("6b", "turbo210"):
        monkeypatch.setattr(jpeg_blocks, "FAST_LIBJPEG", version)
        written = []
        jpeg_blocks.write(SimpleNamespace(path=path), edited, changed, written.append)
        files[version] = written[0]
        assert jpeglib.version.get() == version
    assert files["6b"] == files["turbo210"]
