"""POST /v1/images/edits keeps what a local edit keeps: 16 bits with and without a mask, a 16-bit
mask's alpha read at its own depth, the prompt limit of every other path, lossless WebP and a JPEG
that says it is lossy. In-process (TestClient) on the tiny editor; test_openai.py speaks through the
official client."""

import base64
import io

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lasso_edit.imaging.png import encode
from lasso_edit.server.app import ServerSettings, create_app

from ..helpers import scene


@pytest.fixture(scope="module")
def client(tiny_editor, tmp_path_factory):
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path_factory.mktemp("serve")))
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as c:
        yield c


def _png(arr) -> bytes:
    if arr.dtype == np.uint16:
        return encode(arr)  # lasso_edit/png.py: 16-bit grey + alpha, RGB and RGBA PNG
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _deep(h=120, w=160) -> np.ndarray:
    """16-bit RGB with a low byte in every sample: no value is a multiple of 257."""
    img = scene(h, w).astype(np.uint16) * 257
    fine = np.random.default_rng(4).integers(1, 256, img.shape).astype(np.uint16)
    return np.where(img > 65535 - 256, img - fine, img + fine).astype(np.uint16) | 1


def _hole(h=120, w=160, alpha=255, dtype=np.uint8) -> np.ndarray:
    """An RGBA mask: `alpha` everywhere but a transparent hole (what may change)."""
    m = np.zeros((h, w, 4), dtype)
    m[..., 3] = alpha
    m[30:70, 40:90, 3] = 0
    return m


def _edit(client, image: bytes, mask: bytes | None = None, **data):
    files = {"image": ("in.png", image, "image/png")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return client.post("/v1/images/edits", files=files, data={"prompt": "a cat", "n": "1", **data})


def _decoded(item) -> np.ndarray:
    a = cv2.imdecode(np.frombuffer(base64.b64decode(item["b64_json"]), np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(a, cv2.COLOR_BGR2RGB if a.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)


def test_a_16_bit_image_with_a_mask_comes_back_16_bit_and_every_opaque_pixel_identical(client):
    img, mask = _deep(), _hole()
    r = _edit(client, _png(img), _png(mask), seed="1")
    assert r.status_code == 200, r.text
    (item,) = r.json()["data"]
    out = _decoded(item)
    opaque = mask[..., 3] > 0
    assert out.dtype == np.uint16 and out.shape == img.shape
    assert (out[opaque] == img[opaque]).all()  # all 16 bits of every opaque pixel
    assert (out[~opaque] != img[~opaque]).any()
    proof = item["lasso_preservation"]
    assert proof["bits"] == 16 and proof["changed_outside"] == 0 and proof["outside_pixels"] == int(opaque.sum())


def test_a_16_bit_image_without_a_mask_comes_back_16_bit_identical_outside_lassos_mask(client):
    img = _deep()
    r = _edit(client, _png(img), prompt="remove the red disc")
    (item,) = r.json()["data"]
    out, mask = _decoded(item), np.asarray(Image.open(io.BytesIO(base64.b64decode(item["lasso_mask_b64"])))) > 0
    assert out.dtype == np.uint16 and mask.any() and (out[~mask] == img[~mask]).all()
    assert item["lasso_preservation"]["bits"] == 16 and item["lasso_preservation"]["changed_outside"] == 0


@pytest.mark.parametrize("channels", [4, 2])  # RGBA64 and 16-bit grey + alpha (Pillow opens both at 8 bits)
def test_a_16_bit_masks_alpha_is_read_at_its_own_depth(client, channels):
    img = scene()
    mask = _hole(alpha=100, dtype=np.uint16)  # 100 of 65535: kept, though its high byte is 0
    mask = mask if channels == 4 else mask[..., [0, 3]]
    r = _edit(client, _png(img), _png(mask), seed="2")
    assert r.status_code == 200, r.text
    (item,) = r.json()["data"]
    out = _decoded(item)
    kept = mask[..., -1] > 0
    assert (out[kept] == img[kept]).all() and (out[~kept] != img[~kept]).any()
    proof = item["lasso_preservation"]  # measured against the mask as it was sent
    assert proof["outside_pixels"] == int(kept.sum()) and proof["changed_outside"] == 0


@pytest.mark.parametrize("with_mask", [True, False])
def test_a_prompt_past_the_limit_is_refused_naming_prompt_with_a_mask_or_without(client, with_mask):
    r = _edit(client, _png(scene()), _png(_hole()) if with_mask else None, prompt="a cat " * 400)
    err = r.json()["error"]
    assert r.status_code == 400 and err["param"] == "prompt" and "Lasso reads at most 2,000" in err["message"]


def test_webp_is_lossless_and_keeps_alpha(client):
    img = np.dstack([scene(), np.full((120, 160), 255, np.uint8)])
    img[:10, :10, 3] = 0  # see-through, with colour under it
    img[:10, :10, :3] = 77
    mask = _hole()
    r = _edit(client, _png(img), _png(mask), output_format="webp", seed="3")
    (item,) = r.json()["data"]
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(item["b64_json"]))))
    opaque = mask[..., 3] > 0
    assert out.shape == img.shape and (out[opaque] == img[opaque]).all()
    assert item["lasso_preservation"]["identical_outside"] is True
    assert not [w for w in item["lasso_warnings"] if "WEBP" in w or "bit-identical" in w or "alpha" in w]


def test_jpeg_says_it_is_lossy_and_its_proof_is_measured(client):
    r = _edit(client, _png(scene()), _png(_hole()), output_format="jpeg", seed="3")
    (item,) = r.json()["data"]
    assert any("JPEG re-encodes the whole image" in w for w in item["lasso_warnings"])
    proof = item["lasso_preservation"]
    assert proof["decoded_jpeg"] is True and proof["identical_outside"] is False and proof["changed_outside"] > 0
