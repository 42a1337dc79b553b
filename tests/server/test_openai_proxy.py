"""`lasso serve --inpainter openai:MODEL@BASE_URL`: Lasso as a drop-in proxy in front of a hosted
OpenAI-shaped image editor. A client speaks OpenAI's images API to Lasso (the official `openai`
SDK, against `/v1/images/edits`); Lasso sends the crop to the hosted editor (the fake of
tests/fake_openai_images.py, on loopback, which answers at its own size and shifts, zooms and
recolours the WHOLE picture), lays its answer back and composites it through the client's mask:
the hosted editor's paint inside, every opaque pixel of the mask bit for bit the photo's. The
hosted editor's key is the server's own (--inpainter-api-key or OPENAI_API_KEY), never the
client's, and never in the server's logs or in any answer."""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from ..fake_openai_images import FLAT, Fake, fake, hosted, repaint, running  # noqa: F401 - fixtures
from ..helpers import free_port, png_bytes, wait_for_server

COFFEE = "examples/coffee.png"
MODEL = "gpt-image-1.5"
HOSTED_KEY = "sk-hosted-4f9c2e7a1b"  # the hosted editor's: the server holds it
LASSO_KEY = "lasso-client-8d3b"  # the server's own (--api-key): what its clients send

e2e = pytest.mark.e2e  # servers on loopback




def photo_and_mask() -> tuple[np.ndarray, np.ndarray]:
    """The coffee photo and a client's mask in OpenAI's convention: RGBA, alpha 0 (an ellipse over
    the cup) where the edit may paint, 255 everywhere else (keep)."""
    rgb = np.asarray(Image.open(COFFEE).convert("RGB"))
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    cv2.ellipse(alpha, (300, 220), (90, 70), 0, 0, 360, 0, -1)
    return rgb, np.dstack([np.zeros_like(rgb), alpha])


def inside(mask: np.ndarray, px: int) -> np.ndarray:
    """The mask shrunk by `px` pixels: away from its rim (and the editor's inward feather)."""
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1, 2 * px + 1), np.uint8)) > 0


def edit_through(url: str, prompt: str = "a green bowl", model: str = "tiny"):
    """The official client against Lasso, as an app that speaks OpenAI's images API would call it
    (`model`: one of Lasso's presets, or the hosted editor's own model name)."""
    from openai import OpenAI

    rgb, mask = photo_and_mask()
    client = OpenAI(base_url=url + "/v1", api_key=LASSO_KEY, max_retries=0)
    return client.images.edit(
        model=model,
        image=("photo.png", png_bytes(rgb), "image/png"),
        mask=("mask.png", png_bytes(mask), "image/png"),
        prompt=prompt,
    )


def check_proxied(answer, how: Fake, prompt: str = "a green bowl") -> None:
    """The hosted editor painted inside the client's mask and Lasso kept every opaque pixel of it
    bit for bit, though the editor's whole answer was shifted, zoomed and recoloured."""
    rgb, mask = photo_and_mask()
    keep, hole = mask[..., 3] == 255, mask[..., 3] == 0
    (item,) = answer.data
    out = np.asarray(Image.open(io.BytesIO(base64.b64decode(item.b64_json))).convert("RGB"))
    assert out.shape == rgb.shape
    # one call to the hosted editor, with the server's key (never the client's) and the client's words
    (seen,) = how.requests
    assert seen["auth"] == f"Bearer {HOSTED_KEY}" and seen["model"] == MODEL and seen["prompt"] == prompt
    # what it answered drifted over the whole picture: far from what it was sent where it was told to keep
    sent, allowed = seen["image"], seen["mask"][..., 3] == 0
    drifted = cv2.resize(repaint(sent, seen["mask"][..., 3]), sent.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    assert np.abs(drifted.astype(int) - sent.astype(int))[inside(~allowed, 8)].mean() > 4
    # yet every opaque pixel of the client's mask is the photo's, bit for bit
    assert int((out != rgb).any(axis=2)[keep].sum()) == 0
    assert item.model_extra["lasso_preservation"]["identical_outside"] is True
    # and inside it is the hosted editor's paint, its colour drift undone
    painted = out[inside(hole, 6)].astype(int)
    assert (out[hole] != rgb[hole]).any(axis=1).mean() > 0.9
    assert np.median(np.abs(painted - FLAT).max(axis=1)) <= 3
    assert np.percentile(np.abs(painted - FLAT).max(axis=1), 95) <= 6


# --------------------------------------------------------------------------- no server
def test_serve_takes_the_model_options_of_lasso_edit():
    from ..helpers import run_cli

    r = run_cli("serve", "--help", process=False)
    assert r.returncode == 0
    for option in ("--inpainter", "--inpainter-api-key", "--segmenter", "--detector"):
        assert option in r.stdout, option


def test_lasso_serve_hands_the_painter_and_its_key_to_the_editor(tiny_dir, tmp_path, monkeypatch):
    """The options reach the server's EditorConfig (the key from OPENAI_API_KEY, or the option over
    it), and the key is in no repr of the settings or the config."""
    from lasso_edit.cli import serve as serve_cli
    from lasso_edit.server.app import create_app

    from ..helpers import run_cli

    started = []

    def serve_here(settings, host, port):  # all `lasso serve` does before uvicorn runs the app
        create_app(settings).state.jobs.close()
        started.append(settings)

    monkeypatch.setattr(serve_cli, "_serve_here", serve_here)
    spec = f"openai:{MODEL}@http://127.0.0.1:9/v1"
    argv = ["serve", "--preset", "tiny", "--data-dir", str(tmp_path), "--inpainter", spec,
            "--segmenter", "tiny:segmenter", "--detector", "tiny:detector"]
    monkeypatch.setenv("OPENAI_API_KEY", HOSTED_KEY)
    monkeypatch.delenv("LASSO_API_KEY", raising=False)
    assert run_cli(*argv).returncode == 0
    monkeypatch.delenv("OPENAI_API_KEY")
    assert run_cli(*argv, "--inpainter-api-key", "sk-other").returncode == 0
    (env, option) = started
    for settings, key in ((env, HOSTED_KEY), (option, "sk-other")):
        config = settings.editor_config()
        assert config.inpainter == spec and config.inpainter_api_key == key
        assert (config.segmenter, config.detector) == ("tiny:segmenter", "tiny:detector")
        assert key not in repr(settings) and key not in repr(config)
    r = run_cli("serve", "--preset", "tiny", "--data-dir", str(tmp_path), "--inpainter", "openai:gpt-image-1.5")
    assert r.returncode == 2 and "openai:MODEL@BASE_URL" in r.stderr and len(started) == 2  # before serving


def test_settings_without_an_editor_config_carry_the_painter_to_every_offered_preset(tiny_dir, tmp_path, klein_preset):
    from lasso_edit.server.service import Service
    from lasso_edit.server.settings import ServerSettings

    spec = f"openai:{MODEL}@http://127.0.0.1:9/v1"
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path), inpainter=spec, inpainter_api_key=HOSTED_KEY,
                              offer=(klein_preset,))
    assert HOSTED_KEY not in repr(settings)
    srv = Service(settings)
    for preset in ("tiny", klein_preset):
        config = srv.editor_for(preset).config
        assert config.preset == preset and config.inpainter == spec and config.inpainter_api_key == HOSTED_KEY
    srv.jobs.close()


# --------------------------------------------------------------------------- through the proxy
@e2e
def test_the_openai_sdk_through_lasso_gets_the_hosted_paint_inside_and_every_kept_pixel(fake, tiny_dir, tmp_path):
    from lasso_edit.server.app import ServerSettings, create_app

    from ..conftest import serve_app

    base, how = fake
    settings = ServerSettings(preset="tiny", data_dir=str(tmp_path / "serve"), api_key=LASSO_KEY,
                              inpainter=f"openai:{MODEL}@{base}", inpainter_api_key=HOSTED_KEY)
    url, stop = serve_app(create_app(settings))  # the editor built from the settings, as `lasso serve` builds it
    try:
        answer = edit_through(url, model=MODEL)  # an app written for the provider, unchanged but for its base URL
        with pytest.raises(Exception, match="presets: tiny, or the hosted editor's gpt-image-1.5"):
            edit_through(url, model="dall-e-2")  # neither a preset nor the hosted model: OpenAI's 400, named
    finally:
        stop()
    check_proxied(answer, how)
    assert HOSTED_KEY not in answer.model_dump_json()


@e2e
@pytest.mark.parametrize("key_from", ["OPENAI_API_KEY", "--inpainter-api-key"])
def test_lasso_serve_as_a_proxy_keeps_the_pixels_and_never_shows_the_key(fake, tiny_dir, tmp_path, processes,
                                                                          key_from):
    """`lasso serve --inpainter openai:...` as a user starts it; the key never in its output (its
    start-up, its request log, its shutdown) nor in any answer, a refusal echoing it included."""
    import httpx

    base, how = fake
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "LASSO_API_KEY")}
    env.update(LASSO_TINY_DIR=str(tiny_dir), HF_HUB_OFFLINE="1")
    argv = [sys.executable, "-m", "lasso_edit.cli", "serve", "--preset", "tiny", "--port", str(port),
            "--data-dir", str(tmp_path / "data"), "--api-key", LASSO_KEY, "--inpainter", f"openai:{MODEL}@{base}"]
    if key_from == "OPENAI_API_KEY":
        env["OPENAI_API_KEY"] = HOSTED_KEY
    else:
        argv += ["--inpainter-api-key", HOSTED_KEY]
    proc = processes.start(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    wait_for_server(proc, url)

    answer = edit_through(url)
    check_proxied(answer, how)
    answers = [answer.model_dump_json()]

    import openai

    refusals = [(401, f"Incorrect API key provided: {HOSTED_KEY}.", "refused the API key"),  # editors that echo it
                (400, f"your key {HOSTED_KEY} may not use {MODEL}", "refused the edit (400)")]
    for status, message, said in refusals:
        how.reset()
        how.status = (status, message)
        with pytest.raises(openai.APIStatusError) as e:
            edit_through(url)
        assert e.value.status_code == 503 and said in e.value.message, e.value.message
        assert len(how.requests) == 1 and how.requests[0]["auth"] == f"Bearer {HOSTED_KEY}"  # asked, with the key
        answers.append(e.value.response.text)
    headers = {"Authorization": f"Bearer {LASSO_KEY}"}
    for path in ("/healthz", "/v1/models", "/openapi.json", "/"):
        r = httpx.get(url + path, headers=headers)
        assert r.status_code == 200, path
        answers.append(r.text + str(r.headers))

    proc.send_signal(signal.SIGTERM)
    log, _ = proc.communicate()
    assert proc.returncode == 0 and "POST /v1/images/edits" in log and "stopped" in log, log
    for text in (*answers, log):
        assert HOSTED_KEY not in text
