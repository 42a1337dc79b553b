"""assist.py: the tools of `lasso mcp` without MCP: images as paths or data URLs, which paths a
caller may name, edits written and answered, sessions with undo and redo, large images shown scaled."""

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.config import EditorConfig
from lasso_edit.core.errors import InvalidInputError
from lasso_edit.sessions.assist import PREVIEW_SIDE, FilePolicy, Tools

from ..helpers import run_cli, save, scene


@pytest.fixture()
def tools(tiny_editor, tmp_path):
    t = Tools(EditorConfig("tiny"), FilePolicy.unrestricted(), tmp_path / "sessions", editor=tiny_editor)
    yield t
    t.close()


def _data_url(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_plan_answers_what_lasso_plan_json_prints(tools, tmp_path):
    img = save(scene(), tmp_path / "in.png")
    answer = tools.plan(str(img), "make the blue square green")
    cli = run_cli("plan", str(img), "make the blue square green", "--preset", "tiny", "--json")
    assert cli.returncode == 0, cli.stderr
    assert json.loads(answer.text) == json.loads(cli.stdout) == answer.data


def test_edit_writes_the_output_and_answers_the_same_bytes_with_a_line_naming_what_changed(tools, tmp_path):
    img = save(scene(), tmp_path / "in.png")
    out = tmp_path / "out.png"
    answer = tools.edit(str(img), "remove the red disc", output=str(out), seed=7)
    assert answer.image == out.read_bytes() and answer.mime == "image/png"
    assert "remove the red disc" in answer.text and "seed 7" in answer.text and f"wrote {out}" in answer.text
    assert "outside the mask: 0 of" in answer.text and answer.data["preservation"]["identical_outside"] is True
    # the same edit as `lasso edit` with the same seed: the same file
    cli = run_cli(
        "edit", str(img), "remove the red disc", "--preset", "tiny", "--seed", "7", "-o", str(tmp_path / "c.png")
    )
    assert cli.returncode == 0, cli.stderr
    # the same pixels (each file's Content Credentials carry their own time and ids)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "c.png")), np.asarray(Image.open(out)))


def test_edit_of_a_data_url_without_output_answers_the_image_and_leaves_no_file(tools, tmp_path):
    img = save(scene(), tmp_path / "in.png")
    answer = tools.edit(_data_url(img), "remove the red disc", seed=1)
    assert _pixels(answer.image).shape == scene().shape and answer.data["output"] is None
    assert "wrote" not in answer.text
    assert not [p for p in tools.work_dir.iterdir() if p.name.startswith("edit-")]  # the unsaved result is gone


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("", "no image"),
        ("data:image/png,abc", "must be base64"),
        ("data:image/png;base64,@@@", "base64 is not valid"),
        ("data:image/png;base64,", "holds no bytes"),
        ("data:image/png;base64," + base64.b64encode(b"not an image").decode(), "image"),
        ("/no/such/photo.png", "image not found"),
    ],
)
def test_a_bad_image_is_an_input_error_naming_the_problem(tools, image, message):
    with pytest.raises(InvalidInputError, match=message):
        tools.edit(image, "remove the red disc")


def test_an_output_that_is_the_input_is_refused_before_any_work(tools, tmp_path):
    img = save(scene(), tmp_path / "in.png")
    before = img.read_bytes()
    with pytest.raises(InvalidInputError, match="never overwrites its input"):
        tools.edit(str(img), "remove the red disc", output=str(img))
    assert img.read_bytes() == before


def test_inside_a_root_paths_outside_it_are_refused_and_paths_in_it_work(tiny_editor, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    inside = save(scene(), root / "in.png")
    outside = save(scene(), tmp_path / "secret.png")
    t = Tools(EditorConfig("tiny"), FilePolicy.inside(root), tmp_path / "s", editor=tiny_editor)
    try:
        for bad in (str(outside), "../secret.png", str(root / ".." / "secret.png")):
            with pytest.raises(InvalidInputError, match="outside the folder"):
                t.edit(bad, "remove the red disc")
        with pytest.raises(InvalidInputError, match="outside the folder"):
            t.edit("in.png", "remove the red disc", output=str(tmp_path / "x.png"))
        answer = t.edit("in.png", "remove the red disc", output="out.png", seed=2)  # relative to the root
        assert (root / "out.png").read_bytes() == answer.image and inside.exists()
    finally:
        t.close()


def test_with_no_paths_allowed_only_data_urls_are_taken(tiny_editor, tmp_path):
    img = save(scene(), tmp_path / "in.png")
    t = Tools(EditorConfig("tiny"), FilePolicy(), tmp_path / "s", editor=tiny_editor)
    try:
        with pytest.raises(InvalidInputError, match="takes no file paths"):
            t.edit(str(img), "remove the red disc")
        with pytest.raises(InvalidInputError, match="takes no file paths"):
            t.edit(_data_url(img), "remove the red disc", output=str(tmp_path / "o.png"))
        assert t.edit(_data_url(img), "remove the red disc").image is not None
    finally:
        t.close()


def test_a_session_edits_undoes_and_redoes_answering_the_current_image(tools, tmp_path):
    img = save(scene(), tmp_path / "in.png")
    opened = tools.open_session(_data_url(img))
    sid = opened.data["session"]
    assert f"session {sid} opened on a 160x120 image" == opened.text
    assert (_pixels(opened.image) == scene()).all()
    step = tools.session_edit(sid, "remove the red disc")
    assert step.text.startswith("step 1: remove the red disc; seed ") and "outside the mask: 0 of" in step.text
    assert step.data["cursor"] == 1 and step.data["can_undo"]
    back = tools.undo(sid)
    assert back.text == "undid step 1; now at the original" and back.image == opened.image
    assert tools.undo(sid).text.startswith("nothing to undo")
    again = tools.redo(sid)
    assert again.text == "redid step 1" and again.image == step.image
    assert tools.redo(sid).text == "nothing to redo after step 1"


def test_a_large_result_is_shown_scaled_and_says_so(tools, tmp_path):
    big = np.zeros((40, 2 * PREVIEW_SIDE, 3), np.uint8)
    img = save(big, tmp_path / "wide.png")
    opened = tools.open_session(str(img))
    shown = Image.open(io.BytesIO(opened.image))
    assert shown.size == (PREVIEW_SIDE, 20)  # half the size on each side
    assert f"(shown scaled to {PREVIEW_SIDE}x20; the image is {2 * PREVIEW_SIDE}x40)" in opened.text


def test_a_16_bit_result_is_shown_as_8_bit_png(tools, tmp_path):
    deep = (scene().astype(np.uint16) * 257)[..., 0]
    img = tmp_path / "deep.png"
    Image.fromarray(deep).save(img)  # uint16: a 16-bit grey PNG
    opened = tools.open_session(str(img))
    shown = Image.open(io.BytesIO(opened.image))
    assert opened.mime == "image/png" and shown.mode in ("RGB", "L")


def test_a_session_over_the_tools_is_a_conversation(tools, tmp_path):
    sid = tools.open_session(str(save(scene(), tmp_path / "in.png"))).data["session"]
    asked = tools.session_edit(sid, "make it darker")
    assert asked.text.startswith("question: ") and asked.image is None and asked.data["question"]
    assert tools.store.get(sid).steps == []
    first = tools.session_edit(sid, "make the blue square red")
    darker = tools.session_edit(sid, "make it darker")
    assert darker.text.startswith("step 2: the same edit, darker: make the blue square dark red; seed ")
    # made from the original, as the step after step 1 (issue 29: undo goes back one step, to step 1)
    assert (tools.store.get(sid).step(2).parent, tools.store.get(sid).step(2).base) == (1, 0)
    assert darker.image != first.image
    undone = tools.session_edit(sid, "undo that")
    assert undone.text == "undid the last edit; now at step 1" and undone.data["cursor"] == 1
