"""`contain_edit` through the official `mcp` client: another editor's drifted output of a real photo
put back inside its region with nothing outside changed, the alignment reported, bad pairs as one-line
tool errors, `output` a file `lasso verify` proves; and no model loaded for any of it."""

import base64
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.config import EditorConfig
from lasso_edit.sessions.assist import FilePolicy, Tools

from ..helpers import run_cli
from ..imaging.test_align import coffee, drift, painted

pytest.importorskip("mcp")

from .test_server import _call, _image  # noqa: E402


@pytest.fixture()
def tools(tmp_path):
    """Tools whose editor cannot even be built (no such preset): contain_edit must never ask for it."""
    tools = Tools(EditorConfig("no-such-preset"), FilePolicy.unrestricted(), tmp_path / "sessions")
    yield tools
    tools.close()


@pytest.fixture()
def server(tools):
    from lasso_edit.mcp.server import build

    return build(tools)


def _changed() -> np.ndarray:
    """Where the edit painted the photo (bool HxW)."""
    orig = coffee()
    return np.any(painted(orig) != orig, axis=2)


def _pair(tmp_path):
    """The photo as a file, and another editor's answer of its edit: 1024x1024, zoomed 1.03, turned
    0.5 degrees, shifted (2.4, -1.7) px, colour-drifted, JPEG-encoded, as a data URL."""
    orig = coffee()
    edited, _ = drift(painted(orig), size=(1024, 1024))
    a, b = tmp_path / "orig.png", tmp_path / "edited.png"
    Image.fromarray(orig).save(a)
    Image.fromarray(edited).save(b)
    return a, "data:image/png;base64," + base64.b64encode(b.read_bytes()).decode()


def test_contain_edit_is_listed_with_a_clear_description(server):
    async def calls(client):
        return (await client.list_tools()).tools

    (tool,) = [t for t in _call(server, calls) if t.name == "contain_edit"]
    assert set(tool.input_schema["required"]) == {"original", "edited"}
    assert {"mask", "output"} <= set(tool.input_schema["properties"])
    said = tool.description
    assert "another editor's" in said and "align" in said and "no pixel outside it changed" in said
    assert "data URL" in tool.input_schema["properties"]["edited"]["description"]


def test_a_drifted_answer_comes_back_inside_its_region_and_nothing_outside_changes(server, tools, tmp_path):
    a, edited = _pair(tmp_path)

    async def calls(client):
        return await client.call_tool("contain_edit", {"original": str(a), "edited": edited})

    r = _call(server, calls)
    assert not r.is_error, r.content[0].text
    out, orig, truth = _image(r), coffee(), painted(coffee())
    changed = _changed()
    near = cv2.dilate(changed.astype(np.uint8), np.ones((41, 41), np.uint8)) > 0
    assert (out[~near] == orig[~near]).all()  # bit-identical away from the edit
    moved = np.any(out != orig, axis=2)
    report = r.structured_content
    assert moved.sum() <= report["region_px"] < 1.6 * changed.sum()
    inner = cv2.erode(changed.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0  # the feather blends the rim
    assert np.median(np.abs(out.astype(int) - truth.astype(int))[inner]) <= 2  # the edit, aligned, put back
    a_ = report["alignment"]
    assert abs(a_["scale"] - 1.03) < 0.003 and abs(a_["rotation"] - 0.5) < 0.06
    assert np.allclose(a_["shift"], (2.4, -1.7), atol=0.2)
    assert a_["edited_size"] == [1024, 1024] and a_["original_size"] == [600, 400]
    assert report["identical_outside"] is True and report["changed_outside"] == 0
    assert report["region_from"] == "changes" and set(report["colour"]) == {"gain", "offset"}
    assert report["original"] == str(a) and report["edited"] is None and report["output"] is None
    (text,) = [c.text for c in r.content if c.type == "text"]
    assert text.startswith("aligned EDITED (1024x1024) on ORIGINAL (600x400): scale 1.03") and "\n" not in text
    assert "rotation +0.5" in text and "colour undone: gain" in text and "(what changed)" in text
    assert "outside the mask: 0 of" in text
    assert tools._editor is None  # no model was loaded (none could be)
    assert list(tools.work_dir.glob("contain-*")) == []  # the unsaved result is not kept


def test_a_pair_that_is_not_an_edit_is_a_one_line_tool_error_naming_the_residual(server, tmp_path):
    a, edited = _pair(tmp_path)
    orig = coffee()
    top, bottom = tmp_path / "top.png", tmp_path / "bottom.png"
    Image.fromarray(orig[:200]).save(top)
    Image.fromarray(np.ascontiguousarray(orig[200:])).save(bottom)
    small = tmp_path / "small.png"
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(small)
    before = a.read_bytes()

    async def calls(client):
        return [
            await client.call_tool("contain_edit", {"original": str(top), "edited": str(bottom)}),
            await client.call_tool("contain_edit", {"original": str(a), "edited": edited, "mask": str(small)}),
            await client.call_tool("contain_edit", {"original": str(a), "edited": edited, "output": str(a)}),
            await client.call_tool("contain_edit", {"original": str(a), "edited": "/no/such.png"}),
            await client.call_tool("contain_edit", {"original": str(a), "edited": edited}),
        ]

    not_edit, bad_mask, over, missing, good = _call(server, calls)
    for r in (not_edit, bad_mask, over, missing):
        text = r.content[0].text
        assert r.is_error and text.startswith("error: ") and "\n" not in text and "Traceback" not in text, text
    assert "does not look like an edit of ORIGINAL" in not_edit.content[0].text
    assert "levels" in not_edit.content[0].text
    assert "the mask is 10x10; ORIGINAL is 600x400" in bad_mask.content[0].text
    assert "never overwrites" in over.content[0].text and a.read_bytes() == before
    assert "/no/such.png" in missing.content[0].text
    assert not good.is_error  # the server is still up


def test_output_writes_a_file_lasso_verify_proves_inside_the_mask_given(server, tmp_path):
    a, edited = _pair(tmp_path)
    mask = cv2.dilate(_changed().astype(np.uint8), np.ones((15, 15), np.uint8)) * 255
    mask_path, out = tmp_path / "mask.png", tmp_path / "out.png"
    Image.fromarray(mask).save(mask_path)
    folder = tmp_path / "folder"
    folder.mkdir()
    mask_url = "data:image/png;base64," + base64.b64encode(mask_path.read_bytes()).decode()

    async def calls(client):
        args = {"original": str(a), "edited": edited}
        return (
            await client.call_tool("contain_edit", {**args, "mask": str(mask_path), "output": str(out)}),
            await client.call_tool("contain_edit", {**args, "mask": mask_url, "output": str(folder)}),
        )

    to_file, to_folder = _call(server, calls)
    assert not to_file.is_error, to_file.content[0].text
    assert to_file.structured_content["output"] == str(out) and f"; wrote {out}" in to_file.content[0].text
    assert to_file.structured_content["region_from"] == "mask" and "(the mask given)" in to_file.content[0].text
    assert (_image(to_file) == np.asarray(Image.open(out).convert("RGB"))).all()
    proved = run_cli("verify", str(a), str(out), "--mask", str(mask_path), "--json")
    assert proved.returncode == 0, proved.stderr
    report = json.loads(proved.stdout)
    assert report["identical_outside"] and report["changed_outside"] == 0 and report["changed_inside"] > 0
    assert not to_folder.is_error and [p.name for p in folder.iterdir()] == ["orig-contained.png"]
    # the same pixels (each file's Content Credentials carry their own time and ids)
    assert np.array_equal(np.asarray(Image.open(folder / "orig-contained.png")), np.asarray(Image.open(out)))
