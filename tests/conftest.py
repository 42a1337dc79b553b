"""Shared fixtures: tiny random models built once per test session and loaded back through the
same `from_pretrained` code a Hub id takes; offline Hub; synthetic images."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # no network in tests; an uncached id fails at once
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# The suite's tiers: `unit` (in this process, the default of a bare `pytest`), `e2e` (Lasso run as a
# user does: a subprocess, a live server on loopback, a browser, a benchmark) and `slow` (a local Ray
# cluster). `.ci/run` runs all three. A test is e2e when it asks for a fixture that starts one of those.
E2E_FIXTURES = {"live_server", "processes", "browser", "page"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())) and not item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)
        if not item.get_closest_marker("e2e") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session", autouse=True)
def config_home(tmp_path_factory) -> Path:
    """The user's config folder, for every test and every Lasso it starts: a temporary one, so the
    local signing identity (Content Credentials) is never written to the real ~/.config."""
    folder = tmp_path_factory.mktemp("config")
    os.environ["XDG_CONFIG_HOME"] = str(folder)
    for name in ("LASSO_SIGN_CERT", "LASSO_SIGN_KEY"):
        os.environ.pop(name, None)
    import contextlib
    import io

    from lasso_edit.imaging.credentials import local_identity

    with contextlib.redirect_stderr(io.StringIO()):  # made now, so no test's stderr carries its announcement
        local_identity()
    return folder


@pytest.fixture(scope="session", autouse=True)
def cache_home(tmp_path_factory) -> Path:
    """Lasso's cache folder ($LASSO_CACHE: the converted weights the lite preset keeps), for every
    test and every Lasso it starts: a temporary one, so no test writes into the real ~/.cache."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["LASSO_CACHE"] = str(folder)
    os.environ.pop("LASSO_CONVERTED_CACHE", None)
    return folder


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """The tiny models, built once, and LASSO_TINY_DIR pointing at them (for the `tiny` preset)."""
    from lasso_edit.testing.tiny import ensure_tiny_models

    root = tmp_path_factory.mktemp("tiny") / "models"
    ensure_tiny_models(root)
    os.environ["LASSO_TINY_DIR"] = str(root)
    return root


@pytest.fixture(scope="session")
def turbo_dir(tmp_path_factory):
    """A tiny SD-Turbo (the lite preset's `turbo` painter), built once."""
    from lasso_edit.testing.tiny import build_tiny_sd_turbo

    return build_tiny_sd_turbo(tmp_path_factory.mktemp("turbo"))


@pytest.fixture(scope="session")
def lama_dir(tmp_path_factory):
    """A tiny LaMa graph (the lite preset's remover), built once."""
    from lasso_edit.testing.tiny import build_tiny_lama

    return build_tiny_lama(tmp_path_factory.mktemp("lama"))


@pytest.fixture(scope="session")
def tiny_editor(tiny_dir):
    from lasso_edit import Editor

    return Editor.from_preset("tiny", device="cpu")


def serve_app(app):
    """Run an ASGI app with uvicorn on a free loopback port, in a thread: (url, stop)."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    from .helpers import until

    until(lambda: server.started, still=thread.is_alive)

    def stop():
        server.should_exit = True
        thread.join()

    return f"http://127.0.0.1:{port}", stop


@pytest.fixture()
def live_server(tiny_editor, tmp_path):
    """The app on a loopback port, as `lasso serve` runs it (uvicorn): `url = live_server(api_key=...)`."""
    from lasso_edit.server.app import ServerSettings, create_app

    def start(**kwargs):
        settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "serve"), **kwargs)
        url, stop = serve_app(create_app(settings, editor=tiny_editor))
        stops.append(stop)
        return url

    stops = []
    yield start
    for stop in stops:
        stop()


def _chromium() -> str | None:
    for name in (os.environ.get("LASSO_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium through Playwright; skips without one unless LASSO_REQUIRE_BROWSER=1."""
    path = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("LASSO_REQUIRE_BROWSER") == "1":
            pytest.fail("no Chromium (apt-get install -y chromium) or no playwright, and LASSO_REQUIRE_BROWSER=1")
        pytest.skip("no Chromium here (apt-get install -y chromium; pip install playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture()
def processes():
    """Start child processes through this (`processes.start(argv, **popen_kwargs)`): each one, and
    everything it started (its own process group), is killed when the test ends, passed or failed."""
    import signal
    import subprocess

    class Started(list):
        def start(self, argv, **kwargs):
            proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
            self.append(proc)
            return proc

    started = Started()
    yield started
    for proc in started:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        for stream in (proc.stdout, proc.stderr, proc.stdin):
            if stream is not None:
                stream.close()


@pytest.fixture()
def klein_preset(monkeypatch):
    """A second offline preset: the tiny one painting with the tiny FLUX.2 klein."""
    from dataclasses import replace

    from lasso_edit.core.presets import PRESETS

    monkeypatch.setitem(PRESETS, "tiny-klein", replace(PRESETS["tiny"], name="tiny-klein",
                                                       inpainter="tiny:flux2-klein", description="klein paints"))
    return "tiny-klein"
