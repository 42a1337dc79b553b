"""The one write path (pipeline/outputs.py, issue 30 #2): every surface writes an edit's files
through `write_and_prove`, which proves the file as written and records the proof."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import lasso_edit
from lasso_edit.pipeline.outputs import write_and_prove

from ..helpers import parse_python, scene

ROOT = Path(lasso_edit.__file__).parent


def _calls(name: str) -> list[str]:
    """The package's modules that call `name(...)` (as a bare name or an attribute)."""
    found = []
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(parse_python(path)):
            if isinstance(node, ast.Call):
                f = node.func
                if (isinstance(f, ast.Name) and f.id == name) or (isinstance(f, ast.Attribute) and f.attr == name):
                    found.append(str(path.relative_to(ROOT)))
                    break
    return sorted(found)


def test_only_the_write_path_proves_what_it_writes():
    """Anything else that proved its own files would be a second write path to keep in step
    (Content Credentials go in one place): prove() is called in outputs.py and nowhere else."""
    assert _calls("prove") == ["pipeline/outputs.py"]


@pytest.fixture(scope="module")
def edited(tiny_editor):
    image = scene(96, 64)
    return image, tiny_editor(image, "make the car red", seed=3, steps=2)


def test_result_save_proves_the_file_as_written(edited, tmp_path):
    _, result = edited
    result.preservation = None
    warnings = result.save(tmp_path / "out.png")
    assert (tmp_path / "out.png").is_file()
    proof = result.preservation
    assert proof is not None and proof["changed_outside"] == 0 and proof["identical_outside"]
    assert proof["inside_pixels"] == int(result.mask.sum()) and not [w for w in warnings if "read back" in w]


def test_the_proof_is_measured_against_the_allowed_pixels_when_given(edited, tmp_path):
    _, result = edited
    changed_inside = write_and_prove(result, tmp_path / "a.png") is not None and result.preservation["changed_inside"]
    assert changed_inside > 0  # the tiny painter's noise changes the masked pixels
    nothing_allowed = np.zeros_like(result.mask)
    write_and_prove(result, tmp_path / "b.png", allowed=nothing_allowed)
    assert result.preservation["changed_outside"] == changed_inside  # every change is now outside


def test_the_mask_and_record_are_written_with_the_image(edited, tmp_path):
    _, result = edited
    write_and_prove(result, tmp_path / "o.png", mask_out=tmp_path / "m.png", plan_out=tmp_path / "p.json")
    import json

    from PIL import Image

    record = json.loads((tmp_path / "p.json").read_text())
    assert record["preservation"] == result.preservation
    assert (np.asarray(Image.open(tmp_path / "m.png")) > 0).sum() == int((result.alpha > 0).sum())


def test_the_jpeg_blocks_raise_the_mask_as_a_whole_frame_maximum_would():
    """Issue 34: the re-encoded blocks are folded into the compositing weight within their box only;
    the weight is np.maximum(alpha, blocks / 255) exactly, and the result's own is left as it was."""
    from lasso_edit.pipeline.outputs import _at_least

    rng = np.random.default_rng(3)
    alpha = (rng.random((60, 90)) * (rng.random((60, 90)) > 0.7)).astype(np.float32)
    blocks = np.zeros((60, 90), bool)
    blocks[8:24, 16:48] = True
    blocks[40:48, 80:90] = True
    kept = alpha.copy()
    got = _at_least(alpha, blocks, np.float32(1.0) / 255.0)
    assert got.dtype == np.float32 and (got == np.maximum(alpha, blocks.astype(np.float32) / 255.0)).all()
    assert (alpha == kept).all() and _at_least(alpha, np.zeros_like(blocks), np.float32(1.0)) is alpha
