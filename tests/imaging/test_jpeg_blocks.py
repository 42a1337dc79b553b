"""jpeg_blocks: JPEG in, JPEG out, only the touched MCUs coded again."""

from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

jpeglib = pytest.importorskip("jpeglib")

from lasso_edit.imaging import jpeg_blocks, jpeg_header, jpeg_transform  # noqa: E402


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
    libjpeg 6b; the file written is the same, byte for byte (jpeglib's path: no libturbojpeg)."""
    path, photo = _kinds(tmp_path, kind)
    changed, edited = _inverted_block(photo)
    files = {}
    monkeypatch.setattr(jpeg_transform, "_library", lambda: None)
    for version in ("6b", "turbo210"):
        monkeypatch.setattr(jpeg_blocks, "FAST_LIBJPEG", version)
        written = []
        jpeg_blocks.write(SimpleNamespace(path=path), edited, changed, written.append)
        files[version] = written[0]
        assert jpeglib.version.get() == version
    assert files["6b"] == files["turbo210"]


def _inverted_block(photo):
    """A block of the photo inverted: where it changed (bool HxW) and the edited pixels."""
    changed = np.zeros(photo.shape[:2], bool)
    changed[40:70, 50:91] = True
    edited = photo.copy()
    edited[changed] = 255 - edited[changed]
    return changed, edited


def _kinds(tmp_path, kind):
    """A small JPEG of one of the kinds a camera or an app writes."""
    photo = _photo(157, 203, seed=4)
    path = tmp_path / f"{kind}.jpg"
    img = Image.fromarray(photo)
    options = {"quality": 90, "subsampling": {"4:4:4": 0, "4:2:2": 1}.get(kind, 2)}
    if kind == "gray":
        img, options = img.convert("L"), {"quality": 90}
    elif kind == "progressive":
        options["progressive"] = True
    elif kind == "restarts":
        options["restart_marker_blocks"] = 3
    elif kind == "16-bit tables":
        options = {"qtables": [[300] + [40] * 63, [20] * 64]}
    elif kind == "metadata":
        exif = Image.Exif()
        exif[0x010F] = "Lasso test camera"
        options.update(exif=exif.tobytes(), icc_profile=b"\x00" * 200, comment=b"a comment")
    img.save(path, **options)
    return path, photo


def _read_both(tmp_path, *files):
    """Each file's bytes, written where jpeglib can read them."""
    paths = []
    for i, data in enumerate(files):
        paths.append(tmp_path / f"read-{i}.jpg")
        paths[-1].write_bytes(data)
    return [str(p) for p in paths]


def _segments(data):
    """The marker segments before the first scan, as (marker, body)."""
    out, i = [], 2
    while data[i + 1] != 0xDA:
        n = int.from_bytes(data[i + 2 : i + 4], "big")
        out.append((data[i + 1], data[i + 4 : i + 2 + n]))
        i += 2 + n
    return out


KINDS = ["4:2:0", "4:2:2", "4:4:4", "gray", "progressive", "restarts", "16-bit tables", "metadata"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_frame_read_from_the_markers_is_libjpegs(tmp_path, kind):
    """jpeg_header reads the size, sampling factors, tables and block counts libjpeg reads."""
    path, _ = _kinds(tmp_path, kind)
    frame = jpeg_header.read_frame(path.read_bytes())
    src = jpeglib.read_dct(str(path))
    planes = [src.Y] if frame.gray else [src.Y, src.Cb, src.Cr]
    assert (frame.width, frame.height) == Image.open(path).size
    assert (frame.sampling == np.asarray(src.samp_factor)[: len(planes)]).all()
    for table, want, plane, c in zip(frame.tables, _tables(src), planes, range(3)):
        assert (table == want).all()
        assert frame.blocks(c) == plane.shape[:2]
    assert frame.ycc == (not frame.gray) and not frame.tables_later


@pytest.mark.parametrize("kind", KINDS)
def test_the_transform_codes_the_coefficients_jpeglib_codes_and_keeps_every_marker(tmp_path, kind, monkeypatch):
    """Issue 34: TurboJPEG's one-pass transform and jpeglib's read-and-write give the same
    coefficients, the same coded data and the same tables and metadata, but for two things jpeglib
    changes and the transform keeps as jpegtran does: jpeglib writes a second JFIF segment (libjpeg
    writes one, jpeglib copies the input's too) and numbers the components from 0."""
    path, photo = _kinds(tmp_path, kind)
    changed, edited = _inverted_block(photo)
    files = {}
    for way in ("transform", "jpeglib"):
        if way == "jpeglib":
            monkeypatch.setattr(jpeg_transform, "_library", lambda: None)
        written = []
        jpeg_blocks.write(SimpleNamespace(path=path), edited, changed, written.append)
        files[way] = written[0]
    fast, slow = files["transform"], files["jpeglib"]
    for name in ("Y", "Cb", "Cr") if kind != "gray" else ("Y",):
        a, b = (getattr(jpeglib.read_dct(io), name) for io in _read_both(tmp_path, fast, slow))
        assert (a == b).all()

    def coded(data):  # the entropy-coded data, after the scan header
        at = data.index(b"\xff\xda")
        return data[at + 2 + int.from_bytes(data[at + 2 : at + 4], "big") :]

    assert coded(fast) == coded(slow)
    theirs = _segments(slow)
    jfif = [i for i, s in enumerate(theirs) if s[0] == 0xE0 and s[1][:5] == b"JFIF\x00"]
    assert len(jfif) == 2
    kept = [s for s in _segments(fast) if s[0] not in (0xC0, 0xC1)]  # not the frame header (its ids)
    assert kept == [s for i, s in enumerate(theirs) if i != jfif[1] and s[0] not in (0xC0, 0xC1)]
    ids = [b[6 + 3 * k] for m, b in _segments(fast) if m in (0xC0, 0xC1) for k in range(b[5])]
    assert ids == [b[6 + 3 * k] for m, b in _segments(path.read_bytes()) if m in (0xC0, 0xC1, 0xC2) for k in range(b[5])]
    original = {s for s in _segments(path.read_bytes()) if 0xE1 <= s[0] <= 0xEF or s[0] == 0xFE}
    assert original <= set(_segments(fast))  # EXIF, ICC, comments: all kept


def test_a_jpeg_coded_as_rgb_or_with_tables_after_its_first_scan_is_not_spliced(tmp_path):
    """An RGB-coded JPEG (Adobe transform 0) would get YCbCr blocks; a progressive file that defines
    its tables again between scans might use others than its header's: both are encoded whole."""
    from lasso_edit.imaging import load_image

    photo = _photo(64, 80)
    rgb = tmp_path / "rgb.jpg"
    Image.fromarray(photo).save(rgb, quality=90, keep_rgb=True)
    assert not jpeg_header.read_frame(rgb.read_bytes()).ycc
    assert not jpeg_blocks.applies(load_image(rgb), tmp_path / "out.jpg")
    prog = tmp_path / "prog.jpg"
    Image.fromarray(photo).save(prog, quality=90, progressive=True)
    data = prog.read_bytes()
    dqt = data[data.index(b"\xff\xdb") :][: 4 + 65]
    second = data.index(b"\xff\xda", data.index(b"\xff\xda") + 2)
    later = tmp_path / "later.jpg"
    later.write_bytes(data[:second] + dqt + data[second:])
    assert (np.asarray(Image.open(later)) == np.asarray(Image.open(prog))).all()  # still the same picture
    assert jpeg_header.read_frame(later.read_bytes()).tables_later
    assert not jpeg_blocks.applies(load_image(later), tmp_path / "out.jpg")
    assert jpeg_blocks.applies(load_image(prog), tmp_path / "out.jpg")


@pytest.mark.parametrize("bad", [b"", b"\xff\xd8", b"\xff\xd8\xff\xdb\x00\x43\x00", b"GIF89a"])
def test_a_header_that_is_not_a_jpeg_frame_is_named(bad):
    with pytest.raises(jpeg_header.NotAFrame):
        jpeg_header.read_frame(bad)


def test_a_failing_block_filter_stops_the_transform_with_its_reason(tmp_path):
    if not jpeg_transform.available():
        pytest.skip("libturbojpeg is not installed")
    path, _ = _kinds(tmp_path, "4:2:0")
    wrong = jpeg_transform.Patch(0, 0, np.zeros((1, 1, 8, 8), np.int16), np.ones((1, 2), bool))  # too few blocks
    with pytest.raises(jpeg_transform.TransformError, match="filter"):
        jpeg_transform.transform(path.read_bytes(), [wrong, None, None])
    assert jpeg_transform.transform(path.read_bytes(), [None, None, None]) == jpeg_transform.transform(
        path.read_bytes(), []
    )


@pytest.mark.parametrize(
    "ids, jfif, adobe, transform, ycc",
    [
        ((1, 2, 3), True, False, -1, True),  # JFIF: YCbCr whatever else
        ((82, 71, 66), True, True, 0, True),
        ((1, 2, 3), False, True, 0, False),  # Adobe's transform 0: RGB, whatever the ids
        ((82, 71, 66), False, True, 1, True),  # Adobe's transform 1: YCbCr, whatever the ids
        ((82, 71, 66), False, False, -1, False),  # neither: 'R', 'G', 'B' ids are RGB
        ((1, 2, 3), False, False, -1, True),
        ((0, 1, 2), False, False, -1, True),
    ],
)
def test_three_components_are_ycbcr_as_libjpeg_guesses(ids, jfif, adobe, transform, ycc):
    """libjpeg's default_decompress_parms (jdapimin.c): JFIF, then Adobe's transform, then the ids."""
    assert jpeg_header._is_ycc(ids, jfif, adobe, transform) is ycc
