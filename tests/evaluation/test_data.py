"""`lasso eval` on hostile dataset files (issue 28): whatever a PIE-Bench mapping file or a JSONL
manifest says, every file the run writes stays inside -o, no image is read from outside the dataset's
folder, and a bad sample is that sample's error in samples.jsonl, counted and listed, never the end of
the run."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ..helpers import run_cli, scene

SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _files(root: Path) -> set[Path]:
    """Every file and link under root (links not followed: a link is a file here)."""
    found = set()
    for folder, dirs, files in os.walk(root):
        found |= {Path(folder) / f for f in files} | {Path(folder) / d for d in dirs if (Path(folder) / d).is_symlink()}
    return found


def _run_and_check_nothing_escapes(tmp_path: Path, *args: str):
    """Run `lasso eval ... -o tmp_path/work/report`; every file it creates under tmp_path must be
    inside the report folder. Returns the run and the report folder's records."""
    out = tmp_path / "work" / "report"
    before = _files(tmp_path)
    r = run_cli("eval", *args, "-o", str(out), "--preset", "tiny", "--steps", "2", "-q")
    assert r.returncode == 0, r.stderr + r.stdout
    created = _files(tmp_path) - before
    outside = sorted(str(p) for p in created if not p.resolve().is_relative_to(out.resolve()))
    assert not outside, outside
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    for rec in records:  # each named safely and apart from the others, the original id beside it
        assert SAFE.fullmatch(rec["name"]) and len(rec["name"]) <= 110, rec["name"]
    assert len({rec["name"].casefold() for rec in records}) == len(records)
    for name in os.listdir(out / "outputs"):
        assert SAFE.fullmatch(name), name
    return r, out, records


def _pie(root: Path, items: dict) -> Path:
    (root / "annotation_images" / "0_random").mkdir(parents=True)
    (root / "mapping_file.json").write_text(json.dumps(items))
    return root


def _item(image_path, **more) -> dict:
    """A PIE-Bench entry, its mask one run (a block of rows of the 512x512 frame); `more` overrides."""
    return {
        "image_path": image_path,
        "original_prompt": "a red disc on grey",
        "editing_prompt": "a [green] disc",
        "editing_instruction": "make the disc green",
        "editing_type_id": "0",
        "blended_word": "disc",
        "mask": [512 * 100, 512 * 50],
        **more,
    }


def _scene_jpg(path: Path, side: int = 64) -> Path:
    Image.fromarray(scene(side, side)).save(path, quality=95)
    return path


# --------------------------------------------------------------------- 1. nothing is written outside -o
def test_hostile_pie_bench_ids_and_image_paths_never_reach_outside(tmp_path, tiny_dir):
    root = tmp_path / "data" / "PIE"
    images = root / "annotation_images"
    secret = _scene_jpg(tmp_path / "secret.jpg")  # beside the dataset, not in it
    keys = {
        "../../../escape": "0_random/a.jpg",  # out/outputs/../../../escape.png is tmp_path/escape.png
        str(tmp_path / "absolute"): "0_random/a.jpg",
        "a/b": "0_random/a.jpg",  # a/b and a_b are one safe name: made unique
        "a_b": "0_random/a.jpg",
        "A_B": "0_random/a.jpg",  # and apart from a_b where case does not count (macOS)
        "x" * 400: "0_random/a.jpg",  # past NAME_MAX
        "nul\x00and\nnewline": "0_random/a.jpg",
        "reads-an-absolute-path": str(secret),
        "reads-through-dotdot": "../../../secret.jpg",
        "reads-through-a-link": "0_random/link.jpg",
    }
    _pie(root, {k: _item(v) for k, v in keys.items()})
    _scene_jpg(images / "0_random" / "a.jpg")
    (images / "0_random" / "link.jpg").symlink_to(secret)
    r, out, records = _run_and_check_nothing_escapes(tmp_path, str(root))
    by_id = {rec["id"]: rec for rec in records}
    assert set(by_id) == set(keys)  # the original ids, recorded beside the safe names
    assert by_id["../../../escape"]["name"] == "escape"
    assert by_id["a/b"]["name"] == "a_b" and by_id["a_b"]["name"] == "a_b-2" and by_id["A_B"]["name"] == "A_B-3"
    assert by_id["x" * 400]["name"].startswith("x" * 50) and len(by_id["x" * 400]["name"]) <= 100
    for key in ("reads-an-absolute-path", "reads-through-dotdot", "reads-through-a-link"):
        assert "outside" in by_id[key]["error"], by_id[key]
        assert "pictures" not in by_id[key]  # nothing read, nothing shown
    done = [rec for rec in records if not rec["error"]]
    assert len(done) == 7
    for rec in done:
        assert (out / "outputs" / f"{rec['name']}.png").is_file()
        assert all((out / "images" / pic).is_file() for pic in rec["pictures"].values())
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary["errors"] == 3 and "3 samples failed" in r.stdout
    assert "reads-through-a-link" in (out / "summary.md").read_text()


# --------------------------------------------------------------- 2. a bad sample is its own error
BAD_MASKS = {
    "floats": [1.5, 2],
    "strings": ["0", 3],
    "a bare number": 7,
    "null": None,
    "nested": [[0, 5]],
    "deeply nested": json.loads("[" * 500 + "]" * 500),
    "a string": "0 5",
    "an object": {"start": 0},
    "booleans": [True, 5],
    "odd count": [0, 5, 9],  # these three were refused before: still the sample's error
    "negative": [-1, 5],
    "past the frame": [512 * 512, 5],
}


@pytest.mark.parametrize("mask", BAD_MASKS.values(), ids=BAD_MASKS.keys())
def test_a_bad_run_length_mask_is_refused_as_invalid_input(mask):
    from lasso_edit.core.errors import InvalidInputError
    from lasso_edit.evaluation.data import pie_mask

    with pytest.raises(InvalidInputError, match="PIE-Bench mask"):
        pie_mask(mask)


def test_each_bad_pie_bench_sample_is_recorded_and_the_run_goes_on(tmp_path, tiny_dir):
    root = tmp_path / "PIE"
    items = {f"mask {k}": _item("0_random/a.jpg") | {"mask": v} for k, v in BAD_MASKS.items()}
    items |= {
        "undecodable": _item("0_random/garbage.jpg"),
        "truncated": _item("0_random/truncated.jpg"),
        "not an object": 5,
        "no mask": {"image_path": "0_random/a.jpg", "editing_prompt": "a disc"},
        "image_path a list": _item(["0_random/a.jpg"]),
        "instruction an object": _item("0_random/a.jpg", editing_instruction={"x": 1}),
        "missing image": _item("0_random/none.jpg"),
        "good": _item("0_random/a.jpg"),
    }
    _pie(root, items)
    _scene_jpg(root / "annotation_images" / "0_random" / "a.jpg")
    (root / "annotation_images" / "0_random" / "garbage.jpg").write_bytes(b"this is not a picture" * 10)
    whole = (root / "annotation_images" / "0_random" / "a.jpg").read_bytes()
    (root / "annotation_images" / "0_random" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    r, out, records = _run_and_check_nothing_escapes(tmp_path, str(root))
    by_id = {rec["id"]: rec for rec in records}
    assert list(by_id) == list(items)  # every sample recorded, in order
    good = by_id["good"]  # edited and shown (its 64 px picture is not on the 512 px frame: no PSNR)
    assert (good["error"] is None or good["not_found"]) and good["mask_iou"] is not None and good["pictures"]
    failed = [k for k in items if k != "good"]
    for key in failed:
        assert by_id[key]["error"], key
        assert all(by_id[key][m] is None for m in ("psnr_outside", "clip_whole", "mask_iou")), key
    assert "PIE-Bench mask" in by_id["mask floats"]["error"]
    assert "corrupt or truncated" in by_id["truncated"]["error"]
    assert "not an image" in by_id["undecodable"]["error"]
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary["samples"] == len(items) and summary["errors"] == len(failed)
    assert f"{len(failed)} samples failed" in r.stdout
    md = (out / "summary.md").read_text()
    assert all(json.dumps(k) in md for k in failed)  # listed, with their errors
    page = (out / "index.html").read_text()
    assert page.count("class='sample'") == len(items) and "samples failed" in page


def test_stored_outputs_truncated_or_undecodable_are_that_samples_error(tmp_path, tiny_dir):
    root = tmp_path / os.fsdecode(b"PIE-\xff")  # a folder name that is not UTF-8 (Linux allows it): in the report
    _pie(
        root,
        {
            "good": _item("0_random/a.jpg"),
            "truncated": _item("0_random/b.jpg"),
            "garbage": _item("0_random/c.jpg"),
            "../../../x": _item("0_random/d.jpg"),
        },
    )
    theirs = tmp_path / "theirs" / "0_random"
    theirs.mkdir(parents=True)
    for n in "abcd":
        _scene_jpg(root / "annotation_images" / "0_random" / f"{n}.jpg", side=512)  # on the mask's frame
        Image.fromarray(np.asarray(Image.open(root / "annotation_images" / "0_random" / f"{n}.jpg"))).save(
            theirs / f"{n}.png"
        )
    whole = (theirs / "b.png").read_bytes()
    (theirs / "b.png").write_bytes(whole[: len(whole) // 2])
    (theirs / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"nonsense" * 20)
    r, out, records = _run_and_check_nothing_escapes(tmp_path, str(root), "--outputs", str(tmp_path / "theirs"))
    by_id = {rec["id"]: rec for rec in records}
    assert by_id["good"]["error"] is None and by_id["good"]["changed_outside"] == 0
    assert by_id["../../../x"]["error"] is None and by_id["../../../x"]["name"] == "x"
    assert "corrupt or truncated" in by_id["truncated"]["error"] and by_id["garbage"]["error"]
    assert "2 samples failed" in r.stdout


# ---------------------------------------------------------------------- 3. a hostile JSONL manifest
def test_a_hostile_jsonl_manifest_is_read_row_by_row(tmp_path, tiny_dir):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(scene(64, 64)).save(data / "a.png")
    Image.fromarray(scene(64, 64)).save(tmp_path / "outside.png")
    ok = {"image": "a.png", "instruction": "make the disc green"}
    rows = [
        json.dumps(ok | {"id": "../../../m"}),  # edited, and saved as m.png inside -o
        json.dumps(ok | {"id": "$\\notacommand{$", "target": "a.png"}),  # mathtext, were it a plot's label
        json.dumps([1, 2]),  # not an object
        json.dumps("a string"),
        "null",
        "{not json",
        "[" * 100_000 + "]" * 100_000,  # deeper than Python's parser goes
        json.dumps(ok | {"id": ["a", "list"]}),
        json.dumps(ok | {"id": {"an": "object"}}),
        json.dumps(ok | {"id": True}),
        json.dumps(ok | {"id": 17}),  # a whole number is an id as good as a string
        json.dumps(ok | {"id": "z" * 150 + "\ud800"}),  # a lone surrogate, past the length cap
        json.dumps(ok | {"id": "line\nbreak\x00nul"}),
        json.dumps(ok | {"id": "abs", "image": str(tmp_path / "outside.png")}),
        json.dumps(ok | {"id": "dotdot", "image": "../outside.png"}),
        json.dumps(ok | {"id": "target-out", "target": "../outside.png"}),
        json.dumps(ok | {"id": "image-list", "image": ["a.png"]}),
        json.dumps(ok | {"id": "turn-text", "turn": "first"}),
        json.dumps(ok | {"id": "caption-number", "caption": 5}),
        json.dumps(ok | {"id": "instruction-number", "instruction": 5}),
        json.dumps(ok | {"id": "image-no-bytes", "image": {"bytes": "text"}}),
        json.dumps(ok | {"id": "surrogate-instruction", "instruction": "make the disc green \ud800"}),
        json.dumps(ok | {"id": "not-utf8", "instruction": "caf\u00e9"}).replace("\\u00e9", "\udce9"),
        json.dumps(ok | {"id": "u2028", "instruction": "make the disc\u2028green"}, ensure_ascii=False),
    ]
    (data / "m.jsonl").write_bytes(("\n".join(rows) + "\n").encode("utf-8", "surrogateescape"))  # one not UTF-8
    r, out, records = _run_and_check_nothing_escapes(tmp_path, str(data / "m.jsonl"))
    assert len(records) == len(rows)
    by_id = {rec["id"]: rec for rec in records}
    assert by_id["../../../m"]["name"] == "m" and (out / "outputs" / "m.png").is_file()
    assert by_id["17"]["error"] is None or by_id["17"]["not_found"]
    assert by_id["line\nbreak\x00nul"]["name"] == "line_break_nul"
    assert by_id["z" * 150 + "\ud800"]["name"].startswith("z" * 50)
    assert by_id["$\\notacommand{$"]["l1"] is not None and (out / "plots" / "worst.png").is_file()
    for n in (3, 4, 5, 6, 7, 8, 9, 10):  # the rows without a usable id are named by their line
        assert by_id[f"line-{n}"]["error"], n
    for key in ("abs", "dotdot", "target-out"):
        assert "outside" in by_id[key]["error"], by_id[key]
    for key in ("image-list", "turn-text", "caption-number", "instruction-number", "image-no-bytes"):
        assert by_id[key]["error"], key
    assert by_id["surrogate-instruction"]["error"]  # the tokenizer's TypeError: not Lasso's error, still the sample's
    assert "not a line of JSON" in by_id[f"line-{len(rows) - 1}"]["error"]  # the line that is not UTF-8
    assert by_id["u2028"]["instructions"] == ["make the disc\u2028green"]  # one line, not two
    summary = json.loads((out / "summary.json").read_text())["summary"]
    assert summary["errors"] == sum(1 for rec in records if rec["error"] and not rec["not_found"]) >= 15
    assert "index.html" in r.stdout and (out / "index.html").is_file()


def test_output_names_are_safe_unique_and_capped():
    from lasso_edit.evaluation.data import Sample, output_names

    ids = ["../../../x", "/etc/passwd", "a/b", "a_b", "A_B", "y" * 300, "", ".", "..", "\x00", "z" * 200 + "\ud800"]
    names = output_names([Sample(i, []) for i in ids])
    assert names[:5] == ["x", "etc_passwd", "a_b", "a_b-2", "A_B-3"]
    assert all(SAFE.fullmatch(n) and len(n) <= 100 for n in names), names
    assert len({n.casefold() for n in names}) == len(names)
