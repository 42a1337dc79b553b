"""The HTTP API with the tiny preset: every route, the errors, sessions across a restart, the queue."""

import base64
import io
import json
import threading

import numpy as np
import pytest
from fastapi.testclient import TestClient  # the serve extra is in the test extra: these never skip
from PIL import Image

from lasso_edit.server.app import ServerSettings, create_app
from lasso_edit.server.jobs import JobQueue, QueueFull, QueueTimeout

from ..helpers import noise_image, scene
from ..helpers import png_bytes as _png


def _until(condition) -> None:
    from ..helpers import until

    until(condition, every=0.005)


@pytest.fixture(scope="module")
def served(tiny_editor, tmp_path_factory):
    data = tmp_path_factory.mktemp("serve")
    settings = ServerSettings(preset="tiny", data_dir=str(data), max_upload_mb=1, queue=2)
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as client:
        yield client, settings


def test_health_and_models(served):
    client, _ = served
    assert client.get("/healthz").json()["ok"] is True
    models = client.get("/v1/models").json()
    assert models["models"]["segmenter"] == "tiny:segmenter"
    assert models["licences"]["segmenter"] is None  # a tiny model: no licence listed


def test_models_says_each_models_licence_and_whether_it_is_gated(served, monkeypatch):
    from lasso_edit.core.licences import LICENCES, Licence

    client, _ = served
    monkeypatch.setitem(LICENCES, "tiny:inpainter", Licence("FLUX.1 [dev] non-commercial", gated=True))
    got = client.get("/v1/models").json()["licences"]
    assert got["inpainter"] == {"licence": "FLUX.1 [dev] non-commercial", "gated": True}


def test_edit_answers_the_image_as_png_of_the_input_size(served):
    client, _ = served
    img = scene()
    r = client.post("/v1/edit", files={"image": ("in.png", _png(img), "image/png")},
                    data={"instruction": "make the disc green", "seed": "3"})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.headers["x-lasso-seed"] == "3"
    out = np.asarray(Image.open(io.BytesIO(r.content)))
    assert out.shape == img.shape and (out != img).any()


def test_edit_as_json_has_image_mask_plan_seed_and_the_pixels_outside_the_mask_kept(served):
    client, _ = served
    img = scene()
    r = client.post("/v1/edit", files={"image": ("in.png", _png(img), "image/png")},
                    data={"instruction": "remove the square", "seed": "5"}, headers={"Accept": "application/json"})
    d = r.json()
    assert r.status_code == 200 and d["seed"] == 5 and d["plan"]["edits"][0]["action"] == "remove"
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["image"]))))
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(d["mask"])))) > 0
    assert (out[~mask] == img[~mask]).all() and mask.any()


def test_plan_is_the_dry_run_with_boxes_and_candidate_masks(served):
    client, _ = served
    r = client.post("/v1/plan", files={"image": ("in.png", _png(scene()), "image/png")},
                    data={"instruction": "make the disc green"})
    d = r.json()
    assert r.status_code == 200 and d["edits"][0]["value"] == "green" and len(d["masks"]) == 1
    assert d["groundings"][0]["boxes"] and d["candidates"][0]


@pytest.mark.parametrize("body,status,words", [
    ({"files": {"image": ("x.png", b"not an image at all", "image/png")}, "data": {"instruction": "remove it"}},
     415, "not an image"),
    ({"files": {"image": ("x.png", _png(scene()), "image/png")}, "data": {"instruction": "x" * 2001}}, 422,
     "at most 2,000"),
    ({"files": {"image": ("x.png", _png(scene()), "image/png")}, "data": {"instruction": ""}}, 422, "instruction"),
    ({"data": {"instruction": "remove the dog"}}, 422, "image"),
    ({"files": {"image": ("x.png", _png(scene()), "image/png")}, "data": {"instruction": "remove it", "steps": "0"}},
     422, "steps must be in"),
])
def test_bad_requests_are_json_errors_in_words(served, body, status, words):
    client, _ = served
    r = client.post("/v1/edit", **body)
    assert r.status_code == status and words in r.json()["detail"], r.text


def test_too_large_is_413_before_the_body_is_read(served):
    client, settings = served
    big = noise_image(800, 800)  # ~1.9 MB as PNG, over the 1 MB limit
    r = client.post("/v1/edit", files={"image": ("big.png", _png(big), "image/png")}, data={"instruction": "remove x"})
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_unknown_routes_and_sessions_are_json_404(served):
    client, _ = served
    assert client.get("/v1/nothing").json() == {"detail": "Not Found"}
    r = client.get("/v1/sessions/" + "A" * 22)
    assert r.status_code == 404 and "no session" in r.json()["detail"]
    assert client.get("/v1/sessions/..%2F..%2Fetc").status_code == 404


def test_a_session_over_http_survives_a_restart(tiny_editor, tmp_path):
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path))
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as client:
        sid = client.post("/v1/sessions", files={"image": ("in.png", _png(scene()), "image/png")}).json()["id"]
        s = client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "make the disc green", "seed": "1"}).json()
        assert s["cursor"] == 1 and s["can_undo"]
        client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "remove the square", "seed": "2"})
        assert client.post(f"/v1/sessions/{sid}/undo").json()["cursor"] == 1
        branch = client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "make the disc blue"}).json()
        assert branch["cursor"] == 3 and [st["parent"] for st in branch["steps"]] == [0, 1, 1]
        preview = client.post(f"/v1/sessions/{sid}/plan", data={"instruction": "remove the disc"}).json()
        assert preview["edits"][0]["action"] == "remove"
    with TestClient(create_app(settings, editor=tiny_editor),
                    base_url="http://127.0.0.1") as client:  # a restarted server
        again = client.get(f"/v1/sessions/{sid}").json()
        assert again["cursor"] == 3 and len(again["steps"]) == 3
        assert client.post(f"/v1/sessions/{sid}/redo").json()["cursor"] == 3
        image = client.get(f"/v1/sessions/{sid}/image", params={"step": 2})
        assert image.status_code == 200 and Image.open(io.BytesIO(image.content)).size == (160, 120)
        original = client.get(f"/v1/sessions/{sid}/image", params={"step": 0})
        assert original.content == _png(scene()) and original.headers["content-type"] == "image/png"
        assert client.delete(f"/v1/sessions/{sid}").status_code == 204
        assert client.get(f"/v1/sessions/{sid}").status_code == 404


def test_the_api_key_guards_v1_but_not_health(tiny_editor, tmp_path):
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path), api_key="s3cret")
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_a_full_queue_answers_429_with_retry_after_and_never_500(tiny_editor, tmp_path):
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path), queue=1, timeout_s=60)
    app = create_app(settings, editor=tiny_editor)
    gate = threading.Event()
    app.state.jobs.submit(gate.wait)  # the worker is busy ...
    _until(lambda: app.state.jobs.running == 1)
    app.state.jobs.submit(lambda: None)  # ... and the one place in the queue is taken
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.post("/v1/edit", files={"image": ("in.png", _png(scene()), "image/png")},
                        data={"instruction": "remove the square"})
        assert r.status_code == 429 and r.headers["retry-after"] and "queue is full" in r.json()["detail"]
        gate.set()
        assert client.get("/healthz").status_code == 200
    assert list((tmp_path / "uploads").iterdir()) == []  # no upload left behind


def test_the_job_queue_is_bounded_and_times_out_waiting_jobs():
    jobs = JobQueue(size=1)
    gate = threading.Event()
    running = jobs.submit(gate.wait)
    _until(lambda: jobs.running == 1)
    waiting = jobs.submit(lambda: "done")
    with pytest.raises(QueueFull):
        jobs.submit(lambda: None)
    with pytest.raises(QueueTimeout):
        jobs.wait(waiting, 0.05)
    assert waiting.cancelled() and jobs.waiting == 0  # a job that timed out never runs, and its place is free
    again = jobs.submit(lambda: 7)  # issue 16 #9: cancelled entries used to hold their place (429s)
    gate.set()
    assert jobs.wait(running, 5) is True and jobs.wait(again, 5) == 7
    jobs.close()


def test_a_running_job_whose_caller_gave_up_stops_at_its_next_report():
    from lasso_edit.server.jobs import Cancelled

    jobs = JobQueue(size=1)
    reports, gate = threading.Event(), threading.Event()
    box = []

    def work():
        while True:  # an edit reporting its steps
            reports.set()
            gate.wait()
            jobs.check(box[0])

    box.append(jobs.submit(work))
    reports.wait()
    with pytest.raises(QueueTimeout):
        jobs.wait(box[0], 0.01)
    gate.set()
    with pytest.raises(Cancelled, match="timed out"):
        box[0].result()
    jobs.close()


def test_serve_is_a_cli_command_with_its_options():
    from ..helpers import run_cli

    r = run_cli("serve", "--help", process=False)
    assert r.returncode == 0 and "--api-key" in r.stdout and "--queue" in r.stdout


def test_32_concurrent_edits_against_a_queue_of_2_get_200_429_or_503_and_never_500(tiny_editor, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path), queue=2, timeout_s=30)
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as client:
        def one(i):
            r = client.post("/v1/edit", files={"image": ("in.png", _png(scene()), "image/png")},
                            data={"instruction": "make the disc green", "seed": str(i)})
            return r.status_code, r.headers.get("retry-after")

        with ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(one, range(32)))
        codes = [c for c, _ in answers]
        assert set(codes) <= {200, 429, 503} and 200 in codes and 429 in codes, codes
        assert all(retry for code, retry in answers if code in (429, 503))
        assert client.get("/healthz").json()["ok"] is True
    assert list((tmp_path / "uploads").iterdir()) == []


def test_an_image_over_the_pixel_limit_is_413_and_the_kinds_of_bad_image_are_typed(served, monkeypatch):
    from lasso_edit.core.errors import ImageTooLargeError, UnreadableImageError
    from lasso_edit.imaging import load_image

    client, _ = served
    monkeypatch.setenv("LASSO_MAX_PIXELS", "100")  # the decompression-bomb guard, made small
    r = client.post("/v1/edit", files={"image": ("in.png", _png(scene()), "image/png")}, data={"instruction": "x y"})
    assert r.status_code == 413 and "MP limit" in r.json()["detail"]
    # the server's path is scrubbed into words that still read (issue 16 #12: "image the uploaded image is")
    assert r.json()["detail"].startswith("the uploaded image is over the 0 MP limit"), r.json()["detail"]
    with pytest.raises(ImageTooLargeError):
        load_image(scene())
    monkeypatch.delenv("LASSO_MAX_PIXELS")
    with pytest.raises(UnreadableImageError):
        load_image(__file__)  # this test file: text, not an image


def test_lasso_edit_server_sends_the_job_and_writes_like_a_local_edit(live_server, tmp_path):
    from ..helpers import run_cli, save

    url = live_server()
    src = save(scene(), tmp_path / "in.png")
    out, mask, plan = tmp_path / "out.png", tmp_path / "m.png", tmp_path / "p.json"
    r = run_cli("edit", str(src), "make the disc green", "-o", str(out), "--mask-out", str(mask), "--plan-out",
                str(plan), "--seed", "9", "--server", url)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).size == (160, 120) and Image.open(mask).size == (160, 120)
    assert json.loads(plan.read_text())["seed"] == 9 and f"edited by {url}" in r.stdout
    before, after, m = np.asarray(Image.open(src)), np.asarray(Image.open(out)), np.asarray(Image.open(mask)) > 0
    assert (after[~m] == before[~m]).all()


def test_lasso_edit_server_errors_are_the_local_ones(live_server, tmp_path):
    from ..helpers import run_cli, save

    url = live_server(api_key="k")
    src = save(scene(), tmp_path / "in.png")
    r = run_cli("edit", str(src), "make the disc green", "-o", str(tmp_path / "o.png"), "--server", url)
    assert r.returncode == 2 and "answered 401" in r.stderr and "API key" in r.stderr
    assert not (tmp_path / "o.png").exists()
    r = run_cli("edit", str(src), "make the disc green", "-o", str(tmp_path / "o.png"), "--server", url,
                "--api-key", "k", "-q", "--seed", "4")
    assert r.returncode == 0 and r.stdout.strip() == "4"
    r = run_cli("edit", str(src), "make the disc green", "-o", str(tmp_path / "o.png"), "--server",
                "http://127.0.0.1:9")  # nothing listens there
    assert r.returncode == 3 and "cannot reach the Lasso server" in r.stderr


@pytest.mark.parametrize("kind", ["jpeg", "png16"])
def test_lasso_edit_server_writes_exactly_what_a_local_edit_writes(live_server, tmp_path, kind):
    """Issue 16 #11: JPEG in / JPEG out through --server re-encoded everything (33,087 px changed
    outside the mask) and 16-bit came back 8-bit. Now the same seed gives the same bytes."""
    import re

    from ..helpers import run_cli

    url = live_server()
    if kind == "jpeg":
        src, suffix = tmp_path / "in.jpg", ".jpg"
        Image.fromarray(scene(240, 320)).save(src, quality=90)
    else:
        import cv2

        src, suffix = tmp_path / "in.png", ".png"
        deep = (np.random.default_rng(0).integers(0, 65536, (120, 160, 3))).astype(np.uint16)
        cv2.imwrite(str(src), deep)
    runs = {}
    for where in ("local", "server"):
        out, mask, plan = (tmp_path / f"{where}{suffix}", tmp_path / f"{where}-m.png", tmp_path / f"{where}.json")
        args = ["edit", str(src), "make the disc green", "-o", str(out), "--mask-out", str(mask), "--plan-out",
                str(plan), "--seed", "9", "--preset", "tiny",
                "--no-credentials"]  # a signature differs per file (its time, its ids): the encoding is compared
        r = run_cli(*args, *(["--server", url] if where == "server" else []))
        assert r.returncode == 0, r.stderr
        runs[where] = (out.read_bytes(), mask.read_bytes(), json.loads(plan.read_text()), r.stdout, r.stderr)
    local, served = runs["local"], runs["server"]
    assert served[0] == local[0] and served[1] == local[1]  # the image and the mask, byte for byte
    assert served[2]["edits"] == local[2]["edits"] and served[2]["steps"] == local[2]["steps"]
    if kind == "png16":
        assert Image.open(tmp_path / "server.png").mode == "RGB" and (
            cv2.imread(str(tmp_path / "server.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16)

    def lines(out):  # the same report, timings aside
        return [re.sub(r"; (load|parse).*", "", line).replace("server.", "local.") for line in out.splitlines()]

    assert lines(served[3]) == lines(local[3])
    assert served[4] == local[4]  # the same warnings


@pytest.mark.parametrize("header", ["Bearer s3cretX", "XBearer s3cret", "Bearer s3cret, Bearer x", "bearer s3cret",
                                    "Bearer s3cre", "s3cret"])
def test_the_api_key_must_match_whole_not_as_a_substring(tiny_editor, tmp_path, header):
    """Issue 18's surviving mutation: the key compared by substring let any header holding it in."""
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path), api_key="s3cret")
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as client:
        assert client.get("/v1/models", headers={"Authorization": header}).status_code == 401


def test_an_error_answer_carries_the_exit_code_the_cli_would_give(served):
    """Issue 18's surviving mutation: `lasso edit --server` exits with the server's exit_code."""
    client, _ = served
    r = client.post("/v1/edit", files={"image": ("in.png", _png(scene()), "image/png")}, data={"instruction": "   "})
    assert r.status_code in (400, 422) and r.json()["exit_code"] == 2
    r = client.post("/v1/edit", files={"image": ("in.png", b"not an image", "image/png")},
                    data={"instruction": "remove the square"})
    assert r.status_code == 415 and r.json()["exit_code"] == 2


def test_a_request_may_choose_an_offered_preset_and_no_other(tiny_editor, tmp_path, klein_preset):
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "s"), offer=(klein_preset,))
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as client:
        offered = client.get("/v1/models").json()["offered"]
        assert [o["preset"] for o in offered] == ["tiny", "tiny-klein"]
        assert offered[1]["models"]["inpainter"]["model"] == "tiny:flux2-klein" and offered[1]["description"]
        files = {"image": ("a.png", _png(scene()), "image/png")}
        r = client.post("/v1/edit", data={"instruction": "remove the red disc", "preset": klein_preset, "seed": "1"},
                        files=files, headers={"accept": "application/json"})
        assert r.status_code == 200, r.text
        assert r.json()["models"]["inpainter"] == "tiny:flux2-klein"
        assert tiny_editor.loaded == []  # the server's own preset made room for the chosen one
        r = client.post("/v1/edit", data={"instruction": "remove the red disc", "seed": "1"}, files=files,
                        headers={"accept": "application/json"})
        assert r.json()["models"]["inpainter"] == "tiny:inpainter"  # no preset: the server's own
        r = client.post("/v1/plan", data={"instruction": "remove the red disc", "preset": "best"}, files=files)
        assert r.status_code == 422 and "offers the presets tiny, tiny-klein; not 'best'" in r.json()["detail"]
