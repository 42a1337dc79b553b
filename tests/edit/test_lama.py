"""The `lama` painter (edit/painters/lama.py): a LaMa-shaped ONNX graph run by ONNX Runtime, both
interfaces LaMa's exports have (image and mask apart at a fixed size; one 4-channel input at any
size), and the lite preset routing remove alone to it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.plan import Action, Edit
from lasso_edit.edit.base import ExecSettings
from lasso_edit.edit.inpaint import Inpainter
from lasso_edit.testing.tiny import build_tiny_lama

from ..helpers import run_cli, scene


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    root = tmp_path_factory.mktemp("lama")
    return {"fixed, two inputs": build_tiny_lama(root / "a"), "any size, one input": build_tiny_lama(root / "b", None, 1)}


@pytest.mark.parametrize("kind", ["fixed, two inputs", "any size, one input"])
def test_both_lama_interfaces_fill_the_hole_at_the_crops_size_the_same_each_time(graphs, kind):
    inp = Inpainter.from_pretrained(f"lama:{graphs[kind]}")
    assert inp.kind == "lama" and inp.painter.fixed == ((64, 64) if kind.startswith("fixed") else None)
    img = scene(90, 140)
    region = np.zeros((90, 140), bool)
    region[20:60, 30:90] = True
    out = inp.execute(img, region, Edit(Action.REMOVE, "disc"), ExecSettings(seed=0))
    again = inp.execute(img, region, Edit(Action.REMOVE, "disc"), ExecSettings(seed=7))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (out[region] != img[region]).mean() > 0.9 and (out == again).all()  # one pass: no seed in it


def test_a_folder_without_one_graph_is_a_clear_error(tmp_path):
    from lasso_edit.core.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="expected one .onnx graph"):
        Inpainter.from_pretrained(f"lama:{tmp_path}")


@pytest.mark.e2e  # the CLI as a user runs it
def test_lite_removes_with_its_remover_and_replaces_with_its_inpainter(graphs, tmp_path):
    from lasso_edit.testing.tiny import build_tiny_sd_turbo

    turbo = build_tiny_sd_turbo(tmp_path / "turbo")
    common = ["--preset", "lite", "--device", "cpu", "--detector", "tiny:owlvit", "--segmenter", "tiny:edgetam",
              "--inpainter", f"turbo:{turbo}", "--remover", f"lama:{graphs['fixed, two inputs']}",
              "--box-threshold", "0", "--seed", "2"]
    records = {}
    for action, instruction in (("remove", "remove the cup"), ("replace", "replace the cup with a bowl")):
        plan = tmp_path / f"{action}.json"
        r = run_cli("edit", "examples/coffee.png", instruction, *common, "-o", str(tmp_path / f"{action}.png"),
                    "--mask-out", str(tmp_path / f"{action}-m.png"), "--plan-out", str(plan))
        assert r.returncode == 0, r.stderr[-2000:]
        records[action] = json.loads(plan.read_text())
        kept = np.asarray(Image.open(tmp_path / f"{action}-m.png").convert("L")) == 0
        before = np.asarray(Image.open("examples/coffee.png").convert("RGB"))
        after = np.asarray(Image.open(tmp_path / f"{action}.png").convert("RGB"))
        assert int((after != before).any(axis=2)[kept].sum()) == 0
    assert records["remove"]["models"]["remover"].startswith("lama:")


def test_remove_loads_the_remover_alone_and_replace_the_inpainter(graphs, tmp_path):
    """Models load on first use: a remove loads LaMa and not SD-Turbo; a replace then loads SD-Turbo."""
    from lasso_edit.core.config import EditorConfig
    from lasso_edit.pipeline.editor import Editor
    from lasso_edit.testing.tiny import build_tiny_sd_turbo

    editor = Editor.from_config(EditorConfig.of(
        preset="lite", device="cpu", detector="tiny:owlvit", segmenter="tiny:edgetam", box_threshold=0.0,
        inpainter=f"turbo:{build_tiny_sd_turbo(tmp_path / 'turbo')}", remover=f"lama:{graphs['fixed, two inputs']}"))
    editor(scene(), "remove the red disc", seed=1)
    assert "remover" in editor.loaded and "inpainter" not in editor.loaded
    editor(scene(), "replace the red disc with a boat", seed=1)
    assert "inpainter" in editor.loaded
