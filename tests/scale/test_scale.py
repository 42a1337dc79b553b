"""Beyond one machine (issue 11): `lasso batch --ray` on Ray Data and `lasso serve --ray` on Ray
Serve, on a real local Ray cluster (`ray.init(num_cpus=2)`) with the tiny preset; and the shared
store under them (sessions and jobs any replica reaches), tested without Ray.

The Ray tests carry the `slow` marker: .ci/run runs them; `pytest -m 'not slow'` leaves them out.
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from ..helpers import flock_waiters, noise_image, run_cli, save, scene, until
from ..helpers import png_bytes as _png

REAL_PHOTO = "/root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/embedded-book/assets/f3.jpg"


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _photos(folder, n=12):
    """n images of several sizes and formats (PNG, and JPEG, whose untouched blocks are copied)."""
    folder.mkdir()
    for i in range(n):
        img = scene(96 + 8 * i, 128) if i % 3 == 0 else noise_image(48 + 4 * i, 64, seed=i)
        save(img, folder / (f"p{i:02d}.jpg" if i % 4 == 1 else f"p{i:02d}.png"))
    return folder


# ---------------------------------------------------------------------- without Ray
def test_ray_option_takes_an_optional_address():
    from lasso_edit.cli import RAY_ANY, _ray_argv

    assert _ray_argv(["batch", "--ray", "in/", "-o", "o"]) == ["batch", f"--ray={RAY_ANY}", "in/", "-o", "o"]
    assert _ray_argv(["batch", "in/", "--ray"]) == ["batch", "in/", f"--ray={RAY_ANY}"]
    for address in ("auto", "10.0.0.5:6379", "head-node:6379", "ray://head:10001", "local"):
        assert _ray_argv(["serve", "--ray", address, "--replicas", "2"]) == ["serve", f"--ray={address}",
                                                                            "--replicas", "2"]
    assert _ray_argv(["batch", "--ray=auto", "x"]) == ["batch", "--ray=auto", "x"]


def test_without_ray_nothing_imports_ray_and_uris_need_it(tmp_path, tiny_dir):
    code = ("import sys; from lasso_edit import cli, batch; from lasso_edit.pipeline import editor; from lasso_edit.server import app; "
            "assert 'ray' not in sys.modules, 'ray imported'; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
    src = _photos(tmp_path / "in", 1)
    r = run_cli("batch", str(src), "-o", "s3://bucket/out", "-i", "make it black and white", "--preset", "tiny")
    assert r.returncode == 2 and "only `lasso batch --ray` writes to object stores" in r.stderr
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"image": "gs://bucket/a.png", "instruction": "remove the ball"}) + "\n")
    r = run_cli("batch", str(manifest), "-o", str(tmp_path / "out"), "--preset", "tiny")
    assert r.returncode == 2 and "only `lasso batch --ray` reads from object stores" in r.stderr
    assert not (tmp_path / "out").exists()
    r = run_cli("batch", str(src), "-o", str(tmp_path / "out"), "-i", "x", "--preset", "tiny", "--workers", "4")
    assert r.returncode == 2 and "--workers applies only with --ray" in r.stderr
    r = run_cli("serve", "--preset", "tiny", "--replicas", "2", "--gpus-per-replica", "0.5")
    assert r.returncode == 2 and "--replicas, --gpus-per-replica apply only with --ray" in r.stderr


def test_ray_missing_is_a_clear_error(tmp_path, tiny_dir):
    src = _photos(tmp_path / "in", 1)
    code = ("import sys; sys.modules['ray'] = None; from lasso_edit.cli import main; "
            f"sys.argv = ['lasso', 'batch', {str(src)!r}, '-o', {str(tmp_path / 'o')!r}, '-i', 'x', "
            "'--preset', 'tiny', '--ray']; main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 2 and "pip install 'lasso-edit[ray]'" in r.stderr and "Traceback" not in r.stderr


def test_a_cluster_address_nothing_answers_is_exit_3_naming_it(tmp_path, tiny_dir):
    pytest.importorskip("ray")
    src = _photos(tmp_path / "in", 1)
    port = _free_port()
    r = run_cli("batch", str(src), "-o", str(tmp_path / "out"), "-i", "make it black and white", "--preset", "tiny",
                "--ray", f"127.0.0.1:{port}", process=True)  # Ray alone retries for minutes, then says other words
    assert r.returncode == 3 and f"no Ray cluster answers at 127.0.0.1:{port}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_two_stores_on_one_folder_continue_each_others_sessions(tmp_path, tiny_editor):
    """Two processes sharing the data folder (two replicas): a step applied through one store is
    seen by the other, and the other's next step follows it instead of overwriting it."""
    from lasso_edit.sessions.session import LOCK, SessionNotFoundError, SessionStore

    a, b = SessionStore(tmp_path), SessionStore(tmp_path)
    s = a.create(scene())
    b_copy = b.get(s.id)  # read by the second process before the first edits
    s.apply(tiny_editor, "make it black and white", seed=1)
    assert b.get(s.id).cursor == 1 and b_copy.cursor == 1  # read again once changed
    b_copy.apply(tiny_editor, "make it black and white", seed=2)
    again = a.get(s.id)
    assert [(x.id, x.parent) for x in again.steps] == [(1, 0), (2, 1)] and again.cursor == 2
    assert again.undo() == 1 and b.get(s.id).cursor == 1
    # Deleted by the other process while a change here waits for the session's lock: the change
    # then finds no session (not a crash writing into a folder that is gone).
    outcome = []

    def change():
        try:
            again.apply(tiny_editor, "make it black and white", seed=3)
            outcome.append("applied")
        except Exception as e:  # noqa: BLE001 - what it raised is the point
            outcome.append(e)

    held = b.get(s.id)
    with held._changing():
        waiting = threading.Thread(target=change)
        waiting.start()
        until(lambda: flock_waiters(tmp_path / s.id / LOCK) == 1, still=waiting.is_alive)  # the change waits on it
        shutil.rmtree(tmp_path / s.id)  # what b.delete does once it holds the lock
    waiting.join()
    assert len(outcome) == 1 and isinstance(outcome[0], SessionNotFoundError), outcome
    with pytest.raises(SessionNotFoundError):
        b.delete(s.id)
    other = a.create(scene())
    with a.get(other.id)._changing():  # a change running in one process ...
        deleting = threading.Thread(target=b.delete, args=(other.id,))
        deleting.start()
        until(lambda: flock_waiters(tmp_path / other.id / LOCK) == 1, still=deleting.is_alive)  # the delete waits
        assert (tmp_path / other.id / "session.json").exists()  # ... is waited for by a delete in another
    deleting.join()
    assert not (tmp_path / other.id).exists()


def test_two_stores_editing_one_session_at_once_lose_no_step(tmp_path, tiny_editor):
    from lasso_edit.sessions.session import SessionStore

    a, b = SessionStore(tmp_path), SessionStore(tmp_path)
    sid = a.create(scene()).id
    with cf.ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda st: st.get(sid).apply(tiny_editor, "make it black and white", seed=3), [a, b, a, b]))
    steps = a.get(sid).steps
    assert sorted(x.id for x in steps) == [1, 2, 3, 4]
    assert sorted(x.parent for x in steps) == [0, 1, 2, 3]  # a chain: every edit started from the one before


def test_a_job_started_on_one_replica_is_polled_on_another(tmp_path, tiny_editor):
    from fastapi.testclient import TestClient

    from lasso_edit.server.app import ServerSettings, create_app

    def replica(name):
        settings = ServerSettings(preset="tiny", data_dir=str(tmp_path), shared=True, instance=name)
        return TestClient(create_app(settings, editor=tiny_editor), base_url="http://127.0.0.1")

    with replica("one") as one, replica("two") as two:
        r = one.post("/v1/sessions", files={"image": ("a.png", _png(scene()), "image/png")})
        assert r.status_code == 201 and r.headers["x-lasso-replica"] == "one"
        sid = r.json()["id"]
        stale = tmp_path / "jobs" / ("x" * 22 + ".json")  # a job of a replica long gone
        stale.write_text("{}")
        os.utime(stale, (time.time() - 3 * 3600, time.time() - 3 * 3600))
        r = one.post(f"/v1/sessions/{sid}/edit", data={"instruction": "make it black and white", "seed": "1"},
                     headers={"Prefer": "respond-async"})
        assert r.status_code == 202 and not stale.exists()
        job = r.json()["id"]
        while (got := two.get(f"/v1/jobs/{job}")).json()["state"] not in ("done", "failed"):
            assert got.status_code == 200 and got.headers["x-lasso-replica"] == "two"
            time.sleep(0.05)
        assert got.json()["state"] == "done" and got.json()["result"]["cursor"] == 1
        r = two.post(f"/v1/sessions/{sid}/edit", data={"instruction": "make it black and white", "seed": "2"})
        assert r.status_code == 200 and r.json()["cursor"] == 2 and r.json()["path"] == [1, 2]
        assert one.get(f"/v1/sessions/{sid}").json()["path"] == [1, 2]
        assert two.get("/v1/jobs/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404
        assert two.get("/v1/jobs/..%2F..%2Fsecret").status_code == 404
    uploads = tmp_path / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == ["one", "two"]  # each replica's own


# ---------------------------------------------------------------------- on a local Ray cluster
@pytest.fixture(scope="module")
def ray_cluster(tiny_dir):
    """A local Ray cluster of 2 CPUs; its workers inherit LASSO_TINY_DIR (set by tiny_dir first)."""
    ray = pytest.importorskip("ray")
    # Ray Serve's router trusts a replica's cached queue length for 10 s: right after a burst it can
    # send every request to the replica it last saw idle, whatever the test does. No cache here, so
    # each request is routed on the queues as they are (Serve's processes read it when they start).
    before = os.environ.get("RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S")
    os.environ["RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
    if before is None:
        os.environ.pop("RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S", None)
    else:
        os.environ["RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S"] = before


@pytest.mark.slow
def test_editors_fit_the_cluster(ray_cluster):
    from lasso_edit.core.errors import InvalidInputError
    from lasso_edit.scale.ray_batch import worker_shape
    from lasso_edit.scale.ray_serve import replica_shape

    assert worker_shape("balanced", None, 1.0, None) == (0.0, 1.0, 2)  # no GPU: one editor per core
    assert worker_shape("fast", None, 0.5, None) == (0.0, 0.5, 4)
    assert worker_shape("balanced", None, 1.0, 1) == (0.0, 1.0, 1)
    assert replica_shape("balanced", None, 1.0, None, None) == (0.0, 1.0, 1, 1)
    assert replica_shape("balanced", None, 1.0, 4, 2) == (0.0, 1.0, 2, 4)
    with pytest.raises(InvalidInputError, match="asks for 1 GPU but the cluster has 0"):
        worker_shape("balanced", 1.0, 1.0, None)
    with pytest.raises(InvalidInputError, match="--min-replicas must be between 1 and --replicas"):
        replica_shape("balanced", None, 1.0, 2, 3)


@pytest.mark.slow
def test_ray_batch_gives_the_local_batchs_pictures_and_resumes(tmp_path, ray_cluster):
    src = _photos(tmp_path / "in")
    common = ["-i", "make it black and white", "--preset", "tiny", "--seed", "7", "-q"]
    local, remote = tmp_path / "local", tmp_path / "ray"
    r = run_cli("batch", str(src), "-o", str(local), *common)
    assert r.returncode == 0, r.stderr
    r = run_cli("batch", str(src), "-o", str(remote), *common, "--ray")
    assert r.returncode == 0, r.stderr
    assert "12 items: 12 edited" in r.stdout
    mine, theirs = _lines(local / "results.jsonl"), _lines(remote / "results.jsonl")
    assert [x["id"] for x in theirs] == [x["id"] for x in mine]  # one line each, in input order
    for a, b in zip(mine, theirs):
        assert b["status"] == "ok" and b["key"] == a["key"] and b["seed"] == a["seed"] == 7 and b["plan"] == a["plan"]
        # the same picture, pixel for pixel; the files differ only in their Content Credentials, each
        # signed when it was written (its own time and ids), which both carry
        ours, ray = (np.asarray(Image.open(x["output"])) for x in (a, b))
        assert ours.shape == ray.shape and (ours == ray).all(), a["id"]
        assert all(b"c2pa" in open(x["output"], "rb").read() for x in (a, b))  # a C2PA manifest store in each
        assert open(a["mask"], "rb").read() == open(b["mask"], "rb").read(), a["id"]
    assert len({x["worker"] for x in theirs}) == 2  # both workers took items
    r = run_cli("batch", str(src), "-o", str(remote), *common, "--ray")  # again: nothing to do
    assert r.returncode == 0 and "12 items: 0 edited, 12 skipped" in r.stdout, r.stdout + r.stderr
    assert _lines(remote / "results.jsonl") == theirs


@pytest.mark.slow
def test_ray_batch_writes_to_a_uri_and_reads_uris(tmp_path, ray_cluster):
    src = _photos(tmp_path / "in", 3)
    save(np.asarray(Image.open(REAL_PHOTO).convert("RGB")), src / "real.png") if os.path.exists(REAL_PHOTO) else None
    manifest = tmp_path / "m.jsonl"
    rows = [{"image": f"file://{p}", "instruction": "make it black and white"} for p in sorted(src.iterdir())]
    rows[0]["id"], rows[1]["id"] = "mask", "in"  # names a worker's own scratch files might have taken
    rows.append({"image": f"file://{src}/missing.png", "instruction": "make it black and white"})
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "out"
    r = run_cli("batch", str(manifest), "-o", f"file://{out}", "--preset", "tiny", "--seed", "1", "-q", "--ray")
    assert r.returncode == 5, r.stderr
    recs = _lines(out / "results.jsonl")
    assert [x["status"] for x in recs] == ["ok"] * (len(rows) - 1) + ["failed"]
    assert "image not found" in recs[-1]["error"] and recs[-1]["exit_code"] == 2
    for rec, row in zip(recs[:-1], rows):
        assert rec["image"] == row["image"] and rec["output"].startswith(f"file://{out}/")
        written = Image.open(rec["output"][len("file://"):])
        assert written.size == Image.open(row["image"][len("file://"):]).size and written.mode == "RGB"
        assert Image.open(rec["mask"][len("file://"):]).mode == "L"
    assert [x["id"] for x in recs[:2]] == ["mask", "in"]


@pytest.mark.slow
def test_ray_batch_finishes_every_item_once_when_a_worker_is_killed(tmp_path, ray_cluster):
    from lasso_edit.batch import read_items
    from lasso_edit.scale.ray_batch import RayBatchRunner

    src = _photos(tmp_path / "in")
    out = tmp_path / "out"
    options = {"preset": "tiny", "device": "cpu"}
    settings = {"preset": "tiny", "seed": 5}
    killed, seen_after = [], []

    def on_item(rec):
        if not killed:  # the first record names a worker: kill its process mid-run, as a lost node would
            pid = int(rec["worker"].rsplit(":", 1)[1])
            os.kill(pid, signal.SIGKILL)
            killed.append((pid, time.time()))
        else:
            seen_after.append(rec)

    runner = RayBatchRunner(options, out, settings, edit_kwargs={"seed": 5})
    summary = runner.run(read_items(src, "make it black and white"), on_item=on_item)
    assert summary.done == 12 and summary.failed == 0
    recs = _lines(out / "results.jsonl")
    assert sorted(x["id"] for x in recs) == [f"p{i:02d}" for i in range(12)]  # each once
    assert all(x["status"] == "ok" and os.path.exists(x["output"]) for x in recs)
    pid, when = killed[0]
    # records the killed process finished before the kill may still arrive; none it finished after it
    assert all(x["finished"] <= when for x in seen_after if x["worker"].rsplit(":", 1)[1] == str(pid))
    assert any(x["worker"].rsplit(":", 1)[1] != str(pid) for x in seen_after)  # others took the rest
    assert not list(out.glob(".*.tmp")) and not list((out / "masks").glob(".*.tmp"))


@pytest.mark.slow
def test_ray_serve_two_replicas_share_the_load_and_the_sessions(tmp_path, ray_cluster):
    import httpx

    from lasso_edit.scale import ray_serve
    from lasso_edit.server.app import ServerSettings

    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "data"), queue=2, device="cpu")
    port = _free_port()
    # Half a CPU each: the 2-CPU test cluster also holds the batch tests' workers until Ray frees them.
    assert ray_serve.run(settings, "127.0.0.1", port, replicas=2, min_replicas=2, cpus=0.5) == (2, 2)
    try:
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=None)
        photo = _png(scene())

        def edit(i):
            return c.post("/v1/edit", files={"image": ("a.png", photo, "image/png")},
                          data={"instruction": "make it black and white", "seed": str(i)})

        with cf.ThreadPoolExecutor(16) as ex:
            answers = list(ex.map(edit, range(16)))
        codes = [r.status_code for r in answers]
        assert set(codes) <= {200, 429, 503} and 200 in codes, codes
        assert all(r.json()["detail"] for r in answers if r.status_code != 200)
        assert len({r.headers["x-lasso-replica"] for r in answers}) == 2  # both replicas answered
        health = c.get("/healthz")
        assert health.status_code == 200 and health.json()["ok"]

        # A session started on one replica, continued on the other. Edits go two at a time: one after
        # another, Ray's router may send every one to the replica it last saw idle (its queue-length
        # cache), which says nothing about shared sessions; two at once it spreads.
        r = c.post("/v1/sessions", files={"image": ("a.png", photo, "image/png")})
        sid, by, n = r.json()["id"], [r.headers["x-lasso-replica"]], 0

        def step(seed):
            return c.post(f"/v1/sessions/{sid}/edit", data={"instruction": "make it black and white", "seed": str(seed)})

        with cf.ThreadPoolExecutor(2) as ex:
            while len(set(by)) < 2 and n < 20:
                pair = list(ex.map(step, (n + 1, n + 2)))
                n += 2
                assert all(r.status_code == 200 for r in pair), [r.text for r in pair]
                by += [r.headers["x-lasso-replica"] for r in pair]
                assert max(r.json()["cursor"] for r in pair) == n  # each change started from the one before
        assert len(set(by)) == 2, by
        r = c.get(f"/v1/sessions/{sid}")
        assert r.json()["path"] == list(range(1, n + 1))  # one chain: no edit lost or branched
        for _ in range(6):  # whichever replica answers, the same history
            r = c.get(f"/v1/sessions/{sid}")
            assert r.json()["path"] == list(range(1, n + 1)), r.headers["x-lasso-replica"]
    finally:
        ray_serve.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
