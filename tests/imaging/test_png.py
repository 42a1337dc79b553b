"""png.py: Lasso's PNG writer gives the pixels and metadata Pillow's would, from a smaller, faster file."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from lasso_edit.imaging import png


@pytest.mark.parametrize("mode,dtype,channels", [("RGB", np.uint8, 3), ("RGBA", np.uint8, 4), ("L", np.uint8, 1),
                                                 ("LA", np.uint8, 2), ("RGB16", np.uint16, 3),
                                                 ("RGBA16", np.uint16, 4)])
@pytest.mark.parametrize("threads", [1, 3])
def test_every_pixel_decodes_as_written_in_every_mode(mode, dtype, channels, threads, monkeypatch):
    monkeypatch.setattr(png, "PIECE", 1000)  # many pieces: every seam between threads' deflates is crossed
    rng = np.random.default_rng(0)
    shape = (37, 53) if channels == 1 else (37, 53, channels)
    pixels = rng.integers(0, 65536 if dtype == np.uint16 else 256, shape).astype(dtype)
    data = png.encode(pixels, level=1, threads=threads)
    zlib.decompress(b"".join(_chunks(data, b"IDAT")))  # one valid zlib stream, checksum included
    if dtype == np.uint16:
        import cv2

        back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        back = cv2.cvtColor(back, cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGBA)
    else:
        img = Image.open(io.BytesIO(data))
        assert img.mode == mode
        back = np.asarray(img)
    assert back.dtype == pixels.dtype and (back == pixels).all()


def _chunks(data: bytes, kind: bytes) -> list[bytes]:
    out, i = [], 8
    while i < len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        if data[i + 4:i + 8] == kind:
            out.append(data[i + 8:i + 8 + n])
        i += 12 + n
    return out


def test_metadata_reads_back_as_pillows_own(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    icc = bytes(range(256)) * 3
    exif = Image.Exif()
    exif[0x010F] = "Lasso test camera"
    exif_bytes = exif.tobytes()
    ours = Image.open(io.BytesIO(png.encode(rgb, 1, icc=icc, dpi=(300, 300), exif=exif_bytes)))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", icc_profile=icc, dpi=(300, 300), exif=exif_bytes)
    theirs = Image.open(buf)
    assert ours.info["icc_profile"] == theirs.info["icc_profile"] == icc
    assert ours.info["dpi"] == theirs.info["dpi"]
    assert ours.getexif()[0x010F] == theirs.getexif()[0x010F] == "Lasso test camera"


def test_save_image_writes_png_through_the_fast_writer_and_pillow_reads_it(tmp_path):
    from lasso_edit.imaging import save_image

    rgb = np.random.default_rng(2).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    out = tmp_path / "o.png"
    save_image(Image.fromarray(rgb), out, png_compress=6)
    data = out.read_bytes()
    assert zlib.decompress(b"".join(_chunks(data, b"IDAT")))[0] == 2  # the Up filter: Lasso's writer, not Pillow's
    assert (np.asarray(Image.open(out)) == rgb).all()


def _old_encode(pixels, level, threads, icc=None, dpi=None, exif=None):
    """png.encode before issue 34, which joined the stream into new bytes at every step."""
    import struct

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    depth = 16 if pixels.dtype == np.uint16 else 8
    out = [png.SIGNATURE, chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, png.COLOUR_TYPE[channels], 0, 0, 0))]
    if icc:
        out.append(chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if dpi:
        out.append(chunk(b"pHYs", struct.pack(">IIB", *[int(round(float(d) / 0.0254)) for d in dpi], 1)))
    if exif:
        out.append(chunk(b"eXIf", exif))
    data = png.deflate(png.up_filtered(pixels).data.cast("B"), level, threads)
    out += [chunk(b"IDAT", data[i:i + png.IDAT_MAX]) for i in range(0, len(data), png.IDAT_MAX)]
    out.append(chunk(b"IEND", b""))
    return b"".join(out)


@pytest.mark.parametrize("idat_max", [1 << 30, 700])
@pytest.mark.parametrize("threads", [1, 3])
def test_the_stream_written_in_pieces_is_the_old_writers_bytes(idat_max, threads, monkeypatch):
    # issue 34: the compressed stream is copied once, into the file's bytes, not joined at each step
    monkeypatch.setattr(png, "PIECE", 1000)
    monkeypatch.setattr(png, "IDAT_MAX", idat_max)  # 700: the stream split over several IDAT chunks
    pixels = np.random.default_rng(5).integers(0, 256, (41, 67, 3), dtype=np.uint8)
    new = png.encode(pixels, 1, icc=b"icc", dpi=(72, 72), exif=b"II*\x00", threads=threads)
    assert new == _old_encode(pixels, 1, threads, icc=b"icc", dpi=(72, 72), exif=b"II*\x00")
    assert len(_chunks(new, b"IDAT")) == (1 if idat_max > 1 << 20 else -(-len(b"".join(_chunks(new, b"IDAT"))) // 700))
