"""A full disk, made real (a tmpfs of a few KB in a mount namespace of the test's own): Lasso says
"no space left on ..." with exit code 3 (the environment) or HTTP 507, removes its temporary files
and loses nothing that was there before (issue 16 #6)."""

import subprocess
import sys

import httpx
import pytest

from .helpers import free_port, in_small_disk, save, scene, wait_for_server

pytestmark = pytest.mark.e2e


def test_lasso_edit_onto_a_full_disk_says_so_with_exit_3_and_keeps_the_old_file(tmp_path, tiny_dir):
    save(scene(), tmp_path / "in.png")
    disk = tmp_path / "disk"
    argv = in_small_disk(disk, [sys.executable, "-m", "lasso_edit.cli", "edit", str(tmp_path / "in.png"),
                                "make it black and white", "-o", str(disk / "out.png"), "--mask-out",
                                str(disk / "mask.png"), "--preset", "tiny"],
                         before='printf "the old picture" > "$D/out.png"',
                         after='echo "[out.png] $(cat "$D/out.png")"; echo "[files]" $(ls -A "$D")')
    r = subprocess.run(argv, capture_output=True, text=True, env={"LASSO_TINY_DIR": str(tiny_dir),
                                                                  "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    if r.returncode == 99:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    assert r.returncode == 3, r.stderr
    assert f"error: no space left on {disk}" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "[out.png] the old picture" in r.stdout  # what was there before is as it was
    assert "[files] out.png" in r.stdout  # no temporary file left, no half-written mask


def test_a_server_whose_disk_is_full_answers_507_and_keeps_serving(tmp_path, tiny_dir, processes):
    port = free_port()
    data = tmp_path / "data"
    argv = in_small_disk(data, [sys.executable, "-m", "lasso_edit.cli", "serve", "--preset", "tiny", "--port",
                                str(port), "--data-dir", str(data)], size="64k")
    proc = processes.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={"LASSO_TINY_DIR": str(tiny_dir), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(proc, url)
    except AssertionError as e:
        if proc.returncode == 99:
            pytest.skip(f"cannot mount a tmpfs here: {e}")
        raise
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(buf, "PNG")
    with httpx.Client(base_url=url, timeout=None) as c:
        r = c.post("/v1/sessions", files={"image": ("in.png", buf.getvalue(), "image/png")})
        assert r.status_code == 507 and r.json()["detail"].startswith("no space left on the server's disk"), r.text
        assert r.json()["exit_code"] == 3 and str(data) not in r.text
        assert c.get("/healthz").json()["ok"] is True
