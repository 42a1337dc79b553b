"""`lasso verify` names the drift: a line after the counts, a `drift` key in --json, exit 6 for a
pair of different sizes; nothing more for a clean pair. On examples/coffee.png."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..helpers import run_cli, save

COFFEE = Path(__file__).resolve().parents[2] / "examples" / "coffee.png"


def _files(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    orig = np.asarray(Image.open(COFFEE).convert("RGB")).copy()
    mask = np.zeros((400, 600), np.uint8)
    mask[100:250, 300:500] = 255
    edited = orig.copy()
    edited[120:230, 320:480] = (40, 170, 90)
    return save(orig, tmp_path / "before.png"), save(mask, tmp_path / "mask.png"), edited


def test_a_clean_pair_exits_0_with_no_drift_line(tmp_path: Path) -> None:
    before, mask, edited = _files(tmp_path)
    after = save(edited, tmp_path / "after.png")
    r = run_cli("verify", str(before), str(after), "--mask", str(mask))
    assert r.returncode == 0 and "drift:" not in r.stdout
    r = run_cli("verify", str(before), str(after), "--mask", str(mask), "--json")
    got = json.loads(r.stdout)
    assert r.returncode == 0 and got["drift"] is None and got["comparable"] is True


def test_a_zoomed_answer_says_shift_or_zoom_in_a_line_and_in_json(tmp_path: Path) -> None:
    before, mask, edited = _files(tmp_path)
    m = cv2.getRotationMatrix2D((299.5, 199.5), 0.0, 1.03)
    m[:, 2] += (2.4, -1.7)
    after = save(
        cv2.warpAffine(edited, m, (600, 400), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT),
        tmp_path / "after.png",
    )
    r = run_cli("verify", str(before), str(after), "--mask", str(mask))
    assert r.returncode == 6
    lines = r.stdout.splitlines()
    assert lines[-1].startswith("drift: a whole-picture shift or zoom: scale 1.03")
    r = run_cli("verify", str(before), str(after), "--mask", str(mask), "--json")
    got = json.loads(r.stdout)["drift"]
    assert r.returncode == 6 and got["kinds"][0] == "shift_or_zoom" and abs(got["alignment"]["scale"] - 1.03) < 0.005
    assert got["colour"] is None and got["text"].startswith("a whole-picture shift or zoom")


def test_a_pair_of_different_sizes_is_exit_6_with_the_diagnosis_and_null_counts(tmp_path: Path) -> None:
    before, mask, edited = _files(tmp_path)
    after = save(cv2.resize(edited, (1024, 1024), interpolation=cv2.INTER_CUBIC), tmp_path / "after.png")
    r = run_cli("verify", str(before), str(after), "--mask", str(mask))
    assert r.returncode == 6 and "cannot be compared one for one" in r.stdout
    assert "drift: another size (AFTER 1024x1024, BEFORE 600x400)" in r.stdout
    r = run_cli("verify", str(before), str(after), "--mask", str(mask), "--json")
    got = json.loads(r.stdout)
    assert r.returncode == 6 and got["comparable"] is False and got["identical_outside"] is False
    assert got["changed_outside"] is None and got["psnr_outside"] is None
    assert (got["width"], got["height"], got["after_width"], got["after_height"]) == (600, 400, 1024, 1024)
    assert got["drift"]["kinds"] == ["shift_or_zoom"] and got["drift"]["alignment"]["edited_size"] == [1024, 1024]


def test_an_unrelated_picture_at_another_size_is_exit_6_content_and_unreadable_is_2(tmp_path: Path) -> None:
    before, mask, edited = _files(tmp_path)
    other = save(cv2.resize(np.ascontiguousarray(edited[::-1, ::-1]), (512, 512)), tmp_path / "other.png")
    r = run_cli("verify", str(before), str(other), "--json")
    got = json.loads(r.stdout)
    assert r.returncode == 6 and got["drift"]["kinds"] == ["content"]
    assert "does not look like BEFORE" in got["drift"]["text"]
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    r = run_cli("verify", str(before), str(junk))
    assert r.returncode == 2 and "Traceback" not in r.stderr
