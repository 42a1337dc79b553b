"""The planner on an OpenAI-compatible server (parse/remote.py), against a small server started here on
loopback that serves the real tiny LLaVA through transformers: the `openai` client, the HTTP layer
and the model are all real. Its failure modes (429s, a schema it refuses, a malformed answer) are
switched on per test."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import numpy as np
import pytest
from fastapi import Request  # at module level: FastAPI resolves the route's annotation from here
from PIL import Image

from lasso_edit.core.errors import InvalidInputError, ModelUnavailableError
from lasso_edit.parse.llava import LlavaParser
from lasso_edit.parse.remote import RemotePlanner, parse_spec

from ..conftest import serve_app
from ..helpers import run_cli, save, scene

pytestmark = pytest.mark.e2e  # an OpenAI-compatible server on loopback

MODEL = "tiny-llava"


class Behaviour:
    def __init__(self):
        self.reset()

    def reset(self):
        self.fail_429 = 0  # answer 429 this many times first
        self.reject_schema = False  # 400 when asked for a JSON schema (a server without guided decoding)
        self.answer = None  # a fixed answer instead of the model's
        self.raw = None  # (status, content type, body): a broken server's answer instead of a completion
        self.models_raw = None  # likewise for /v1/models
        self.trickle = None  # seconds between the bytes of a valid answer sent one at a time
        self.silent = None  # seconds to say nothing before a valid answer (cut short by `released`)
        self.released = threading.Event()  # set when the test is done: a silent answer ends at once
        self.requests: list[dict] = []


def openai_server(vlm: LlavaParser, how: Behaviour):
    """A FastAPI app with OpenAI's /v1/models and /v1/chat/completions, answering with `vlm`."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    app = FastAPI()

    from fastapi.responses import Response, StreamingResponse

    @app.get("/v1/models")
    def models():
        if how.models_raw is not None:
            status, kind, text = how.models_raw
            return Response(text, status_code=status, media_type=kind)
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "created": 0, "owned_by": "test"}]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        import asyncio

        body = await request.json()
        how.requests.append(body)
        if how.raw is not None:
            status, kind, text = how.raw
            return Response(text, status_code=status, media_type=kind)
        valid = json.dumps({"id": "c1", "object": "chat.completion", "created": 0, "model": MODEL, "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": '[["remove","disc"]]'}}]})
        if how.silent is not None:
            waited = 0.0
            while waited < how.silent and not how.released.is_set():
                await asyncio.sleep(0.05)
                waited += 0.05
            return Response(valid, media_type="application/json")
        if how.trickle is not None:
            async def drip():
                for ch in valid:
                    yield ch.encode()
                    await asyncio.sleep(how.trickle)
            return StreamingResponse(drip(), media_type="application/json")
        if how.fail_429 > 0:
            how.fail_429 -= 1
            return JSONResponse({"error": {"message": "slow down", "type": "rate_limit"}}, status_code=429,
                                headers={"retry-after-ms": "10"})
        if body.get("response_format") and how.reject_schema:
            return JSONResponse({"error": {"message": "response_format is not supported", "type": "invalid"}},
                                status_code=400)
        if body.get("model") != MODEL:
            return JSONResponse({"error": {"message": "no such model"}}, status_code=404)
        parts = body["messages"][0]["content"]
        url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
        text = next(p["text"] for p in parts if p["type"] == "text")
        image = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
        constrained = bool(body.get("response_format"))  # guided decoding, as vLLM does it
        answer = how.answer if how.answer is not None else vlm.ask(image, text, constrained=constrained)
        return {"id": "c1", "object": "chat.completion", "created": int(time.time()), "model": MODEL,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": len(answer.split()), "total_tokens": 2}}

    return app


@pytest.fixture(scope="module")
def server(tiny_dir):
    vlm = LlavaParser.from_pretrained(str(tiny_dir / "vlm"))
    how = Behaviour()
    url, stop = serve_app(openai_server(vlm, how))
    yield f"{url}/v1", how, vlm
    stop()


@pytest.fixture()
def remote(server):
    base, how, vlm = server
    how.reset()
    yield base, how, vlm
    how.released.set()  # a silent answer still pending ends now, not after its seconds


def spec(base: str, model: str = MODEL) -> str:
    return f"openai:{model}@{base}"


def test_the_spec_names_a_model_and_a_url():
    assert parse_spec("openai:llava-hf/llava-1.5-7b-hf@http://gpu-box:8000/v1") == (
        "llava-hf/llava-1.5-7b-hf", "http://gpu-box:8000/v1")
    with pytest.raises(InvalidInputError, match="openai:MODEL@BASE_URL"):
        parse_spec("openai:llava@gpu-box")


def test_the_remote_planner_asks_the_served_model_what_the_local_one_answers(remote):
    base, how, vlm = remote
    planner = RemotePlanner.from_spec(spec(base))
    image = scene()
    assert planner.ask(image, "make the car red") == vlm.ask(image, "make the car red", constrained=True)
    sent = how.requests[-1]
    assert sent["response_format"]["json_schema"]["schema"]["type"] == "array"  # guided to the plan's schema
    url = sent["messages"][0]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    got = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
    assert (got == image).all()  # the photo itself, losslessly


def test_boxes_are_fractions_of_the_original_photo(remote):
    base, how, _ = remote
    how.answer = '[["recolor","disc","red",[10,20,50,60]]]'
    plan = RemotePlanner.from_spec(spec(base)).parse(scene(120, 160), "make the disc red")
    assert plan.source == "vlm"
    assert plan.edits[0].box == pytest.approx((16.0, 24.0, 80.0, 72.0), abs=1.0)


def test_a_malformed_answer_falls_back_to_the_rules_and_a_refused_schema_is_asked_freely(remote):
    base, how, _ = remote
    how.answer = "Sorry, I cannot help with that."
    planner = RemotePlanner.from_spec(spec(base))
    plan = planner.parse(scene(), "make the disc red")
    assert plan.source == "rules (fallback)" and "unusable" in plan.warnings[0]
    assert len(how.requests) == 1  # a schema-guided answer is not asked again
    how.reset()
    how.answer, how.reject_schema = "no json here", True
    plan = planner.parse(scene(), "make the disc red")
    assert plan.source == "rules (fallback)" and "unusable twice" in plan.warnings[0]
    assert [bool(r.get("response_format")) for r in how.requests] == [True, False, False]  # refused, then re-asked
    assert planner.constrained is False  # remembered


def test_429s_are_retried_and_a_server_that_keeps_failing_is_a_clear_error(remote):
    base, how, _ = remote
    how.fail_429 = 2
    planner = RemotePlanner.from_spec(spec(base))
    assert planner.ask(scene(), "make the disc red")
    assert len(how.requests) == 3
    how.reset()
    how.fail_429 = 99
    impatient = RemotePlanner.from_spec(spec(base), max_retries=1)
    with pytest.raises(ModelUnavailableError, match="answered 429 after retries"):
        impatient.ask(scene(), "make the disc red")


def test_a_server_that_is_down_or_serves_another_model_fails_at_once(remote):
    import socket

    base, _, _ = remote
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    with pytest.raises(ModelUnavailableError, match="cannot be reached"):
        RemotePlanner.from_spec(spec(dead))  # no retries at the check: the first refusal is the answer
    with pytest.raises(ModelUnavailableError, match=f"does not serve 'llava-13b'; it serves: {MODEL}"):
        RemotePlanner.from_spec(spec(base, "llava-13b"))


def test_an_editor_with_a_remote_planner_loads_no_local_vlm(remote, tiny_dir):
    from lasso_edit import Editor

    base, how, _ = remote
    editor = Editor.from_preset("tiny", vlm=spec(base), parser="vlm", grounder="vlm")
    result = editor(scene(), "make the disc red", seed=1)
    assert type(editor.stage("vlm")).__name__ == "RemotePlanner" and not hasattr(editor.stage("vlm"), "model")
    assert len(how.requests) >= 1 and result.mask.any()
    assert editor.models["vlm"] == spec(base)
    with pytest.raises(InvalidInputError, match="reads a local VLM's attention"):
        Editor.from_preset("tiny", vlm=spec(base), grounder="attention")
    with pytest.raises(InvalidInputError, match="openai:MODEL@BASE_URL"):
        Editor.from_preset("tiny", vlm="openai:x@gpu-box", paint=False)  # before any model loads


def test_lasso_plan_and_edit_with_a_remote_vlm(remote, tiny_dir, tmp_path):
    base, how, _ = remote
    how.answer = '[["recolor","disc","blue",[5,30,45,70]]]'
    src = save(scene(), tmp_path / "in.png")
    r = run_cli("plan", str(src), "make the disc blue", "--preset", "tiny", "--parser", "vlm", "--vlm", spec(base),
                "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["source"] == "vlm" and out["edits"][0]["target"] == "disc"
    r = run_cli("edit", str(src), "make the disc blue", "--preset", "tiny", "--parser", "vlm", "--vlm", spec(base),
                "--vlm-api-key", "secret", "-o", str(tmp_path / "out.png"))
    assert r.returncode == 0, r.stderr
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    r = run_cli("edit", str(src), "make the disc blue", "--preset", "tiny", "--parser", "vlm", "--vlm", spec(dead),
                "-o", str(tmp_path / "never.png"))
    assert r.returncode == 3 and "cannot be reached" in r.stderr and not (tmp_path / "never.png").exists()


_DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize("raw", [
    (200, "text/html", "<html><body>Welcome to nginx!</body></html>"),
    (200, "application/json", '{"choices": []}'),
    (200, "application/json", "{}"),
    (200, "application/json", _DEEP),
    (200, "application/json", '{"choices": [{"message": {"content": {"not": "text"}}}]}'),
])
def test_an_answer_that_is_no_chat_completion_is_a_server_error_exit_3(remote, tiny_dir, tmp_path, raw):
    """Issue 16 #8: each of these was exit 1 (an internal error)."""
    base, how, _ = remote
    planner = RemotePlanner.from_spec(spec(base))
    how.raw = raw
    with pytest.raises(ModelUnavailableError, match="not an OpenAI-compatible answer"):
        planner.ask(scene(), "make the disc red")
    src = save(scene(), tmp_path / "in.png")
    r = run_cli("edit", str(src), "make the disc red", "--preset", "tiny", "--parser", "vlm", "--vlm", spec(base),
                "-o", str(tmp_path / "out.png"))
    assert r.returncode == 3 and "not an OpenAI-compatible answer" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("models", [(200, "application/json", '{"data": 7}'), (200, "text/html", "<html>hi</html>"),
                                    (200, "application/json", '{"data": [{"no": "id"}]}')])
def test_a_garbage_model_list_is_a_server_error(remote, models):
    base, how, _ = remote
    how.models_raw = models
    with pytest.raises(ModelUnavailableError, match="the model list"):
        RemotePlanner.from_spec(spec(base))


@pytest.mark.parametrize("slow", ["trickle", "silent"])
def test_one_total_deadline_per_ask_holds_against_a_trickling_or_silent_server(remote, slow):
    """Issue 16 #8: a server trickling a byte every few seconds hung with no overall deadline, and a
    silent one took 4 x 60 s. Both answer validly in the end (the trickle after about a minute, the
    silent one after 30 s): only the deadline (2 s here) stops the ask first."""
    base, how, _ = remote
    planner = RemotePlanner.from_spec(spec(base), timeout=2)
    if slow == "trickle":
        how.trickle = 0.5
    else:
        how.silent = 30
    with pytest.raises(ModelUnavailableError, match="no complete answer to the question within 2 s"):
        planner.ask(scene(), "make the disc red")
