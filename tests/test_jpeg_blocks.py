"""jpeg_blocks: JPEG in, JPEG out, only the touched MCUs coded again."""

import os
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

jpeglib = pytest.importorskip("jpeglib")

from lasso_edit import jpeg_blocks  # noqa: E402


def _whole_frame(path, rgb, changed):
    """The write as first done: the whole edited frame encoded again, the touched MCUs copied."""
    src = jpeglib.read_dct(str(path))
    rows, cols = src.Cb.shape[:2]
    ry, rx = -(-src.Y.shape[0] // rows), -(-src.Y.shape[1] // cols)
    mcu = jpeg_blocks._mcu_grid(changed, 8 * ry, 8 * rx, rows, cols)
    with tempfile.TemporaryDirectory() as tmp:
        re = jpeglib.from_spatial(np.ascontiguousarray(rgb))
        re.samp_factor = src.samp_factor
        re.write_spatial(os.path.join(tmp, "re.jpg"), qt=src.qt, quant_tbl_no=src.quant_tbl_no)
        new = jpeglib.read_dct(os.path.join(tmp, "re.jpg"))
    luma = np.repeat(np.repeat(mcu, ry, 0), rx, 1)[: src.Y.shape[0], : src.Y.shape[1]]
    return ([new.Y[luma], new.Cb[mcu], new.Cr[mcu]], luma, mcu)


@pytest.mark.parametrize("subsampling", [2, 0], ids=["4:2:0", "4:4:4"])
@pytest.mark.parametrize("where", ["middle", "bottom right corner", "two apart", "everything"])
def test_only_the_touched_mcus_are_coded_again_as_the_whole_frame_would_code_them(tmp_path, subsampling, where):
    """Issue 17: the edited frame is encoded again only from the first to the last touched MCU.
    Blocks are coded independently, so the coefficients are those of encoding the whole frame."""
    import cv2

    rng = np.random.default_rng(1)
    h, w = 157, 203  # not a whole number of MCUs: the edge MCUs are padded
    photo = cv2.resize(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "in.jpg"
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
    (want_y, want_cb, want_cr), luma, mcu = _whole_frame(path, edited, changed)
    assert (got.Y[luma] == want_y).all() and (got.Cb[mcu] == want_cb).all() and (got.Cr[mcu] == want_cr).all()
    assert (got.Y[~luma] == src.Y[~luma]).all() and (got.Cb[~mcu] == src.Cb[~mcu]).all()
    assert region[changed].all()
    a, b = np.asarray(Image.open(path).convert("RGB")), np.asarray(Image.open(out).convert("RGB"))
    assert (a[~region] == b[~region]).all()
