"""`lasso mcp` through the official `mcp` client: in this process for what the tools answer, then
over stdio (`lasso mcp` as an assistant starts it) and streamable HTTP with an API key, as real
processes."""

import base64
import io
import json
import os
import sys
import threading

import anyio
import httpx
import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.config import EditorConfig
from lasso_edit.sessions.assist import FilePolicy, Tools

from ..helpers import free_port, run_cli, save, scene, until

pytest.importorskip("mcp")

from mcp import Client, StdioServerParameters  # noqa: E402

TOOLS = {"plan_edit", "edit_image", "contain_edit", "open_session", "session_edit", "undo", "redo"}


@pytest.fixture()
def tools(tiny_editor, tmp_path):
    tools = Tools(EditorConfig("tiny"), FilePolicy.unrestricted(), tmp_path / "sessions", editor=tiny_editor)
    yield tools
    tools.close()


@pytest.fixture()
def server(tools):
    from lasso_edit.mcp.server import build

    return build(tools)


def _call(client_target, calls):
    """Run `calls(client)` (an async function) against `client_target` and return what it returns."""
    out = {}

    async def main():
        async with Client(client_target) as client:
            out["value"] = await calls(client)

    anyio.run(main)
    return out["value"]


def _image(result) -> np.ndarray:
    (img,) = [c for c in result.content if c.type == "image"]
    assert img.mime_type == "image/png"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(img.data))).convert("RGB"))


def test_the_seven_tools_are_listed_with_their_arguments(server):
    async def calls(client):
        return (await client.list_tools()).tools

    tools = {t.name: t for t in _call(server, calls)}
    assert set(tools) == TOOLS
    edit = tools["edit_image"].input_schema
    assert set(edit["required"]) == {"image", "instruction"}
    assert {"output", "seed", "steps", "guidance", "strength"} <= set(edit["properties"])
    assert "ctx" not in edit["properties"]
    assert "data URL" in edit["properties"]["image"]["description"]


def test_edit_image_answers_the_image_a_summary_and_progress_outside_pixels_untouched(server, tmp_path):
    img = save(scene(), tmp_path / "in.png")
    seen = []

    async def calls(client):
        async def progress(done, total, message):
            seen.append(message)

        return await client.call_tool(
            "edit_image",
            {"image": str(img), "instruction": "remove the red disc", "seed": 5},
            progress_callback=progress,
        )

    r = _call(server, calls)
    assert not r.is_error
    assert r.content[0].type == "text" and r.content[0].text.startswith("remove the red disc (")
    assert "seed 5" in r.content[0].text and "outside the mask: 0 of" in r.content[0].text
    out, before = _image(r), scene()
    assert r.structured_content["preservation"]["identical_outside"] is True
    assert (out != before).any()
    assert "understanding the instruction" in seen and any(m.startswith("painting") for m in seen)


def test_a_tool_error_is_the_cli_sentence_and_the_server_stays_up(server, tmp_path):
    img = save(scene(), tmp_path / "in.png")
    cli = run_cli("edit", "/no/such.png", "remove the red disc", "--preset", "tiny", "-o", str(tmp_path / "o.png"))

    async def calls(client):
        bad = await client.call_tool("edit_image", {"image": "/no/such.png", "instruction": "remove the red disc"})
        empty = await client.call_tool("plan_edit", {"image": str(img), "instruction": "   "})
        gone = await client.call_tool("undo", {"session": "nope"})
        good = await client.call_tool("plan_edit", {"image": str(img), "instruction": "remove the red disc"})
        return bad, empty, gone, good

    bad, empty, gone, good = _call(server, calls)
    assert bad.is_error and cli.returncode == 2 and bad.content[0].text == cli.stderr.strip()
    assert empty.is_error and empty.content[0].text.startswith("error: ") and "instruction" in empty.content[0].text
    assert gone.is_error and gone.content[0].text == "error: no such session"
    assert not good.is_error and json.loads(good.content[0].text)["edits"][0]["action"] == "remove"


def test_a_session_over_mcp_undoes_to_the_original_and_redoes_to_the_edit(server, tmp_path):
    img = save(scene(), tmp_path / "in.png")
    url = "data:image/png;base64," + base64.b64encode(img.read_bytes()).decode()

    async def calls(client):
        opened = await client.call_tool("open_session", {"image": url})
        sid = opened.structured_content["session"]
        edited = await client.call_tool("session_edit", {"session": sid, "instruction": "remove the red disc"})
        back = await client.call_tool("undo", {"session": sid})
        again = await client.call_tool("redo", {"session": sid})
        return opened, edited, back, again

    opened, edited, back, again = _call(server, calls)
    assert not any(r.is_error for r in (opened, edited, back, again))
    assert (_image(opened) == scene()).all() and (_image(back) == scene()).all()
    assert (_image(again) == _image(edited)).all() and (_image(edited) != scene()).any()
    assert back.content[0].text == "undid step 1; now at the original"


def _url(path, scheme="data") -> str:
    return f"{scheme}:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


BAD_PATHS = [  # (what the caller sends, words the answer must have)
    ("in\x00.png", "contains a NUL byte"),
    ("x" * 300 + ".png", "a name 304 bytes long"),
    ("/" + "d/" * 2100 + "in.png", "bytes long; a path holds at most 4096"),
    ("in\ud800.png", "no file name can"),
    (5, "should be a valid string (got number)"),
    (None, "should be a valid string (got null)"),
    (["in.png"], "should be a valid string (got array)"),
]


@pytest.mark.parametrize("tool,field", [
    ("plan_edit", "image"), ("edit_image", "image"), ("edit_image", "output"), ("open_session", "image")
])
def test_a_path_no_file_could_have_is_a_one_line_tool_error_for_every_path_of_every_tool(server, tmp_path, tool, field):
    img = save(scene(), tmp_path / "in.png")
    bad_paths = [(bad, words) for bad, words in BAD_PATHS if not (field == "output" and bad is None)]  # optional

    async def calls(client):
        answers = []
        for bad, _ in bad_paths:
            args = {"image": str(img), "instruction": "remove the red disc", field: bad}
            if tool == "open_session":
                args = {"image": bad}
            answers.append(await client.call_tool(tool, args))
        answers.append(await client.call_tool("plan_edit", {"image": str(img), "instruction": "remove the red disc"}))
        return answers

    *answers, after = _call(server, calls)
    for (bad, words), r in zip(bad_paths, answers):
        text = r.content[0].text
        assert r.is_error and text.startswith("error: ") and "\n" not in text, (bad, text)
        assert words in text and "internal error" not in text, (bad, text)
    assert not after.is_error  # the server is still up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "sessions"]  # nothing written


def test_a_tool_error_about_an_upload_never_shows_the_servers_own_folder(server, tools, tmp_path):
    not_png = tmp_path / "notes.png"
    not_png.write_bytes(b"not an image at all")

    async def calls(client):
        args = {"image": _url(not_png), "instruction": "remove the red disc"}
        return [await client.call_tool(tool, args) for tool in ("plan_edit", "edit_image")] + [
            await client.call_tool("open_session", {"image": _url(not_png)})
        ]

    for r in _call(server, calls):
        text = r.content[0].text
        assert r.is_error and text.startswith("error: not an image Lasso can read"), text
        assert str(tools.work_dir) not in text and "lasso-mcp-" not in text and "upload-" not in text, text
        assert text.endswith(": the uploaded image"), text  # named as the HTTP API names it


def test_a_data_url_in_any_case_is_a_data_url_and_names_no_file_after_its_text(server, tmp_path):
    img = save(scene(), tmp_path / "in.png")
    folder = tmp_path / "out"
    folder.mkdir()

    async def calls(client):
        edit = await client.call_tool("edit_image", {
            "image": _url(img, "DATA"), "instruction": "remove the red disc", "seed": 3, "output": str(folder)
        })
        opened = await client.call_tool("open_session", {"image": _url(img, "Data")})
        return edit, opened

    edit, opened = _call(server, calls)
    assert not edit.is_error and not opened.is_error, (edit.content[0].text, opened.content[0].text)
    assert [p.name for p in folder.iterdir()] == ["image-edited.png"]  # as for data:, never the base64 text
    assert (_image(edit) == np.asarray(Image.open(folder / "image-edited.png").convert("RGB"))).all()
    assert (_image(opened) == scene()).all()


def test_a_follow_up_being_read_holds_up_no_other_tool(server, tools, tmp_path, monkeypatch):
    """The follow-up resolver needs no model: while it reads (a hostile text, say), plan_edit, which
    needs the models' lock, and undo are answered."""
    from lasso_edit.sessions import session as sessions

    img = save(scene(), tmp_path / "in.png")
    reading, go, waited = threading.Event(), threading.Event(), threading.Event()
    resolve = sessions.resolve

    def slow(words, context):
        if words == "make it darker":
            reading.set()
            go.wait()
        return resolve(words, context)

    class Watched:  # the models' lock; waiting on it behind the resolver is the failure, and ends the wait
        def __init__(self):
            self.lock = threading.Lock()

        def __enter__(self):
            if not self.lock.acquire(blocking=False):
                waited.set()
                go.set()
                self.lock.acquire()

        def __exit__(self, *exc):
            self.lock.release()

    monkeypatch.setattr(sessions, "resolve", slow)
    tools._lock = Watched()

    async def calls(client):
        sid = (await client.call_tool("open_session", {"image": str(img)})).structured_content["session"]
        out = {}

        async def follow_up():
            try:
                out["follow_up"] = await client.call_tool("session_edit", {"session": sid, "instruction": "make it darker"})
            finally:
                reading.set()  # never left waiting below, whatever happened

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow_up)
            try:
                await anyio.to_thread.run_sync(reading.wait)
                out["plan"] = await client.call_tool("plan_edit", {"image": str(img), "instruction": "remove the red disc"})
                out["undo"] = await client.call_tool("undo", {"session": sid})
                out["while_reading"] = not go.is_set()
            finally:
                go.set()
        return out

    out = _call(server, calls)
    assert out["while_reading"] and not waited.is_set()
    assert not out["plan"].is_error and json.loads(out["plan"].content[0].text)["edits"][0]["action"] == "remove"
    assert not out["undo"].is_error
    assert out["follow_up"].content[0].text.startswith("question: ")  # nothing before it to lean on


# ---------------------------------------------------------------------- real processes


def _lasso(*args) -> list[str]:
    return [sys.executable, "-m", "lasso_edit.cli", "mcp", "--preset", "tiny", *args]


def test_over_stdio_an_assistant_plans_and_edits_as_the_cli_does(tiny_dir, tmp_path, processes):
    img = save(scene(), tmp_path / "in.png")
    out = tmp_path / "out.png"
    argv = _lasso("--sessions", str(tmp_path / "s"))
    params = StdioServerParameters(command=argv[0], args=argv[1:], env={**os.environ, "LASSO_TINY_DIR": str(tiny_dir)})

    async def calls(client):
        plan = await client.call_tool("plan_edit", {"image": str(img), "instruction": "make the blue square green"})
        bad = await client.call_tool("edit_image", {"image": str(img), "instruction": "x", "seed": -1})
        edit = await client.call_tool(
            "edit_image", {"image": str(img), "instruction": "remove the red disc", "seed": 9, "output": str(out)}
        )
        return plan, bad, edit

    plan, bad, edit = _call(params, calls)
    cli = run_cli("plan", str(img), "make the blue square green", "--preset", "tiny", "--json")
    assert json.loads(plan.content[0].text) == json.loads(cli.stdout)
    assert bad.is_error and "seed" in bad.content[0].text
    assert not edit.is_error and (_image(edit) == np.asarray(Image.open(out).convert("RGB"))).all()
    made = run_cli(
        "edit", str(img), "remove the red disc", "--preset", "tiny", "--seed", "9", "-o", str(tmp_path / "c.png")
    )
    assert made.returncode == 0  # the same pixels (each file's Content Credentials carry their own time and ids)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c.png")), np.asarray(Image.open(out)))


def test_over_http_the_api_key_is_required_and_the_tools_answer(tiny_dir, tmp_path, processes):
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    port = free_port()
    proc = processes.start(
        _lasso("--http", f"127.0.0.1:{port}", "--api-key", "s3cret", "--sessions", str(tmp_path / "s")),
        env={**os.environ, "LASSO_TINY_DIR": str(tiny_dir)},
    )
    url = f"http://127.0.0.1:{port}/mcp"

    def up() -> bool:
        try:
            httpx.get(url, timeout=5)
            return True
        except httpx.TransportError:
            return False

    until(up, still=lambda: proc.poll() is None)
    assert httpx.post(url, json={}).status_code == 401
    assert httpx.post(url, json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    img = save(scene(), tmp_path / "in.png")
    data = "data:image/png;base64," + base64.b64encode(img.read_bytes()).decode()

    async def calls(client):
        path = await client.call_tool("edit_image", {"image": str(img), "instruction": "remove the red disc"})
        edit = await client.call_tool("edit_image", {"image": data, "instruction": "remove the red disc", "seed": 4})
        return path, edit

    async def main():
        async with create_mcp_http_client(headers={"Authorization": "Bearer s3cret"}) as http:
            async with Client(streamable_http_client(url, http_client=http)) as client:
                return await calls(client)

    path, edit = anyio.run(main)
    assert path.is_error and "takes no file paths" in path.content[0].text  # over HTTP: data URLs unless --files
    assert not edit.is_error and _image(edit).shape == scene().shape
    assert edit.structured_content["preservation"]["identical_outside"] is True
