"""`lasso contain`: a drifted answer put back, the report and the proof, bad input in one line."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

import lasso_edit.cli.contain  # noqa: F401 - registers the command (until cli/__init__.py imports it)
from lasso_edit.imaging import load_image

from ..helpers import run_cli
from ..imaging.test_align import coffee, drift, painted


def _pair(tmp_path, suffix=".png"):
    orig = coffee()
    edited, _ = drift(painted(orig), size=(1024, 1024))
    a, b = tmp_path / f"orig{suffix}", tmp_path / "edited.png"
    Image.fromarray(orig).save(a, **({"quality": 95} if suffix == ".jpg" else {}))
    Image.fromarray(edited).save(b)
    return a, b


def test_contain_writes_the_output_the_mask_and_a_report(tmp_path):
    a, b = _pair(tmp_path)
    out, mask = tmp_path / "out.png", tmp_path / "mask.png"
    r = run_cli("contain", str(a), str(b), "-o", str(out), "--mask-out", str(mask))
    assert r.returncode == 0, r.stderr
    assert "aligned EDITED (1024x1024) on ORIGINAL (600x400)" in r.stdout
    assert "outside the mask: 0 of" in r.stdout and "colour undone" in r.stdout
    m = np.asarray(Image.open(mask)) > 0
    assert (np.asarray(Image.open(out))[~m] == np.asarray(Image.open(a))[~m]).all()
    r = run_cli("contain", str(a), str(b), "-o", str(tmp_path / "again.png"), "--json", "--mask", str(mask))
    report = json.loads(r.stdout)
    assert r.returncode == 0 and report["identical_outside"] and report["changed_outside"] == 0
    assert report["region_from"] == "mask" and abs(report["alignment"]["scale"] - 1.03) < 0.003


def test_jpeg_in_jpeg_out_keeps_every_block_outside(tmp_path):
    a, b = _pair(tmp_path, ".jpg")
    out = tmp_path / "out.jpg"
    r = run_cli("contain", str(a), str(b), "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["identical_outside"] and report["decoded_jpeg"]
    assert load_image(out).format == "JPEG"


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    a, b = _pair(tmp_path)
    r = run_cli("contain", str(a), str(b), "-o", str(a))
    assert r.returncode == 2 and "never overwrites" in r.stderr and "Traceback" not in r.stderr
    orig = coffee()
    Image.fromarray(orig[:200]).save(tmp_path / "top.png")
    Image.fromarray(np.ascontiguousarray(orig[200:])).save(tmp_path / "bottom.png")
    r = run_cli("contain", str(tmp_path / "top.png"), str(tmp_path / "bottom.png"), "-o", str(tmp_path / "o.png"))
    assert r.returncode == 2 and "not look like an edit of ORIGINAL" in r.stderr and "levels" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "o.png").exists()
