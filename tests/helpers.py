"""Helpers shared by the tests: synthetic images and running the CLI as a user would."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def parse_python(path: Path) -> ast.AST:
    """A file's syntax tree, parsed in a thread of its own: CPython 3.11 up to 3.11.7 fails
    ("AST constructor recursion depth mismatch", gh-106905) in a thread that once caught a
    RecursionError, as the deep-JSON tests of the server do in the test runner's thread."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(ast.parse, path.read_text()).result()


def noise_image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


def scene(h: int = 120, w: int = 160) -> np.ndarray:
    """A grey background with a red disc (left) and a blue square (right): things to find and edit."""
    img = np.full((h, w, 3), 128, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    img[(yy - h // 2) ** 2 + (xx - w // 4) ** 2 < (min(h, w) // 5) ** 2] = (200, 30, 30)
    img[h // 3: 2 * h // 3, 5 * w // 8: 7 * w // 8] = (30, 60, 200)
    return img


def png_bytes(arr: np.ndarray) -> bytes:
    """An RGB uint8 array as PNG bytes (an upload's body)."""
    import io

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def save(arr: np.ndarray, path: Path, mode: str | None = None) -> Path:
    Image.fromarray(arr, mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def run_cli(*args: str, env: dict | None = None, process: bool = False) -> subprocess.CompletedProcess:
    """Run `lasso` as a user would: its entry point, its exit code, its stdout and stderr.

    By default in this process (`lasso_edit.cli.main` with sys.argv set), which saves the 5-8 s
    of importing torch, transformers and diffusers that every subprocess pays; with `env` (read at
    import time by the Hub library) or `process=True`, in a subprocess. Tests of what only a real
    process shows (signals, a closed pipe, imports at start-up) use a subprocess.
    """
    if env is not None or process:
        full_env = {**os.environ, **(env or {})}
        return subprocess.run([sys.executable, "-m", "lasso_edit.cli", *args], capture_output=True, text=True,
                              env=full_env)  # no deadline: a slow machine takes longer, and the run ends by itself
    return _run_here(list(args))


def _run_here(args: list[str]) -> subprocess.CompletedProcess:
    import contextlib
    import io
    import signal
    import traceback
    import warnings

    from lasso_edit import cli

    out, err = io.StringIO(), io.StringIO()
    argv, sigterm, code = sys.argv, signal.getsignal(signal.SIGTERM), 0
    cli._said.clear()  # warnings are said once per run, as in a fresh process
    sys.argv = ["lasso", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            try:
                cli.main()
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except Exception:  # noqa: BLE001 - what an uncaught exception does to a process
                traceback.print_exc()
                code = 1
    finally:
        sys.argv = argv
        signal.signal(signal.SIGTERM, sigterm)  # main() installs its handler: not in pytest's process
    return subprocess.CompletedProcess(["lasso", *args], code, out.getvalue(), err.getvalue())


def magicbrush_parquet(folder, plan=None):
    """A MagicBrush-schema parquet shard (its columns and Image features; masks transparent where
    edited) in `folder`. Default `plan`: three img_ids, two of two turns, one of one."""
    import datasets

    rows = {k: [] for k in ("img_id", "turn_index", "source_img", "mask_img", "instruction", "target_img")}
    plan = plan or [("327726", ["make the disc green", "remove the square"]), ("414112", ["make the square blue",
             "make it black and white"]), ("93000", ["remove the disc"])]
    for n, (img_id, instructions) in enumerate(plan):
        current = Image.fromarray(scene() if n != 1 else noise_image(96, 128, seed=n))
        for k, instruction in enumerate(instructions, 1):
            target = Image.fromarray(np.asarray(current)[:, ::-1].copy())  # a stand-in ground truth
            mask = np.zeros((current.height, current.width, 4), dtype=np.uint8) + 255
            mask[20:60, 30:90, 3] = 0  # the edited region: transparent, as in MagicBrush's masks
            for key, value in (("img_id", img_id), ("turn_index", k), ("source_img", current),
                               ("mask_img", Image.fromarray(mask, "RGBA")), ("instruction", instruction),
                               ("target_img", target)):
                rows[key].append(value)
            current = target
    features = datasets.Features({"img_id": datasets.Value("string"), "turn_index": datasets.Value("int32"),
                                  "source_img": datasets.Image(), "mask_img": datasets.Image(),
                                  "instruction": datasets.Value("string"), "target_img": datasets.Image()})
    folder.mkdir(parents=True)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(folder / "dev-00000-of-00001.parquet"))
    return folder


def until(condition, still=None, every: float = 0.02) -> None:
    """Wait for `condition()` (an event: a file written, a server up, a job done), checking every
    `every` seconds, with no deadline: a slow machine only takes longer. `still()`: what must stay
    true meanwhile (a process alive, a thread running); when it turns false first, fail at once."""
    import time

    while not condition():
        if still is not None and not still():
            raise AssertionError("what the test waited on ended before the event came")
        time.sleep(every)


_HOLD = """
import pathlib, sys, threading
from lasso_edit.pipeline.editor import Editor

marker, n, calls, edit = pathlib.Path(sys.argv[1]), int(sys.argv[2]), [], Editor.__call__

def held(self, *args, **kwargs):
    calls.append(1)
    if len(calls) == n:  # the edits before are done: say so, and hold this one until a signal
        marker.write_text("held")
        threading.Event().wait()
    return edit(self, *args, **kwargs)

Editor.__call__ = held
from lasso_edit.cli import main

sys.argv = ["lasso", *sys.argv[3:]]
main()
"""


def held_lasso(tmp_path: Path, before_edit: int) -> tuple[list[str], Path]:
    """(argv prefix, marker): the real `lasso` entry point in a real process, its editor held before
    edit number `before_edit` until a signal comes; `marker` appears when it holds. A test that must
    interrupt work waits for the marker, an event, instead of racing the machine's speed."""
    (tmp_path / "hold.py").write_text(_HOLD)
    marker = tmp_path / "held"
    return [sys.executable, str(tmp_path / "hold.py"), str(marker), str(before_edit)], marker


def flock_waiters(path) -> int:
    """How many flock() calls are blocked waiting on the file at `path` (any process, this one
    included), from /proc/locks, whose blocked requests are the lines marked `->`: the event that
    a thread or process has reached a lock and waits on it, with no sleep to guess when."""
    inode = os.stat(path).st_ino
    count = 0
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            if "->" in fields and "FLOCK" in fields and any(x.endswith(f":{inode}") for x in fields):
                count += 1
    return count


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(proc, url: str) -> None:
    """Until `url`/healthz answers: an event (the server is up), or the process ended (a failure
    with its output). No deadline: a slow machine only takes longer; a hang is pytest's to stop."""
    import time

    import httpx

    while True:
        try:
            httpx.get(url + "/healthz", timeout=5)
            return
        except httpx.TransportError:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"the server exited with {proc.returncode} before answering:\n{out}")
            time.sleep(0.1)


def in_small_disk(folder, argv: list[str], size: str = "4k", before: str = "", after: str = "") -> list[str]:
    """`argv` run with `folder` a tmpfs of `size` bytes of its own (a full disk, made real), in a
    mount namespace that ends with the process: nothing to unmount, nothing left mounted. `before`
    and `after`: shell lines run in it ("$D" is the folder); the command's exit code is kept."""
    import os
    import shlex
    import shutil

    if shutil.which("unshare") is None:
        import pytest

        pytest.skip("no unshare (util-linux) to make a small disk")
    os.makedirs(folder, exist_ok=True)
    script = (f'D={shlex.quote(str(folder))}; mount -t tmpfs -o size={size} tmpfs "$D" || exit 99; {before}\n'
              f'"$@"; code=$?; {after}\nexit $code')
    flags = ["-m"] if os.geteuid() == 0 else ["-r", "-m"]
    return ["unshare", *flags, "sh", "-c", script, "sh", *argv]


def masked_scenes(n=25, seed=3):
    """Random images with an object mask each (an ellipse, a hole, specks) and a dark band under it."""
    import cv2

    rng = np.random.default_rng(seed)
    for _ in range(n):
        h, w = int(rng.integers(40, 500)), int(rng.integers(40, 500))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        m = np.zeros((h, w), np.uint8)
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.ellipse(m, (cx, cy), (int(rng.integers(2, w // 3 + 3)), int(rng.integers(2, h // 3 + 3))), 0, 0, 360, 1, -1)
        cv2.circle(m, (cx, cy), int(rng.integers(0, 6)), 0, -1)  # a hole
        m[rng.random((h, w)) < 0.001] = 1  # specks
        img[cy:cy + 30] //= 3  # a dark band under the object: a shadow to find
        yield img, m.astype(bool)


class Detections:
    """What a detector said, per phrase: ([XYXY boxes], [scores]), best first."""

    def __init__(self, answers: dict):
        self.answers = answers

    def detect(self, image, phrase):
        return self.answers.get(phrase, ([], []))
