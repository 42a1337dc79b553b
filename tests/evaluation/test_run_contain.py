"""`lasso eval --outputs DIR --contain`: another editor's drifted outputs (zoomed, turned, shifted,
recoloured, another size, JPEG-encoded, with an edit inside the mask) scored as given and after
`lasso contain`, side by side, on a PIE-Bench-style folder built from the repository's photo."""

from __future__ import annotations

import json

import cv2
import numpy as np
from PIL import Image

from ..helpers import run_cli
from ..imaging.test_align import coffee, drift, painted

SIDE = 512  # PIE-Bench's frame


def _rle(mask: np.ndarray) -> list[int]:
    """(start, length) runs of a bool mask over the row-major flattened frame, as PIE-Bench stores its masks."""
    flat = np.concatenate([[0], mask.ravel().astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat))
    return [int(v) for start, end in zip(edges[::2], edges[1::2]) for v in (start, end - start)]


def _dataset(tmp_path):
    """A PIE-Bench folder of three samples and another editor's outputs for them: "same" drifted at
    the input's size, "bigger" drifted to 1024x1024, "other" a picture that is no edit of its input.
    Returns (dataset folder, outputs folder, the input's pixels, the edit mask)."""
    photo = np.asarray(Image.fromarray(coffee()).resize((SIDE, SIDE), Image.Resampling.LANCZOS)).copy()
    truth = painted(photo)
    changed = np.any(truth != photo, axis=2)
    mask = cv2.dilate(changed.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    root, theirs = tmp_path / "PIE-Bench_v1", tmp_path / "hosted-editor"
    (root / "annotation_images" / "1_change_object_80").mkdir(parents=True)
    (theirs / "1_change_object_80").mkdir(parents=True)
    mapping = {}
    answers = {
        "same": drift(truth)[0],
        "bigger": drift(truth, size=(1024, 1024))[0],
        "other": np.ascontiguousarray(np.rot90(photo, 2)),  # the picture upside down: not an edit of it
    }
    for key, answer in answers.items():
        path = f"1_change_object_80/{key}.png"  # lossless: the input's pixels are the ones compared
        Image.fromarray(photo).save(root / "annotation_images" / path)
        Image.fromarray(answer).save(theirs / path)
        mapping[key] = {
            "image_path": path,
            "original_prompt": "a cup of coffee",
            "editing_prompt": "a [green] cup",
            "editing_instruction": "paint the cup green",
            "editing_type_id": "1",
            "mask": _rle(mask),
        }
    (root / "mapping_file.json").write_text(json.dumps(mapping))
    return root, theirs, photo, mask


def test_contain_scores_the_outputs_as_given_and_contained_side_by_side(tmp_path, tiny_dir):
    root, theirs, photo, mask = _dataset(tmp_path)
    report = tmp_path / "report"
    r = run_cli("eval", str(root), "-o", str(report), "--preset", "tiny", "--outputs", str(theirs), "--contain", "-q")
    assert r.returncode == 0, r.stderr
    assert "as given: PSNR outside" in r.stdout and "contained: PSNR outside" in r.stdout, r.stdout
    recs = {rec["id"]: rec for rec in map(json.loads, (report / "samples.jsonl").read_text().splitlines())}
    same, bigger, other = recs["same"], recs["bigger"], recs["other"]
    # As given, the drift changed nearly every pixel outside the mask; contained, not one.
    assert same["psnr_outside"] < 30 and same["changed_outside"] > 0.5 * (~mask).sum()
    assert same["contained"]["changed_outside"] == 0 and same["contained"]["psnr_outside"] is None  # infinite
    assert same["contained"]["ssim_outside"] > same["ssim_outside"] and same["contained"]["ssim_outside"] == 1
    assert same["contained"]["lpips_outside"] < same["lpips_outside"]
    assert same["contained"]["clip_edited"] is not None and same["contained"]["mse_outside"] == 0
    for rec in (same, bigger):  # the files in contained/: the input's pixels, bit for bit, outside the mask
        out = np.asarray(Image.open(report / "contained" / f"{rec['name']}.png").convert("RGB"))
        assert (out[~mask] == photo[~mask]).all() and (out[mask] != photo[mask]).any()
        c = rec["contained"]
        assert abs(c["alignment"]["scale"] - 1.03) < 0.01 and abs(c["alignment"]["rotation"] - 0.5) < 0.1
        assert set(c["colour"]) == {"gain", "offset"} and c["region_from"] == "mask"
        assert (report / "images" / rec["pictures"]["contained"]).exists()
    assert bigger["output_size"] == [1024, 1024] and bigger["psnr_outside"] is None and bigger["error"] is None
    assert bigger["contained"]["alignment"]["edited_size"] == [1024, 1024]
    assert bigger["contained"]["changed_outside"] == 0
    # Not an edit of its input: recorded with the reason and counted, not a crash.
    assert other["error"] is None and other["psnr_outside"] is not None
    assert "not look like an edit of ORIGINAL" in other["contained"]["error"]
    assert not (report / "contained" / f"{other['name']}.png").exists()
    summary = json.loads((report / "summary.json").read_text())["summary"]
    assert summary["contained"]["not_contained"] == 1 and summary["contained"]["samples"] == 3
    assert summary["contained"]["identical_outside_rate"] == 1.0 and summary["identical_outside_rate"] == 0.0
    assert summary["other_size"] == 1
    md = (report / "summary.md").read_text()
    assert "| metric | the outputs in" in md and ", as given | samples | contained (lasso contain) | samples |" in md
    psnr = next(line for line in md.splitlines() if line.startswith("| psnr_outside |")).split("|")
    assert float(psnr[2]) < 30 and psnr[3].strip() == "2" and psnr[4].strip() == "∞ (identical)"
    assert "| identical outside the mask | 0.0% |  | 100.0% |  |" in md
    assert "Not contained (1):" in md and '- other (id "other"): ' in md
    assert "Per sample, as contained:" in md and "| same | 1.03" in md
    page = (report / "index.html").read_text()
    assert "contained (lasso contain)" in page and "Not contained (1)" in page and "rotation" in page


def test_contain_needs_outputs_and_is_refused_without(tmp_path):
    root, _, _, _ = _dataset(tmp_path)
    r = run_cli("eval", str(root), "-o", str(tmp_path / "report"), "--preset", "tiny", "--contain")
    assert r.returncode == 2 and "--contain" in r.stderr and "--outputs" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "report").exists()


def test_a_contained_output_is_never_written_over_an_input(tmp_path, tiny_dir):
    """The report folder's contained/ holds a link to the dataset's image: refused before any work."""
    root, theirs, _, _ = _dataset(tmp_path)
    report = tmp_path / "report"
    (report / "contained").mkdir(parents=True)
    (report / "contained" / "same.png").symlink_to(root / "annotation_images" / "1_change_object_80" / "same.png")
    r = run_cli("eval", str(root), "-o", str(report), "--preset", "tiny", "--outputs", str(theirs), "--contain", "-q")
    assert r.returncode == 2 and "would overwrite the input" in r.stderr, r.stderr
