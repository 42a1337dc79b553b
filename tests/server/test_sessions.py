"""The HTTP API, second part: corrected masks over HTTP, background jobs with progress, the page's
routes, and stopping: a cancelled edit, SIGTERM to `lasso serve`, and a killed server."""

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from lasso_edit.server.app import ServerSettings, create_app

from ..helpers import free_port, scene, until, wait_for_server
from ..helpers import png_bytes as _png


def _mask(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64)))) > 0


def _leftovers(root) -> list:
    """Temporary files anywhere under the data folder (uploads, half-written session files)."""
    return [p for p in root.rglob("*") if p.is_file() and (p.parent.name == "uploads" or p.name.endswith(".tmp"))]


@pytest.fixture(scope="module")
def server_editor(tiny_dir):
    """The editor `lasso serve` builds: the preset's detector offered for per-request grounders."""
    from lasso_edit import Editor

    return Editor.from_preset("tiny", device="cpu", optional=("detector",))


@pytest.fixture()
def client(server_editor, tmp_path):
    with TestClient(create_app(ServerSettings(preset="tiny", data_dir=str(tmp_path)), editor=server_editor),
                    base_url="http://127.0.0.1") as c:
        yield c


def _session(client, img=None) -> str:
    r = client.post("/v1/sessions", files={"image": ("in.png", _png(scene() if img is None else img), "image/png")})
    assert r.status_code == 201
    return r.json()["id"]


def _poll(client, job_id):
    """Poll the job until it ends (an event; no deadline), with every answer seen on the way."""
    seen = []
    while True:
        d = client.get(f"/v1/jobs/{job_id}").json()
        seen.append(d)
        if d["state"] in ("done", "failed"):
            return d, seen
        time.sleep(0.01)


def test_a_corrected_mask_is_previewed_then_painted_then_undone_redone_and_branched(client):
    sid = _session(client)
    first = client.post(f"/v1/sessions/{sid}/plan", data={"instruction": "remove the disc"}).json()
    assert first["describe"] == ["remove the disc"] and first["chosen"][0] in (0, 1, 2)
    assert len(first["candidates"][0]) == 3 and first["size"] == [160, 120]
    plan = json.dumps(first["plan"])
    fix = json.dumps({"points": [[80, 60], [20, 20]], "labels": [1, 0]})
    fixed = client.post(f"/v1/sessions/{sid}/plan", data={"plan": plan, "corrections": fix}).json()
    assert (_mask(fixed["masks"][0]) != _mask(first["masks"][0])).any()  # the clicks changed the mask
    other = next(k for k in range(3) if k != first["chosen"][0])
    picked = client.post(f"/v1/sessions/{sid}/plan",
                         data={"plan": plan, "corrections": json.dumps({"candidate": other})}).json()
    assert picked["chosen"] == [other]
    assert (_mask(picked["candidates"][0][other]) == _mask(first["candidates"][0][other])).all()

    # Apply what was previewed: the step's mask is the corrected preview's, the correction is recorded.
    s = client.post(f"/v1/sessions/{sid}/edit", data={"plan": plan, "corrections": fix, "seed": "1", "steps": "2"}).json()
    assert s["cursor"] == 1 and s["steps"][0]["corrections"] == {"0": {"points": [[80, 60], [20, 20]],
                                                                        "labels": [1, 0], "box": None,
                                                                        "candidate": None}}
    assert s["steps"][0]["instruction"] == "remove the disc"  # from the plan, none was typed
    step_mask = np.asarray(Image.open(io.BytesIO(client.get(f"/v1/sessions/{sid}/mask?step=1").content))) > 0
    assert (step_mask == _mask(fixed["masks"][0])).all()
    box = json.dumps({"box": [100, 30, 150, 100]})
    s = client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "make the square blue", "corrections": box}).json()
    assert s["cursor"] == 2 and s["path"] == [1, 2]
    assert client.post(f"/v1/sessions/{sid}/undo").json()["cursor"] == 1
    assert client.post(f"/v1/sessions/{sid}/redo").json()["cursor"] == 2
    client.post(f"/v1/sessions/{sid}/undo")
    s = client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "make the disc yellow"}).json()
    assert s["cursor"] == 3 and [st["parent"] for st in s["steps"]] == [0, 1, 1] and s["path"] == [1, 3]
    s = client.post(f"/v1/sessions/{sid}/go", data={"step": "2"}).json()  # back to the other branch
    assert s["cursor"] == 2 and s["path"] == [1, 2]
    assert client.get(f"/v1/sessions/{sid}/mask?step=0").status_code == 422  # the original has none


@pytest.mark.parametrize("data,words", [
    ({"corrections": "{points"}, "corrections must be JSON"),
    ({"corrections": json.dumps({"points": [[1, 2]], "labels": [3]})}, "labels must be one 1"),
    ({"corrections": json.dumps([{"edit": 0, "candidate": 1}, {"edit": 0, "box": [1, 1, 9, 9]}])}, "two corrections"),
    ({"corrections": json.dumps({"edit": 4, "candidate": 1})}, "correction is for edit 4"),
    ({"corrections": json.dumps({"points": [[900, 5]]})}, "outside the 160x120 image"),
    ({"corrections": json.dumps({"candidate": 9})}, "candidate 9 is not one"),
    ({"plan": "[1, 2]"}, "non-empty list of edits"),
    ({"plan": json.dumps({"edits": [{"action": "explode", "target": "car"}]})}, "unknown action 'explode'"),
    ({"parser": "psychic"}, "unknown parser 'psychic'"),
    ({"grounder": "dowsing"}, "unknown grounder 'dowsing'"),
])
def test_bad_corrections_plans_and_stages_are_422_in_words(client, data, words):
    sid = _session(client)
    r = client.post(f"/v1/sessions/{sid}/plan", data={"instruction": "remove the disc", **data})
    assert r.status_code == 422 and words in r.json()["detail"], r.text


def test_parser_and_grounder_per_request(client):
    r = client.post("/v1/plan", files={"image": ("in.png", _png(scene()), "image/png")},
                    data={"instruction": "make the disc green", "parser": "rules"})
    d = r.json()
    assert r.status_code == 200 and d["source"] == "rules" and not any("VLM's answer" in w for w in d["warnings"])
    assert not d["groundings"][0]["source"].startswith("detector")  # the tiny preset grounds with the VLM ...
    r = client.post("/v1/plan", files={"image": ("in.png", _png(scene()), "image/png")},
                    data={"instruction": "make the disc green", "grounder": "detector"})
    # ... or as asked: the tiny detector, whose random scores stay under the tiny preset's threshold,
    # finds nothing, which is the not-found path seen offline (issue 16 #18)
    assert r.status_code == 422 and r.json()["exit_code"] == 4 and "could not find 'disc'" in r.json()["detail"]
    r = client.post("/v1/edit", files={"image": ("in.png", _png(scene()), "image/png")},
                    data={"instruction": "make the disc green", "parser": "rules"}, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["plan"]["source"] == "rules"


def test_a_background_edit_reports_progress_then_the_session(client):
    sid = _session(client)
    r = client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "remove the disc", "steps": "30"},
                    headers={"Prefer": "respond-async"})
    assert r.status_code == 202 and r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
    assert r.json()["state"] in ("queued", "running") and len(r.json()["id"]) >= 22
    done, seen = _poll(client, r.json()["id"])
    assert done["state"] == "done" and done["result"]["cursor"] == 1 and done["step"] == done["steps"] == 30
    painting = [d for d in seen if d["steps"]]
    assert painting and all(d["steps"] == 30 and 1 <= d["step"] <= 30 for d in painting)
    assert any("painting 'disc': step" in d["message"] for d in painting if d["state"] == "running")
    assert client.get(f"/v1/sessions/{sid}").json()["cursor"] == 1


def test_a_failed_background_edit_says_why_and_changes_nothing(client):
    sid = _session(client)
    r = client.post(f"/v1/sessions/{sid}/edit", headers={"Prefer": "respond-async"},
                    data={"instruction": "remove the disc", "corrections": json.dumps({"candidate": 7})})
    done, _ = _poll(client, r.json()["id"])
    assert done["state"] == "failed" and done["error"]["status"] == 422 and "candidate 7" in done["error"]["detail"]
    assert client.get(f"/v1/sessions/{sid}").json()["steps"] == []
    r = client.get("/v1/jobs/" + "B" * 22)
    assert r.status_code == 404 and "no such job" in r.json()["detail"]


def test_shutdown_cancels_the_running_edit_which_leaves_the_session_and_no_files(client, tmp_path):
    sid = _session(client)
    r = client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "remove the disc", "steps": "999"},
                    headers={"Prefer": "respond-async"})
    job = r.json()["id"]
    until(lambda: client.get(f"/v1/jobs/{job}").json()["step"])  # painting has begun
    client.app.state.jobs.cancel_running()  # what SIGTERM does in `lasso serve`
    done, _ = _poll(client, job)
    assert done["state"] == "failed" and done["error"]["status"] == 503 and "shutting down" in done["error"]["detail"]
    assert done["error"]["retry_after"]
    assert client.get(f"/v1/sessions/{sid}").json()["steps"] == []
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in (tmp_path / "sessions" / sid).iterdir()) == \
        [".lock", "original.png", "session.json"]
    r = client.post("/v1/edit", files={"image": ("in.png", _png(scene()), "image/png")}, data={"instruction": "remove it"})
    assert r.status_code == 503 and r.headers["retry-after"]  # nothing new starts once shutdown has begun


def test_errors_never_show_the_servers_paths(client, tmp_path):
    r = client.post("/v1/edit", files={"image": ("notes.png", b"not a picture", "image/png")},
                    data={"instruction": "remove the disc"})
    assert r.status_code == 415 and str(tmp_path) not in r.text and "the uploaded image" in r.json()["detail"]


def test_the_page_and_its_files_are_served_without_the_key(tiny_editor, tmp_path):
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path), api_key="k")
    with TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1") as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/static/app.js" in page.text and "http" not in page.text.replace("http-equiv", "")  # no CDN
        for name, kind in (("app.js", "javascript"), ("app.css", "text/css"), ("favicon.svg", "svg")):
            r = c.get(f"/static/{name}")
            assert r.status_code == 200 and kind in r.headers["content-type"]
        assert c.get("/static/index.html").status_code == 404  # only the listed files
        assert c.get("/static/..%2F..%2Fapp.py").status_code == 404
        assert c.get("/v1/models").status_code == 401


# ---------------------------------------------------------------------- `lasso serve`, stopped for real
def _serve(tmp_path, tiny_dir, processes):
    import httpx

    port = free_port()
    env = {**os.environ, "LASSO_TINY_DIR": str(tiny_dir), "HF_HUB_OFFLINE": "1"}
    proc = processes.start([sys.executable, "-m", "lasso_edit.cli", "serve", "--preset", "tiny", "--port", str(port),
                            "--data-dir", str(tmp_path / "data")], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_server(proc, url)
    return proc, httpx.Client(base_url=url, timeout=None)


def _painting(http, sid) -> None:
    job = http.post(f"/v1/sessions/{sid}/edit", data={"instruction": "remove the disc", "steps": "999"},
                    headers={"Prefer": "respond-async"}).json()["id"]
    until(lambda: http.get(f"/v1/jobs/{job}").json()["step"], every=0.02)  # painting has begun


def test_sigterm_stops_lasso_serve_cleanly_mid_edit(tmp_path, tiny_dir, processes):
    proc, http = _serve(tmp_path, tiny_dir, processes)
    sid = http.post("/v1/sessions", files={"image": ("in.png", _png(scene()), "image/png")}).json()["id"]
    _painting(http, sid)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate()
    assert proc.returncode == 0 and "stopped" in out and "Traceback" not in out, out
    data = tmp_path / "data"
    assert _leftovers(data) == []
    # the 999-step edit was stopped, not waited for: it would have added its step
    assert json.loads((data / "sessions" / sid / "session.json").read_text())["steps"] == []


def test_a_killed_server_leaves_the_previous_step_intact(tmp_path, tiny_dir, tiny_editor, processes):
    proc, http = _serve(tmp_path, tiny_dir, processes)
    sid = http.post("/v1/sessions", files={"image": ("in.png", _png(scene()), "image/png")}).json()["id"]
    first = http.post(f"/v1/sessions/{sid}/edit", data={"instruction": "make the disc green", "seed": "1"}).json()
    assert first["cursor"] == 1
    _painting(http, sid)
    proc.kill()  # SIGKILL mid-edit: no cleanup at all
    proc.wait()
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "data"))
    with TestClient(create_app(settings, editor=tiny_editor),
                    base_url="http://127.0.0.1") as client:  # restarted on the same folder
        s = client.get(f"/v1/sessions/{sid}").json()
        assert s["cursor"] == 1 and len(s["steps"]) == 1 and s["steps"] == first["steps"]
        img = client.get(f"/v1/sessions/{sid}/image")
        assert img.status_code == 200 and Image.open(io.BytesIO(img.content)).size == (160, 120)
        again = client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "remove the square", "steps": "2"}).json()
        assert again["cursor"] == 2 and [st["parent"] for st in again["steps"]] == [0, 1]
    assert _leftovers(tmp_path / "data") == []


def test_a_tiff_upload_is_shown_to_browsers_as_png_and_downloaded_as_it_came(client):
    buf = io.BytesIO()
    Image.fromarray(scene()).save(buf, format="TIFF")
    sid = client.post("/v1/sessions", files={"image": ("scan.tif", buf.getvalue(), "image/tiff")}).json()["id"]
    assert client.get(f"/v1/sessions/{sid}/image?step=0").content == buf.getvalue()
    view = client.get(f"/v1/sessions/{sid}/image?step=0&view=true")
    assert view.headers["content-type"] == "image/png"
    assert (np.asarray(Image.open(io.BytesIO(view.content))) == scene()).all()
    png = client.post("/v1/sessions", files={"image": ("a.png", _png(scene()), "image/png")}).json()["id"]
    assert client.get(f"/v1/sessions/{png}/image?view=true").content == _png(scene())  # shown as it is


def test_a_session_edit_that_timed_out_is_stopped_and_adds_no_step(tiny_editor, tmp_path):
    """Issue 16 #9: a request answered 503 kept editing, and its step appeared later."""
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path), timeout_s=1)
    app = create_app(settings, editor=tiny_editor)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        sid = c.post("/v1/sessions", files={"image": ("in.png", _png(scene()), "image/png")}).json()["id"]
        r = c.post(f"/v1/sessions/{sid}/edit", data={"instruction": "remove the disc", "steps": "999"})
        assert r.status_code == 503 and r.headers["retry-after"]
        jobs = app.state.jobs
        done = jobs.submit(lambda: None)  # runs once the stopped edit has let go of the worker
        done.result()
        assert c.get(f"/v1/sessions/{sid}").json()["steps"] == []


def test_recent_sessions_are_listed_to_this_machine_or_with_the_key(tiny_editor, tmp_path):
    """Issue 16 #13: an API route lists the recent sessions; a session id is the key to its photos,
    so a keyless server lists them to loopback clients only."""
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "a"))
    app = create_app(settings, editor=tiny_editor)
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 5000)) as c:
        first, second = _session(c), _session(c)
        c.post(f"/v1/sessions/{first}/edit", data={"instruction": "make it black and white", "seed": "1"})
        got = c.get("/v1/sessions").json()["sessions"]
        assert [s["id"] for s in got] == [first, second]  # the one used last first
        assert got[0]["steps"] == 1 and got[0]["instruction"] == "make it black and white"
        assert [s["id"] for s in c.get("/v1/sessions?limit=1").json()["sessions"]] == [first]
        assert c.get("/v1/sessions?limit=0").status_code == 422
    with TestClient(app, base_url="http://127.0.0.1", client=("192.168.1.20", 5000)) as c:
        r = c.get("/v1/sessions")
        assert r.status_code == 403 and "--api-key" in r.json()["detail"]
        assert c.get(f"/v1/sessions/{first}").status_code == 200  # its own link still works
    keyed = ServerSettings(preset="tiny", data_dir=str(tmp_path / "a"), api_key="k")
    with TestClient(create_app(keyed, editor=tiny_editor), base_url="http://127.0.0.1",
                    client=("192.168.1.20", 5000), headers={"Authorization": "Bearer k"}) as c:
        assert len(c.get("/v1/sessions").json()["sessions"]) == 2


def test_a_first_preview_says_which_model_loads_and_runs_as_a_job(tmp_path, tiny_dir):
    """Issue 16 #15: the first "Show the mask" sat 40 s under "reading the instruction". Each model
    a call loads is said through its progress (what a job's message shows the page), and the
    preview runs as a job the page polls."""
    from lasso_edit import Editor

    fresh = Editor.from_preset("tiny", device="cpu")  # nothing loaded yet
    said: list[str] = []
    fresh(scene(), "remove the disc", dry_run=True, progress=said.append)
    loading = [m for m in said if m.startswith("loading the models, once")]
    assert loading and loading[0] == "loading the models, once: the vlm (1 of 3)" and said.index(loading[0]) > 0, said
    again: list[str] = []
    fresh(scene(), "remove the disc", dry_run=True, progress=again.append)
    assert not [m for m in again if m.startswith("loading")]  # loaded once
    with TestClient(create_app(ServerSettings(preset="tiny", data_dir=str(tmp_path)), editor=fresh),
                    base_url="http://127.0.0.1") as c:
        sid = _session(c)
        r = c.post(f"/v1/sessions/{sid}/plan", data={"instruction": "remove the disc"},
                   headers={"Prefer": "respond-async"})
        assert r.status_code == 202 and r.headers["location"] == f"/v1/jobs/{r.json()['id']}"
        done, _ = _poll(c, r.json()["id"])
        assert done["state"] == "done" and done["result"]["describe"] == ["remove the disc"]


def test_a_follow_up_is_previewed_on_the_step_it_replaces_then_applied_and_a_question_changes_nothing(client):
    sid = _session(client)
    asked = client.post(f"/v1/sessions/{sid}/plan", data={"instruction": "a bit more"}).json()
    assert asked["turn"]["kind"] == "question" and "no earlier edit" in asked["question"] and "plan" not in asked
    s = client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "a bit more"}).json()
    assert s["steps"] == [] and s["cursor"] == 0 and "no earlier edit" in s["question"]
    client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "make the square red", "seed": "1"})
    p = client.post(f"/v1/sessions/{sid}/plan", data={"instruction": "make it darker"}).json()
    assert p["turn"]["kind"] == "revise" and p["base"] == 0  # previewed on the original, as it will run
    assert p["describe"] == ["make the square dark red"] and p["plan"]["edits"][0]["value"] == "dark red"
    s = client.post(f"/v1/sessions/{sid}/edit",
                    data={"instruction": "make it darker", "plan": json.dumps(p["plan"]), "seed": "1"}).json()
    # the step after step 1, made from the original (issue 29 #2: undo goes back one step, to step 1)
    assert s["cursor"] == 2 and s["path"] == [1, 2] and s["question"] is None
    assert (s["steps"][1]["parent"], s["steps"][1]["base"]) == (1, 0)
    assert s["steps"][1]["instruction"] == "make it darker" and s["steps"][1]["turn"]["revises"] == 1
    assert s["steps"][1]["reply"] == p["turn"]["said"] and s["steps"][0]["reply"] == "make the square red"
    undone = client.post(f"/v1/sessions/{sid}/edit", data={"instruction": "undo"}).json()
    assert undone["cursor"] == 1 and undone["turn"]["kind"] == "undo"


def test_a_follow_up_is_read_off_the_event_loop_and_health_answers_while_it_is(client, monkeypatch):
    """Issue 28 #2: the preview read a follow-up's words on the event loop, so a slow reading (2,000
    commas took 22 s) held /healthz and every other request. Here the reading is held on an event,
    in whatever thread it runs; on the event loop it cannot be held (nothing else would run, this
    test included), so there it only says so and goes on."""
    import asyncio
    import threading

    from lasso_edit.sessions.session import Session

    from ..helpers import until

    sid = _session(client)
    read, inside, release, on_loop, answers = Session.understand, threading.Event(), threading.Event(), [], {}

    def held(self, words):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # no loop in this thread: a worker's
            on_loop.append(False)
        inside.set()
        if not on_loop[-1]:
            release.wait()
        return read(self, words)

    monkeypatch.setattr(Session, "understand", held)
    asking = threading.Thread(
        target=lambda: answers.update(plan=client.post(f"/v1/sessions/{sid}/plan", data={"instruction": "a bit more"}))
    )
    asking.start()
    try:
        until(inside.is_set, still=asking.is_alive)
        assert on_loop == [False], "the follow-up was read on the event loop"
        health = client.get("/healthz")  # while the reading is held
        assert health.status_code == 200 and health.json()["ok"] is True
    finally:
        release.set()
        asking.join()
    assert answers["plan"].status_code == 200 and answers["plan"].json()["turn"]["kind"] == "question"
