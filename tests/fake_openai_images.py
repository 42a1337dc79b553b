"""A fake OpenAI images server (`POST /v1/images/edits`), for the tests of the hosted painter
(tests/edit/test_openai_painter.py) and of `lasso serve` in front of it (tests/server/test_proxy.py).
The `openai` client and the HTTP layer stay real: the fake runs on loopback (`running(how)`).

It does what hosted editors do: it refuses sizes OpenAI refuses for the model, answers at its own
size (3/4 of the size asked for), and shifts, zooms and recolours the WHOLE picture while painting
the masked part (alpha 0) a flat colour. `Fake` records every request and can be told to fail."""

from __future__ import annotations

import base64
import contextlib
import io
from collections.abc import Iterator

import cv2
import pytest
import numpy as np
from fastapi import Request  # at module level: FastAPI resolves the route's annotation from here
from PIL import Image

FLAT = (40, 200, 90)  # what the fake paints inside the mask
GAIN, OFFSET = 1.06, -5.0  # its colour drift, over the whole picture
ZOOM, SHIFT = 1.03, (4.0, -3.0)  # its geometric drift


def openai_accepts(model: str, w: int, h: int) -> bool:
    """OpenAI's size rule (openai-python image_edit_params.py), written here on its own."""
    if model.startswith("gpt-image-1"):  # gpt-image-1, -1.5, -1-mini
        return (w, h) in {(1024, 1024), (1536, 1024), (1024, 1536)}
    return w % 16 == 0 and h % 16 == 0 and max(w, h) <= 3840 and min(w, h) <= 2160 and max(w, h) <= 3 * min(w, h)


def error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None):
    """An error in OpenAI's shape."""
    from fastapi.responses import JSONResponse

    body = {"error": {"message": message, "type": kind, "param": param, "code": None}}
    return JSONResponse(body, status_code=status)


class Fake:
    """How the fake answers, and what it was sent (`requests`: one dict per request)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.fail_500 = 0  # answer 500 this many times first
        self.status = None  # (status, message): every request answered so
        self.raw = None  # (status, content type, body) instead of an images answer
        self.requests: list[dict] = []


def repaint(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """What a hosted editor sends back: the masked part painted flat, the whole picture zoomed
    about its centre and shifted, recoloured, at 3/4 of the size asked for."""
    h, w = alpha.shape
    out = image.copy()
    out[alpha == 0] = FLAT
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 0.0, ZOOM)
    m[:, 2] += SHIFT
    out = cv2.warpAffine(out, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    out = np.clip(out.astype(np.float64) * GAIN + OFFSET, 0, 255).round().astype(np.uint8)
    return cv2.resize(out, (w * 3 // 4, h * 3 // 4), interpolation=cv2.INTER_AREA)


def images_server(how: Fake):
    """The fake's ASGI app, answering as `how` says."""
    from fastapi import FastAPI
    from fastapi.responses import Response

    app = FastAPI()

    @app.post("/v1/images/edits")
    async def edits(request: Request):
        form = await request.form()
        image = Image.open(io.BytesIO(await form["image"].read()))
        mask = Image.open(io.BytesIO(await form["mask"].read()))
        seen = {
            "model": form.get("model"),
            "size": form.get("size"),
            "prompt": form.get("prompt"),
            "n": form.get("n"),
            "auth": request.headers.get("authorization"),
            "image": np.asarray(image.convert("RGB")),
            "mask_mode": mask.mode,
            "mask": np.asarray(mask),
        }
        how.requests.append(seen)
        if how.status is not None:
            return error(how.status[0], how.status[1], "invalid_request_error")
        if how.fail_500 > 0:
            how.fail_500 -= 1
            return error(500, "The server had an error while processing your request.", "server_error")
        if how.raw is not None:
            status, kind, text = how.raw
            return Response(text, status_code=status, media_type=kind)
        w, h = (int(v) for v in str(seen["size"]).split("x"))
        if not openai_accepts(str(seen["model"]), w, h):
            return error(400, f"Invalid size '{seen['size']}' for {seen['model']}.", param="size")
        if image.size != (w, h) or mask.size != image.size or mask.mode != "RGBA":
            return error(400, "image and mask must be PNGs of the same size, the mask with alpha", param="mask")
        out = repaint(seen["image"], seen["mask"][..., 3])
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="PNG")
        return {"created": 0, "data": [{"b64_json": base64.b64encode(buf.getvalue()).decode()}], "size": seen["size"]}

    return app


@contextlib.contextmanager
def running(how: Fake) -> Iterator[str]:
    """The fake on a free loopback port, answering as `how` says: its base URL (…/v1), as an
    `--inpainter openai:MODEL@BASE_URL` names it. Stopped on leaving, passed or failed."""
    from .conftest import serve_app

    url, stop = serve_app(images_server(how))
    try:
        yield f"{url}/v1"
    finally:
        stop()


# The fixtures both test modules take (`from ..fake_openai_images import fake, hosted`): the fake
# serves the whole module, and each test finds it reset.
@pytest.fixture(scope="module")
def hosted() -> Iterator[tuple[str, Fake]]:
    how = Fake()
    with running(how) as base:
        yield base, how


@pytest.fixture()
def fake(hosted: tuple[str, Fake]) -> tuple[str, Fake]:
    base, how = hosted
    how.reset()
    return base, how
