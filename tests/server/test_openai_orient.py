"""POST /v1/images/edits with an EXIF-rotated input: the mask is read in the image file's own pixel
grid and turned by the image's orientation as the image is (or, matching only a non-square image's
displayed size, taken as already turned); and the fields a client can send in the wrong form (`n`
not in ASCII digits, `mask` as text, `prompt` as a file, a mask over the pixel limit) are 400s and
413s naming them. In-process (TestClient) on the tiny editor."""

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageOps

from lasso_edit.server.app import ServerSettings, create_app

from ..helpers import scene


@pytest.fixture(scope="module")
def client(tiny_editor, tmp_path_factory):
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path_factory.mktemp("serve")))
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as c:
        yield c


def _file(arr: np.ndarray, orientation: int = 1, fmt: str = "PNG") -> bytes:
    """`arr` as stored pixels, tagged with EXIF `orientation` (1: none)."""
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, exif=exif, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _shown(data: bytes) -> np.ndarray:
    """What a viewer shows of a file: Pillow's own exif_transpose (not Lasso's), as an array."""
    return np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))


def _mask(h: int, w: int) -> np.ndarray:
    """An RGBA mask in a grid of h x w: opaque but for an off-centre hole that no turn maps onto itself."""
    m = np.full((h, w, 4), 255, np.uint8)
    m[8:30, 44:80, 3] = 0
    return m


def _edit(client, image: bytes, mask: bytes | str | None = None, **data):
    files = {"image": ("in.png", image, "image/png")}
    form = {"prompt": "a cat", "n": "1", **data}
    if isinstance(mask, bytes):
        files["mask"] = ("mask.png", mask, "image/png")
    elif mask is not None:
        form["mask"] = mask
    return client.post("/v1/images/edits", files=files, data=form)


def _answer(r) -> tuple[np.ndarray, dict]:
    assert r.status_code == 200, r.text
    (item,) = r.json()["data"]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))), item


CASES = [(fmt, o, hw) for fmt in ["PNG"] for o in (6, 8, 3) for hw in [(96, 128), (96, 96)]]
CASES += [("JPEG", 6, (96, 128)), ("JPEG", 8, (96, 96))]


@pytest.mark.parametrize("fmt,orientation,hw", CASES, ids=[f"{f}-{o}-{'x'.join(map(str, hw))}" for f, o, hw in CASES])
def test_a_mask_in_the_files_own_grid_is_turned_as_the_image_is(client, fmt, orientation, hw):
    h, w = hw
    stored = scene(h, w)
    image = _file(stored, orientation, fmt)
    mask = _file(_mask(h, w))  # drawn over the file's own grid: Image.open(image).size
    out, item = _answer(_edit(client, image, mask))
    shown = _shown(image)
    keep = _shown(_file(_mask(h, w), orientation))[..., 3] > 0  # the client's mask, turned as the image is
    assert out.shape == shown.shape
    assert (out[keep] == shown[keep]).all()  # every pixel the client kept, bit-identical
    assert (out[~keep] != shown[~keep]).any()  # and the edit is where the client drew it
    assert item["lasso_preservation"]["identical_outside"] is True


def test_a_mask_of_only_the_displayed_size_is_taken_as_already_turned(client):
    image = _file(scene(96, 128), 6)
    shown = _shown(image)  # 128 rows x 96 columns
    mask = _mask(*shown.shape[:2])
    out, _ = _answer(_edit(client, image, _file(mask)))
    keep = mask[..., 3] > 0
    assert (out[keep] == shown[keep]).all() and (out[~keep] != shown[~keep]).any()


def test_a_masks_own_orientation_is_ignored_its_pixels_read_as_stored(client):
    stored = scene(96, 128)
    out, _ = _answer(_edit(client, _file(stored), _file(_mask(96, 128), 6)))
    keep = _mask(96, 128)[..., 3] > 0
    assert (out[keep] == stored[keep]).all() and (out[~keep] != stored[~keep]).any()


def test_a_mask_of_neither_size_names_both_of_a_turned_image(client):
    r = _edit(client, _file(scene(96, 128), 6), _file(np.zeros((10, 10, 4), np.uint8)))
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "mask"
    assert "mask is 10x10; the image is 128x96 in its file's pixel grid (96x128 as shown" in err["message"]


@pytest.mark.parametrize("n", ["1_0", "\u0662", " 2 ", "+1", "2.0", ""])
def test_n_is_ascii_digits_only(client, n):
    r = _edit(client, _file(scene(96, 128)), n=n)
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "n" and "whole number from 1 to 10" in err["message"]


def test_a_mask_sent_as_text_is_refused_not_ignored(client):
    r = _edit(client, _file(scene(96, 128)), mask="mask.png")
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "mask" and "must be a file" in err["message"]


@pytest.mark.parametrize("field", ["prompt", "n", "size", "model"])
def test_a_text_field_sent_as_a_file_is_refused_naming_it(client, field):
    data = {"prompt": "a cat", "n": "1"}
    data.pop(field, None)
    r = client.post(
        "/v1/images/edits",
        files={"image": ("in.png", _file(scene(96, 128)), "image/png"), field: ("x.txt", b"a cat", "text/plain")},
        data=data,
    )
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == field and "must be a text field, not a file" in err["message"]


def _png_header(w: int, h: int) -> bytes:
    """A PNG that claims w x h RGBA and holds no pixels: a decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_a_mask_over_the_pixel_limit_says_it_is_too_large(client):
    r = _edit(client, _file(scene(96, 128)), _png_header(60000, 60000))
    err = r.json()["error"]
    assert r.status_code == 413 and err["param"] == "mask"
    assert "mask is too large: over the 150 MP limit" in err["message"] and "128x96" in err["message"]
