"""POST /v1/contain: another app's drifted edit of the repository's photo, put back so that only
its region changes; the answer in the original's format with the report; bad pairs, guards and
limits as every /v1 route has them; no model and no wait behind the edit queue."""

from __future__ import annotations

import base64
import io
import json
import threading

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lasso_edit.server.app import ServerSettings, create_app

from ..helpers import png_bytes, until
from ..imaging.test_align import coffee, drift, painted


def jpeg_bytes(arr: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the photo, another app's answer: painted, zoomed, turned, shifted, recoloured at 1024x1024,
    and where the paint went, grown by 12 px: no pixel outside it may change)."""
    orig = coffee()
    truth = painted(orig)
    edited, _ = drift(truth, size=(1024, 1024))
    changed = np.any(truth != orig, axis=2)
    near = cv2.dilate(changed.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    return orig, edited, near


@pytest.fixture(scope="module")
def client(tiny_editor, tmp_path_factory):
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path_factory.mktemp("serve")), max_upload_mb=4)
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as c:
        yield c


def send(client, original: bytes, edited: bytes, mask: bytes | None = None, **kwargs):
    files = {"original": ("photo", original, "image/png"), "edited": ("theirs", edited, "image/jpeg")}
    if mask is not None:
        files["mask"] = ("mask", mask, "image/png")
    return client.post("/v1/contain", files=files, **kwargs)


def test_a_drifted_answer_comes_back_with_no_pixel_outside_its_region_changed(client, pair):
    orig, edited, near = pair
    r = send(client, png_bytes(orig), jpeg_bytes(edited))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    assert r.headers["x-lasso-changed-outside"] == "0"
    assert 'filename="contained.png"' in r.headers["content-disposition"]
    report = json.loads(r.headers["x-lasso-report"])
    assert report["region_from"] == "changes" and report["preservation"]["identical_outside"]
    assert abs(report["alignment"]["scale"] - 1.03) < 0.003 and report["alignment"]["edited_size"] == [1024, 1024]
    assert int(r.headers["x-lasso-region-px"]) == report["region_px"] < near.sum()
    out = np.asarray(Image.open(io.BytesIO(r.content)))
    assert out.shape == orig.shape
    assert (out[~near] == orig[~near]).all()  # bit-identical everywhere the other app did not paint
    assert np.median(np.abs(out.astype(int) - orig.astype(int))[near].max(axis=1)) > 20  # its paint is there


def test_the_json_answer_has_the_report_the_image_and_the_region(client, pair):
    orig, edited, near = pair
    r = send(client, png_bytes(orig), jpeg_bytes(edited), headers={"Accept": "application/json"})
    d = r.json()
    assert r.status_code == 200 and set(d) >= {
        "alignment",
        "colour",
        "region_px",
        "region_from",
        "warnings",
        "preservation",
        "image",
        "mask",
        "media_type",
        "filename",
    }
    assert d["media_type"] == "image/png" and d["filename"] == "contained.png"
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["image"]))))
    region = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["mask"])))) > 0
    assert region.shape == orig.shape[:2] and not region[~near].any()
    assert (out[~region] == orig[~region]).all() and (out[region] != orig[region]).any()
    assert d["preservation"]["changed_outside"] == 0 and d["preservation"]["changed_inside"] > 0


def test_a_jpeg_original_comes_back_as_jpeg_with_its_untouched_blocks(client, pair):
    orig, edited, near = pair
    src = jpeg_bytes(orig, quality=90)
    r = send(client, src, jpeg_bytes(edited), headers={"Accept": "application/json"})
    d = r.json()
    assert r.status_code == 200 and d["media_type"] == "image/jpeg" and d["filename"] == "contained.jpg"
    assert d["preservation"]["identical_outside"] and d["preservation"]["decoded_jpeg"]
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["image"]))))
    before = np.asarray(Image.open(io.BytesIO(src)))
    blocks = cv2.dilate(near.astype(np.uint8), np.ones((33, 33), np.uint8)) > 0  # grown to the 16 px blocks
    assert (out[~blocks] == before[~blocks]).all()


def test_a_given_mask_is_the_region_and_nothing_outside_it_changes(client, pair):
    orig, edited, near = pair
    allowed = np.zeros(orig.shape[:2], np.uint8)
    allowed[:, : orig.shape[1] // 2] = 255  # only the left half: the magenta block, not the green ellipse
    r = send(client, png_bytes(orig), jpeg_bytes(edited), png_bytes(allowed))
    report = json.loads(r.headers["x-lasso-report"])
    assert r.status_code == 200 and report["region_from"] == "mask"
    out = np.asarray(Image.open(io.BytesIO(r.content)))
    outside = allowed == 0
    assert (out[outside] == orig[outside]).all() and (out[~outside] != orig[~outside]).any()


def test_a_pair_that_is_not_an_edit_is_a_422_naming_the_residual(client):
    orig = coffee()
    r = send(client, png_bytes(orig[:200]), png_bytes(np.ascontiguousarray(orig[200:])))
    assert r.status_code == 422 and r.json()["exit_code"] == 2
    assert "levels" in r.json()["detail"] and "not look like an edit" in r.json()["detail"]
    unchanged = send(client, png_bytes(orig), png_bytes(orig))
    assert unchanged.status_code == 422 and "nothing to put back" in unchanged.json()["detail"]


def test_bad_uploads_are_said_as_the_other_routes_say_them(client, pair):
    orig, edited, _ = pair
    r = send(client, b"not a picture", jpeg_bytes(edited))
    assert r.status_code == 415 and "Traceback" not in r.text
    r = client.post("/v1/contain", files={"original": ("photo", png_bytes(orig), "image/png")})
    assert r.status_code == 422 and "edited" in r.json()["detail"]
    big = np.random.default_rng(0).integers(0, 255, (1400, 1400, 3), np.uint8)  # about 5.6 MB as PNG
    r = send(client, png_bytes(big), jpeg_bytes(edited))
    assert r.status_code == 413 and "limit is 4 MB" in r.json()["detail"]
    r = send(client, png_bytes(orig), jpeg_bytes(edited), png_bytes(np.zeros((10, 10), np.uint8) + 255))
    assert r.status_code == 422 and "the mask is 10x10" in r.json()["detail"]


def test_the_api_key_and_the_own_origin_guard_it(tiny_editor, tmp_path, pair):
    orig, edited, _ = pair
    keyed = ServerSettings(preset="tiny", data_dir=str(tmp_path / "keyed"), api_key="s3cret")
    with TestClient(create_app(keyed, editor=tiny_editor), base_url="http://127.0.0.1") as c:
        r = send(c, png_bytes(orig), jpeg_bytes(edited))
        assert r.status_code == 401 and "API key" in r.json()["detail"]
        r = send(c, png_bytes(orig), jpeg_bytes(edited), headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200
    keyless = ServerSettings(preset="tiny", data_dir=str(tmp_path / "keyless"))
    with TestClient(create_app(keyless, editor=tiny_editor), base_url="http://127.0.0.1") as c:
        r = send(c, png_bytes(orig), jpeg_bytes(edited), headers={"Origin": "https://evil.example"})
        assert r.status_code == 403 and "another origin" in r.json()["detail"]


def test_it_answers_while_an_edit_holds_the_queue_and_loads_no_model(tmp_path, tiny_dir, pair):
    from lasso_edit import Editor

    orig, edited, _ = pair
    editor = Editor.from_preset("tiny", device="cpu")  # its own: nothing loaded yet
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "serve"), queue=1)
    app = create_app(settings, editor=editor)
    gate = threading.Event()
    with TestClient(app, base_url="http://127.0.0.1") as c:
        app.state.jobs.submit(gate.wait)  # the worker is painting ...
        until(lambda: app.state.jobs.running == 1)
        app.state.jobs.submit(lambda: None)  # ... and the queue's one place is taken
        try:
            r = send(c, png_bytes(orig), jpeg_bytes(edited))
            assert r.status_code == 200 and r.headers["x-lasso-changed-outside"] == "0"
            assert app.state.jobs.running == 1 and not gate.is_set()  # answered with the edit still running
            assert c.get("/v1/models").json()["loaded"] == []
        finally:
            gate.set()
