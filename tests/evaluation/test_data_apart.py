"""`lasso eval` never writes over what it reads, and one unusable path is one sample's error: -o
holding the dataset (or any file it names, or another editor's outputs) is refused before any work;
a name too long for the file system is that sample's error; a PIE-Bench `annotation_images` linked
out of the dataset's folder is read from nowhere; a dataset's text never breaks summary.md's table."""

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from ..helpers import run_cli, scene

NEVER = "Lasso never overwrites its input: choose another output folder (-o)"


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene(64, 64)).save(path)
    return path


def _manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- C1: -o may not hold anything read
@pytest.mark.parametrize("out", [".", "outputs"], ids=["the dataset folder", "the folder of an image"])
def test_eval_refuses_an_output_folder_holding_its_dataset_before_any_work(tmp_path, out):
    ds = tmp_path / "ow"
    _png(ds / "outputs" / "x.png")
    _png(ds / "keep.png")
    _manifest(
        ds / "samples.jsonl",
        [
            {"image": "outputs/x.png", "instruction": "make the sky blue", "id": "x"},
            {"image": "keep.png", "instruction": "make the sky blue", "id": "y"},
        ],
    )
    before = _snapshot(ds)
    r = run_cli("eval", str(ds / "samples.jsonl"), "-o", str(ds / out), "--preset", "tiny", "-q")
    assert r.returncode == 2, r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and NEVER in lines[0] and "lies inside the output folder" in lines[0], r.stderr
    assert _snapshot(ds) == before  # nothing written, nothing replaced


def test_eval_refuses_an_output_folder_holding_another_editors_outputs(tmp_path):
    ds = tmp_path / "ds"
    _png(ds / "a.png")
    _manifest(ds / "m.jsonl", [{"image": "a.png", "instruction": "make the disc green", "id": "a"}])
    theirs = _png(tmp_path / "report" / "outputs" / "a.png")  # a previous report's outputs, scored again
    before = theirs.read_bytes()
    r = run_cli(
        "eval",
        str(ds / "m.jsonl"),
        "-o",
        str(tmp_path / "report"),
        "--preset",
        "tiny",
        "--outputs",
        str(theirs.parent),
        "-q",
    )
    assert r.returncode == 2 and NEVER in r.stderr and str(theirs) in r.stderr, r.stderr
    assert theirs.read_bytes() == before


def test_every_file_a_dataset_names_is_checked_against_the_output_folder(tmp_path):
    from lasso_edit.core.errors import InvalidInputError
    from lasso_edit.evaluation.data import check_apart, load_chains
    from lasso_edit.evaluation.run import written

    ds = tmp_path / "ds"
    for name in ("a.png", "sub/t.png", "sub/m.png", "bad/only.png"):
        _png(ds / name)
    rows = [
        {"image": "a.png", "instruction": "x", "target": "sub/t.png", "mask": "sub/m.png", "id": "a"},
        {"image": "bad/only.png", "instruction": ""},
    ]  # a refused row still names its file
    reads: list[Path] = []
    chains = load_chains(_manifest(ds / "m.jsonl", rows), keep_going=True, reads=reads)
    assert chains[1][1][0].error  # the second row is refused, its file counted all the same
    for out, clash in ((ds, "m.jsonl"), (ds / "sub", "sub"), (ds / "bad", "only.png")):
        with pytest.raises(InvalidInputError, match=re.escape(NEVER)) as e:
            check_apart(out, reads)
        assert clash in str(e.value)
    check_apart(ds / "report", reads, written(ds / "report", ["a"]))  # -o inside the dataset's folder: fine
    check_apart(tmp_path / "new" / "report", reads)  # not there yet: nothing inside it
    (tmp_path / "rep").mkdir()
    (tmp_path / "rep" / "outputs").symlink_to(ds / "sub")  # a link in -o: saving would write through it
    (ds / "sub" / "a.png").symlink_to(ds / "a.png")
    with pytest.raises(InvalidInputError, match="would overwrite the input"):
        check_apart(tmp_path / "rep", reads, written(tmp_path / "rep", ["a"]))
    linked = tmp_path / "linked"
    linked.symlink_to(ds)  # -o names the dataset's folder by another path
    with pytest.raises(InvalidInputError, match="lies inside"):
        check_apart(linked, reads)


def test_a_pie_bench_mapping_file_and_its_images_are_what_the_run_reads(tmp_path):
    from lasso_edit.core.errors import InvalidInputError
    from lasso_edit.evaluation.data import check_apart, load_chains

    root = tmp_path / "pie"
    _png(root / "annotation_images" / "0" / "a.png")
    _png(root / "annotation_images" / "1" / "b.png")
    item = {"editing_prompt": "a [green] disc", "editing_type_id": "0"}
    mapping = {
        "k": item | {"image_path": "0/a.png", "mask": [0, 5]},
        "bad": item | {"image_path": "1/b.png", "mask": 7},
    }
    (root / "mapping_file.json").write_text(json.dumps(mapping))
    reads: list[Path] = []
    load_chains(root, keep_going=True, reads=reads)
    images = root / "annotation_images"
    assert {root / "mapping_file.json", images / "0" / "a.png", images / "1" / "b.png"} <= set(reads)
    with pytest.raises(InvalidInputError, match="b.png lies inside"):  # a refused row's image too
        check_apart(images / "1", reads)


# ------------------------------------------------------------- M1: a path the file system refuses
LONG = {"a name past NAME_MAX": "x" * 300 + ".png", "a path past PATH_MAX": "d/" * 2100 + "a.png"}


@pytest.mark.parametrize("name", LONG.values(), ids=LONG.keys())
def test_a_name_too_long_is_that_samples_error(tmp_path, name):
    from lasso_edit.evaluation.data import StoredOutputs, load_chains, samples

    _png(tmp_path / "a.png")
    rows = [
        {"image": name, "instruction": "x", "id": "long"},
        {"image": "a.png", "instruction": "x", "id": "ok"},
        {"image": "a.png", "target": name, "instruction": "x", "id": "long-target"},
    ]
    items = samples(load_chains(_manifest(tmp_path / "m.jsonl", rows), keep_going=True))
    errors = {s.id: s.error for s in items}
    assert errors["ok"] is None
    for key in ("long", "long-target"):
        assert errors[key] and "cannot reach" in errors[key], errors

    (tmp_path / "pie" / "annotation_images").mkdir(parents=True)
    (tmp_path / "pie" / "mapping_file.json").write_text(
        json.dumps({"k": {"image_path": name, "editing_prompt": "p", "mask": [0, 5]}})
    )
    (chain,) = load_chains(tmp_path / "pie", keep_going=True)
    assert "cannot reach" in (chain[1][0].error or "")

    (tmp_path / "outs").mkdir()
    assert StoredOutputs(tmp_path / "outs").find(items[1], name.removesuffix(".png")) is None  # not found, no crash


def test_eval_goes_on_past_a_name_too_long_with_its_report_inside_the_dataset_folder(tmp_path, tiny_dir):
    ds = tmp_path / "ds"
    _png(ds / "a.png")
    _manifest(
        ds / "m.jsonl",
        [
            {"image": "x" * 300 + ".png", "instruction": "remove the red disc", "id": "long"},
            {"image": "a.png", "instruction": "remove the red disc", "id": "ok"},
        ],
    )
    r = run_cli("eval", str(ds / "m.jsonl"), "-o", str(ds / "report"), "--preset", "tiny", "--steps", "2", "-q")
    assert r.returncode == 0, r.stderr + r.stdout  # -o inside the dataset's folder: nothing read is in it
    assert "1 sample failed" in r.stdout
    records = {rec["id"]: rec for rec in map(json.loads, (ds / "report" / "samples.jsonl").read_text().splitlines())}
    assert "cannot reach" in records["long"]["error"] and records["ok"]["error"] is None


# ------------------------------------------------ M2: a linked annotation_images pointing out
def test_a_pie_bench_annotation_images_linked_out_of_the_dataset_is_refused(tmp_path):
    from lasso_edit.evaluation.data import load_chains

    _png(tmp_path / "elsewhere" / "0" / "secret.png")
    item = {"image_path": "0/secret.png", "editing_prompt": "p", "mask": [0, 5]}
    out = tmp_path / "pie2"
    out.mkdir()
    (out / "annotation_images").symlink_to(tmp_path / "elsewhere")
    (out / "mapping_file.json").write_text(json.dumps({"k": item}))
    (chain,) = load_chains(out, keep_going=True)
    assert chain[1][0].source is None and "outside its folder" in (chain[1][0].error or "")

    inner = tmp_path / "pie3"  # a link that stays inside the dataset's folder is read as ever
    _png(inner / "images" / "0" / "secret.png")
    (inner / "annotation_images").symlink_to(inner / "images")
    (inner / "mapping_file.json").write_text(json.dumps({"k": item}))
    (chain,) = load_chains(inner, keep_going=True)
    assert chain[1][0].error is None and chain[1][0].source.size == (64, 64)


# ------------------------------------------------------- minor: summary.md's table holds any text
def test_a_dataset_string_never_breaks_summary_mds_tables():
    from lasso_edit.evaluation.report import _markdown

    kind = "1|2\n| 3 \\|"
    summary = {
        "samples": 1,
        "not_found_rate": 0.0,
        "errors": 0,
        "seconds_per_edit": None,
        "seconds_per_edit_median": None,
        "by_kind": {kind: {"samples": 1}},
    }
    meta = {"data": "d|x\ny", "turns": "single", "preset": "tiny", "editor": "the outputs in a|b"}
    text = _markdown(summary, meta, [])
    rows = [line for line in text.splitlines() if line.startswith("|")]
    unescaped = re.compile(r"(?<!\\)(?:\\\\)*\|")  # a '|' after an even number of backslashes
    assert {len(unescaped.findall(line)) for line in rows[:2]} == {4}  # the metric table: 3 columns
    kinds = [line for line in rows if line.startswith("| type") or "1\\|2" in line]
    assert len(kinds) == 2 and len({len(unescaped.findall(line)) for line in kinds}) == 1, kinds
    assert text.startswith("# Lasso eval: d|x\\ny")  # one line


def test_a_link_inside_the_output_folder_is_never_written_through(tmp_path, tiny_dir):
    """A link already in -o (outputs/a.png -> a file outside; images -> a folder outside): the run
    replaces a linked file and refuses a linked folder; nothing outside -o is written."""
    import json as _json

    from PIL import Image as _Image

    from ..helpers import run_cli, scene

    _Image.fromarray(scene()).save(tmp_path / "a.png")
    (tmp_path / "m.jsonl").write_text(_json.dumps({"image": "a.png", "instruction": "make the disc green", "id": "a"}))
    precious = tmp_path / "precious.png"
    precious.write_bytes(b"keep me")
    out = tmp_path / "o"
    (out / "outputs").mkdir(parents=True)
    (out / "outputs" / "a.png").symlink_to(precious)
    r = run_cli("eval", str(tmp_path / "m.jsonl"), "-o", str(out), "--preset", "tiny", "--steps", "2", "-q")
    assert r.returncode == 0, r.stderr
    assert precious.read_bytes() == b"keep me" and not (out / "outputs" / "a.png").is_symlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out2 = tmp_path / "o2"
    out2.mkdir()
    (out2 / "images").symlink_to(elsewhere, target_is_directory=True)
    r = run_cli("eval", str(tmp_path / "m.jsonl"), "-o", str(out2), "--preset", "tiny", "--steps", "2", "-q")
    assert r.returncode == 2 and "is a link" in r.stderr and list(elsewhere.iterdir()) == [], r.stderr


def test_a_metric_whose_values_all_but_agree_still_gets_its_plot(tmp_path):
    """clip_i of 1 - 2e-16 and 1 + 2e-16: matplotlib cannot make 20 bins of that range; the report
    is written all the same."""
    from lasso_edit.evaluation.report import _plots

    (tmp_path / "plots").mkdir()
    records = [{"clip_i": 0.9999999999999998}, {"clip_i": 1.0000000000000002}]
    assert _plots(tmp_path, records) and (tmp_path / "plots" / "metrics.png").is_file()
