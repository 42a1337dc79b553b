"""`lasso batch` and `Editor.batch` with the tiny models: bad items recorded and skipped, results.jsonl,
resume after an interrupt without redoing or half-writing anything."""

import json
import os
import signal
import subprocess
import sys

import pytest
from PIL import Image

from lasso_edit.batch import read_items
from lasso_edit.pipeline.many import BatchItem
from lasso_edit.core.errors import InvalidInputError

from .helpers import held_lasso, noise_image, run_cli, save, scene, until


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _folder(tmp_path, n=12, corrupt=True):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(n - (1 if corrupt else 0)):
        save(noise_image(48 + 4 * i, 64, seed=i), src / f"p{i:02d}.png")
    if corrupt:
        (src / "p99.png").write_bytes(b"\x89PNG but not really")
    return src


def test_twelve_items_one_corrupt_one_target_absent_give_ten_outputs_and_two_recorded_failures(tmp_path, tiny_dir):
    src = _folder(tmp_path)
    manifest = src / "jobs.jsonl"
    rows = [{"image": f"p{i:02d}.png", "instruction": "make it black and white"} for i in range(10)]
    rows.append({"image": "p10.png", "instruction": "remove the ball"})  # a detector that finds nothing
    rows.append({"image": "p99.png", "instruction": "make it black and white"})
    manifest.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "out"
    r = run_cli("batch", str(manifest), "-o", str(out), "--preset", "tiny", "--grounder", "detector",
                "--box-threshold", "1.0", "--seed", "1", "-q")
    assert r.returncode == 5, r.stderr
    assert "12 items: 10 edited, 2 failed" in r.stdout and "p99.png" in r.stderr
    recs = _lines(out / "results.jsonl")
    assert [x["id"] for x in recs] == [f"p{i:02d}" for i in range(11)] + ["p99"]  # one line each, input order
    failed = {x["id"]: x for x in recs if x["status"] == "failed"}
    assert failed["p10"]["error_kind"] == "TargetNotFoundError" and failed["p10"]["exit_code"] == 4
    assert failed["p99"]["error_kind"] == "UnreadableImageError" and failed["p99"]["exit_code"] == 2
    for x in recs:
        if x["status"] == "ok":
            got, given = Image.open(x["output"]), Image.open(x["image"])
            assert got.size == given.size and Image.open(x["mask"]).size == given.size
            assert x["seed"] == 1 and x["plan"]["edits"][0]["action"] == "adjust" and "total" in x["timings"]
    assert len(list(out.glob("*.png"))) == 10


def test_interrupted_batch_resumes_without_redoing_or_half_writing(tmp_path, tiny_dir, processes):
    # Deterministic whatever the machine's speed: the real `lasso` entry point in a real process,
    # its editor held before the fourth item (a wrapper this test starts it through), so the
    # SIGINT always lands with exactly three items edited and the fourth under way.
    src = _folder(tmp_path, corrupt=False)
    out = tmp_path / "out"
    args = ["batch", str(src), "-o", str(out), "-i", "remove the ball", "--preset", "tiny", "--seed", "2",
            "--steps", "2"]
    env = {**os.environ, "LASSO_TINY_DIR": str(tiny_dir), "HF_HUB_OFFLINE": "1"}
    lasso, marker = held_lasso(tmp_path, before_edit=4)
    proc = processes.start([*lasso, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    until(marker.exists, still=lambda: proc.poll() is None)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate()
    assert proc.returncode == 130 and "run the same command again" in err and "Traceback" not in err, err
    results = out / "results.jsonl"
    first = {x["id"]: x for x in _lines(results)}  # every finished file recorded, none other
    assert sorted(first) == ["p00", "p01", "p02"] and all(x["status"] == "ok" for x in first.values())
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]  # no half-written file
    assert sorted(p.name for p in out.glob("*.png")) == ["p00.png", "p01.png", "p02.png"]
    stamps = {i: os.stat(x["output"]).st_mtime_ns for i, x in first.items()}
    for x in first.values():
        Image.open(x["output"]).load()  # complete files

    r = run_cli(*args, "-q")
    assert r.returncode == 0, r.stderr
    assert "12 items: 9 edited, 3 skipped (done before)" in r.stdout
    final = _lines(results)
    assert len(final) == 12 and all(x["status"] == "ok" for x in final)
    assert all(os.stat(first[i]["output"]).st_mtime_ns == t for i, t in stamps.items())  # not redone
    r = run_cli(*args[:-2], "--steps", "3", "-q")  # other settings: a different key, so every item is redone
    assert r.returncode == 0 and "12 items: 12 edited" in r.stdout


def test_editor_batch_yields_each_item_in_order_errors_included(tiny_editor):
    items = [(scene(), "make the disc green"), (noise_image(40, 40), ""), (noise_image(30, 50), "remove the ball")]
    outs = list(tiny_editor.batch(items, seed=4, steps=2))
    assert [o.item.id for o in outs] == ["0", "1", "2"]
    assert outs[0].error is None and outs[0].result.seed == 4 and outs[0].result.image.size == (160, 120)
    assert isinstance(outs[1].error, InvalidInputError) and outs[1].result is None
    assert outs[2].error is None and outs[2].result.image.size == (50, 30)


def test_manifests_folders_and_their_errors(tmp_path):
    save(scene(), tmp_path / "a b.png")
    save(scene(), tmp_path / "sub.png")
    (tmp_path / "list.csv").write_text("image,instruction,id\na b.png,make it red,\nsub.png,,x/y\n")
    items = read_items(tmp_path / "list.csv", instruction="remove the car")
    assert [(i.id, i.instruction) for i in items] == [("a_b", "make it red"), ("x_y", "remove the car")]
    assert items[0].image == str(tmp_path / "a b.png")  # relative to the manifest
    (tmp_path / "twice.jsonl").write_text('{"image": "sub.png", "instruction": "x"}\n\n'
                                          '{"image": "sub.png", "instruction": "y"}\n')
    assert [i.id for i in read_items(tmp_path / "twice.jsonl")] == ["sub", "sub-2"]
    assert [i.id for i in read_items(tmp_path, instruction="blur it")] == ["a_b", "sub"]
    for name, text, words in (("bad.jsonl", '{"image": "a.png"', "line 1 is not JSON"),
                              ("none.jsonl", '{"image": "a.png"}', "no instruction"),
                              ("nohead.csv", "a.png,blur\n", "'image' column"),
                              ("empty.jsonl", "\n", "lists no images")):
        (tmp_path / name).write_text(text)
        with pytest.raises(InvalidInputError, match=words):
            read_items(tmp_path / name)
    with pytest.raises(InvalidInputError, match="needs --instruction"):
        read_items(tmp_path)
    with pytest.raises(InvalidInputError, match="no such folder or manifest"):
        read_items(tmp_path / "nowhere")


def test_batch_bad_input_is_exit_2_before_any_model_loads(tmp_path):
    r = run_cli("batch", str(tmp_path / "nowhere"), "-o", str(tmp_path / "o"), "-i", "blur it", "--preset", "tiny")
    assert r.returncode == 2 and "no such folder or manifest" in r.stderr
    (tmp_path / "o.txt").write_text("x")
    (tmp_path / "in").mkdir()
    save(scene(), tmp_path / "in" / "a.png")
    r = run_cli("batch", str(tmp_path / "in"), "-o", str(tmp_path / "o.txt"), "-i", "blur it", "--preset", "tiny")
    assert r.returncode == 2 and "is a file" in r.stderr
    r = run_cli("batch", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-i", "blur it", "--steps", "0")
    assert r.returncode == 2 and "steps" in r.stderr


def test_batch_item_ids_name_outputs(tmp_path):
    item = BatchItem(str(tmp_path / "x.jpg"), "blur it", "x")
    from lasso_edit.batch import BatchRunner

    runner = BatchRunner(None, tmp_path / "o", {})
    assert runner.output_for(item).name == "x.jpg" and runner.mask_for(item).name == "x.png"
    assert runner.output_for(BatchItem("y.gif", "blur", "y")).name == "y.png"  # formats not kept: PNG


def test_results_log_has_each_record_on_disk_as_it_comes_and_ends_compacted(tmp_path):
    """A kill (SIGKILL, a lost node) loses no finished item: each record is on disk before the next
    edit starts, not when the run ends; the end leaves one line per item in input order."""
    from lasso_edit.batch import ResultsLog

    items = [BatchItem(f"{i}.png", "x", f"i{i}") for i in range(3)]
    path = tmp_path / "results.jsonl"
    log = ResultsLog(path, items, before={"i0": {"id": "i0", "status": "failed"}})
    log.add({"id": "i2", "status": "ok"})
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["i2"]  # before close
    log.add({"id": "i1", "status": "ok", "skipped": True})  # already on disk from a previous run: no new line
    assert len(path.read_text().splitlines()) == 1
    log.close()
    assert [(x["id"], x["status"]) for x in _lines(path)] == [("i0", "failed"), ("i1", "ok"), ("i2", "ok")]
    assert all("skipped" not in x for x in _lines(path))


def _bytes_of(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_batch_into_its_own_input_folder_is_refused_and_no_input_changes(tmp_path, tiny_dir):
    """Issue 16 #1: `lasso batch DIR -o DIR` would write DIR/x.png over the input x.png."""
    src = _folder(tmp_path, n=3, corrupt=False)
    before = _bytes_of(src)
    r = run_cli("batch", str(src), "-o", str(src), "-i", "make it black and white", "--preset", "tiny", "-q")
    assert r.returncode == 2 and "would overwrite the input" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert _bytes_of(src) == before and not (src / "results.jsonl").exists()
    # a manifest image that sits in OUT under its own output name, and the manifest itself as results.jsonl
    out = tmp_path / "out"
    out.mkdir()
    save(scene(), out / "x.png")
    (tmp_path / "jobs.jsonl").write_text(json.dumps({"image": str(out / "x.png"), "instruction": "blur it"}))
    before = _bytes_of(out)
    r = run_cli("batch", str(tmp_path / "jobs.jsonl"), "-o", str(out), "--preset", "tiny", "-q")
    assert r.returncode == 2 and "would overwrite the input" in r.stderr and str(out / "x.png") in r.stderr
    assert _bytes_of(out) == before
    (out / "results.jsonl").write_text(json.dumps({"image": str(src / "p00.png"), "instruction": "blur it"}))
    r = run_cli("batch", str(out / "results.jsonl"), "-o", str(out), "--preset", "tiny", "-q")
    assert r.returncode == 2 and "would overwrite the input" in r.stderr and "results.jsonl" in r.stderr


def test_batch_ids_are_unique_by_construction_and_every_output_is_distinct(tmp_path, tiny_dir):
    """Issue 16 #3: cat.png, cat-2.png and cat.jpg gave the ids cat-2, cat, cat-2 and one edit was lost."""
    from lasso_edit.batch import BatchRunner, check_apart

    src = tmp_path / "in"
    src.mkdir()
    for name in ("cat.png", "cat-2.png", "cat.jpg", "Cat.bmp"):
        Image.fromarray(scene()).save(src / name)
    items = read_items(src, instruction="blur it")
    ids = [i.id for i in items]
    assert len({i.casefold() for i in ids}) == 4, ids
    runner = BatchRunner(None, tmp_path / "o", {})
    assert len({str(runner.output_for(i)).casefold() for i in items}) == 4
    assert len({str(runner.mask_for(i)).casefold() for i in items}) == 4
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in "ab":
        save(scene(), tmp_path / d / "x.png")
    rows = [{"image": "a/x.png", "instruction": "blur it"}, {"image": "b/x.png", "instruction": "blur it"},
            {"image": "a/x.png", "instruction": "blur it", "id": "x-2"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ids = [i.id for i in read_items(tmp_path / "m.jsonl")]
    assert ids[2] == "x-2" and len(set(ids)) == 3, ids
    out = tmp_path / "out"
    r = run_cli("batch", str(tmp_path / "m.jsonl"), "-o", str(out), "--preset", "tiny", "--seed", "1", "-q")
    assert r.returncode == 0 and "3 items: 3 edited" in r.stdout, r.stderr
    recs = _lines(out / "results.jsonl")
    assert len({x["output"] for x in recs}) == 3 and all(os.path.exists(x["output"]) for x in recs)
    # the last line of defence: two items that would still write one file are refused before any work
    clash = [BatchItem("a.png", "x", "a"), BatchItem("b.png", "x", "b")]
    with pytest.raises(InvalidInputError, match="two items would write"):
        check_apart(clash, {"a": [str(out / "same.png")], "b": [str(out / "SAME.png")]})


def test_a_long_manifest_id_names_a_file_the_disk_takes(tmp_path, tiny_dir):
    """Issue 16 #5: a 300-character id gave "File name too long"; two long ids stay distinct."""
    save(scene(), tmp_path / "a.png")
    rows = [{"image": "a.png", "instruction": "blur it", "id": "x" * 300 + tail} for tail in ("1", "2")]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ids = [i.id for i in read_items(tmp_path / "m.jsonl")]
    assert len(set(ids)) == 2 and all(len(i) <= 100 for i in ids)
    r = run_cli("batch", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "out"), "--preset", "tiny", "-q")
    assert r.returncode == 0 and "2 edited" in r.stdout, r.stderr


def test_a_results_jsonl_that_is_a_folder_or_not_utf8_is_said_or_read_around(tmp_path, tiny_dir):
    """Issue 16 #5: both gave exit 1 (an internal error)."""
    src = _folder(tmp_path, n=2, corrupt=False)
    out = tmp_path / "out"
    (out / "results.jsonl").mkdir(parents=True)
    r = run_cli("batch", str(src), "-o", str(out), "-i", "blur it", "--preset", "tiny", "-q")
    assert r.returncode == 2 and "results.jsonl is not a file" in r.stderr, r.stderr
    (out / "results.jsonl").rmdir()
    (out / "results.jsonl").write_bytes(b"\xff\xfe not utf-8 \x80\n")
    r = run_cli("batch", str(src), "-o", str(out), "-i", "blur it", "--preset", "tiny", "-q")
    assert r.returncode == 0 and "2 edited" in r.stdout, r.stderr
    assert [x["status"] for x in _lines(out / "results.jsonl")] == ["ok", "ok"]


def test_the_ray_batch_refuses_an_output_that_is_an_input_before_joining_a_cluster(tmp_path):
    from lasso_edit.scale.ray_batch import RayBatchRunner

    src = _folder(tmp_path, n=2, corrupt=False)
    items = read_items(src, instruction="blur it")
    with pytest.raises(InvalidInputError, match="would overwrite the input"):
        RayBatchRunner({"preset": "tiny"}, src, {}).check(items)
    RayBatchRunner({"preset": "tiny"}, tmp_path / "elsewhere", {}).check(items)  # apart: fine


def test_a_run_removes_what_a_killed_write_left_and_nothing_else(tmp_path, tiny_dir):
    """A process killed mid-write (SIGKILL, a lost Ray node) leaves `.NAME.xxxx.tmp`: the next run
    removes its own items' leftovers, never another file."""
    src = _folder(tmp_path, n=2, corrupt=False)
    out = tmp_path / "out"
    (out / "masks").mkdir(parents=True)
    left = [out / ".p00.png.k3j2.tmp", out / "masks" / ".p01.png.zz9.tmp"]
    other = [out / ".notes.txt.tmp", out / "keep.png", out / ".p00.png"]
    for p in left + other:
        p.write_bytes(b"x")
    r = run_cli("batch", str(src), "-o", str(out), "-i", "blur it", "--preset", "tiny", "-q")
    assert r.returncode == 0, r.stderr
    assert not any(p.exists() for p in left) and all(p.exists() for p in other)


def test_the_resume_key_is_the_files_bytes_not_its_path(tmp_path):
    """Issue 18's surviving mutation: a key of the path would redo a moved photo and skip a changed one."""
    from lasso_edit.batch import item_key

    a, b = tmp_path / "a.png", tmp_path / "moved" / "b.png"
    b.parent.mkdir()
    save(noise_image(20, 30, seed=1), a)
    b.write_bytes(a.read_bytes())
    settings = {"seed": 1}
    key = item_key(BatchItem(str(a), "remove the dog", "x"), settings)
    assert item_key(BatchItem(str(b), "remove the dog", "x"), settings) == key  # same bytes, another path
    save(noise_image(20, 30, seed=2), a)
    assert item_key(BatchItem(str(a), "remove the dog", "x"), settings) != key  # same path, other bytes
    assert item_key(BatchItem(str(b), "remove the cat", "x"), settings) != key  # another instruction


def test_an_input_reached_through_a_link_or_dotdot_is_still_never_overwritten(tmp_path):
    """check_apart compares the files paths name (device and inode), not their text: an output path
    spelled through a symlink or `..` that lands on an input is refused like the plain one."""
    from lasso_edit.batch import check_apart

    src = tmp_path / "in"
    src.mkdir()
    photo = save(scene(), src / "x.png")
    (tmp_path / "alias").symlink_to(src, target_is_directory=True)
    (tmp_path / "hard.png").hardlink_to(photo)
    item = [BatchItem(str(photo), "blur it", "x")]
    for spelled in (tmp_path / "alias" / "x.png", tmp_path / "in" / ".." / "in" / "x.png", tmp_path / "hard.png"):
        assert str(spelled) != str(photo)
        with pytest.raises(InvalidInputError, match="would overwrite the input"):
            check_apart(item, {"x": [str(spelled)]})
    check_apart(item, {"x": [str(tmp_path / "elsewhere.png")]})  # a file of its own is fine


def test_an_id_with_a_lone_surrogate_is_named_safely(tmp_path):
    """JSON can carry "\\ud800": a long id holding one was hashed as UTF-8 and crashed the batch."""
    from lasso_edit.batch import safe_id

    for text in ("x" * 300 + "\ud800", "a\udfffb"):
        name = safe_id(text)
        assert name.isascii() and len(name) <= 100 and "\ud800" not in name
    assert safe_id("x" * 300 + "\ud800") != safe_id("x" * 300 + "\udfff")
