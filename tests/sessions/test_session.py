"""Sessions: a tree of steps on disk, with undo, redo and branches (tiny preset, real models)."""

import json

import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.errors import InvalidImageError
from lasso_edit.sessions.session import SessionNotFoundError, SessionStore

from ..helpers import save, scene


@pytest.fixture()
def store(tmp_path):
    return SessionStore(tmp_path / "sessions")


def _pixels(path):
    return np.asarray(Image.open(path))


def test_apply_undo_redo_and_a_branch_that_loses_nothing(store, tiny_editor, tmp_path):
    src = save(scene(), tmp_path / "in.png")
    s = store.create(src)
    assert s.image().read_bytes() == src.read_bytes() and not s.can_undo and not s.can_redo
    a = s.apply(tiny_editor, "make the disc green", seed=1)
    b = s.apply(tiny_editor, "remove the square", seed=2)
    assert (a.parent, b.parent, s.cursor) == (0, a.id, b.id)
    assert not (_pixels(s.image()) == _pixels(s.image(a.id))).all()  # each step edits the one before
    assert s.undo() == a.id and s.can_redo
    c = s.apply(tiny_editor, "make the disc blue", seed=3)  # after an undo: a new branch beside b
    assert c.parent == a.id and {k.id for k in s.children(a.id)} == {b.id, c.id}
    assert s.image(b.id).exists()  # the abandoned branch is kept
    assert [x.id for x in s.path_to()] == [a.id, c.id]
    assert s.undo() == a.id and s.redo() == c.id  # redo follows the newest branch
    assert s.undo() == a.id and s.undo() == 0 and s.undo() == 0  # the original is the root
    s.go(b.id)
    assert s.cursor == b.id and s.mask(b.id).exists()


def test_a_restarted_store_finds_every_session_as_it_was(store, tiny_editor, tmp_path):
    s = store.create(save(scene(), tmp_path / "in.png"))
    s.apply(tiny_editor, "make the disc green", seed=1)
    s.apply(tiny_editor, "remove the square", seed=2)
    s.undo()
    again = SessionStore(store.root).get(s.id)  # a new process's store
    assert again.to_dict() == s.to_dict()
    assert again.steps[0].plan["edits"][0]["value"] == "green" and again.steps[1].seed == 2


def test_a_failed_edit_leaves_the_previous_step_intact(store, tiny_editor, tmp_path):
    s = store.create(save(scene(), tmp_path / "in.png"))
    s.apply(tiny_editor, "make the disc green", seed=1)
    before = (s.root / "session.json").read_bytes()
    files = sorted(p.name for p in s.root.iterdir())

    def breaks(*args, **kwargs):  # the edit dies part-way (out of memory, Ctrl-C, a bug)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        s.apply(breaks, "remove the square")
    assert (s.root / "session.json").read_bytes() == before and sorted(p.name for p in s.root.iterdir()) == files
    assert SessionStore(store.root).get(s.id).cursor == s.cursor == 1


def test_a_crash_between_the_step_files_and_the_record_leaves_the_old_record(store, tiny_editor, tmp_path,
                                                                             monkeypatch):
    import lasso_edit.sessions.session as session_module

    s = store.create(save(scene(), tmp_path / "in.png"))
    s.apply(tiny_editor, "make the disc green", seed=1)
    real = session_module.write_atomic

    def crash(path, write):
        raise OSError("disk full")

    monkeypatch.setattr(session_module, "write_atomic", crash)
    with pytest.raises(OSError):
        s.apply(tiny_editor, "remove the square", seed=2)
    monkeypatch.setattr(session_module, "write_atomic", real)
    assert s.cursor == 1 and len(s.steps) == 1 and not (s.root / "step-2.png").exists()
    assert json.loads((s.root / "session.json").read_text())["cursor"] == 1


@pytest.mark.parametrize("sid", ["../../etc", "nope", "", "a" * 22 + "/..", None, 7])
def test_a_bad_or_unknown_id_is_not_found_and_builds_no_path(store, sid):
    with pytest.raises(SessionNotFoundError):
        store.get(sid)


def test_an_id_with_a_line_break_after_it_names_no_session(store):
    """Issue 28 #12: the id was checked with match() and `^...$`, and `$` holds before a last line
    break: "<id>\\n" passed, and a folder so named was read as a session and listed."""
    import shutil

    s = store.create(scene())
    shutil.copytree(s.root, s.root.with_name(s.id + "\n"))
    with pytest.raises(SessionNotFoundError, match="no such session"):
        store.get(s.id + "\n")
    assert store.ids() == [s.id]


def test_ids_are_unguessable_and_deleting_removes_the_folder(store, tmp_path):
    a, b = store.create(scene()), store.create(scene())
    assert a.id != b.id and len(a.id) >= 22  # token_urlsafe(16): 128 random bits
    store.delete(a.id)
    assert not a.root.exists() and store.ids() == [b.id]
    with pytest.raises(SessionNotFoundError):
        store.get(a.id)


def test_expiry_and_the_size_cap_delete_the_least_recently_used(tmp_path):
    store = SessionStore(tmp_path / "s", ttl_s=100, max_bytes=10**9)
    old, new = store.create(scene()), store.create(scene())
    assert store.sweep(now=old.touched + 50) == []
    assert sorted(store.sweep(now=new.touched + 101)) == sorted([old.id, new.id]) and store.ids() == []
    capped = SessionStore(tmp_path / "c", max_bytes=1)  # every session is over: only the newest stays
    first = capped.create(scene())
    second = capped.create(scene())
    assert capped.ids() == [second.id] and not first.root.exists()


def test_a_bad_image_makes_no_session(store, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InvalidImageError):
        store.create(bad)
    assert store.ids() == [] and list(store.root.iterdir()) == []


def test_the_sweep_never_deletes_a_session_while_an_edit_is_applied_to_it(tmp_path, tiny_editor):
    """Issue 16 #9: the sweep took no session lock, and `touched` was not refreshed when an edit began."""
    import threading

    store = SessionStore(tmp_path / "s", ttl_s=100)
    session = store.create(scene())
    created = session.touched
    inside, release, swept = threading.Event(), threading.Event(), []

    def editor(image, instruction, **kwargs):  # the tiny editor, held mid-edit until the sweep has run
        inside.set()
        release.wait()
        return tiny_editor(image, instruction, **kwargs)

    worker = threading.Thread(target=lambda: session.apply(editor, "make it black and white", seed=1))
    worker.start()
    inside.wait()
    swept = store.sweep(now=created + 10_000)  # long expired by the clock it was created by
    release.set()
    worker.join()
    assert swept == [] and session.root.exists() and len(store.get(session.id).steps) == 1
    assert store.get(session.id).touched > created  # the edit's start and end touched it


# ---------------------------------------------------------------------- a conversation


def test_make_it_darker_is_made_from_the_picture_before_and_is_the_step_after_aimed_where_it_landed(
        store, tiny_editor, tmp_path):
    """Issue 29 #2: a refinement is the next step after the one it refines (undo comes back to it),
    though it is computed from the picture before that one (one darker red, not two stacked)."""
    s = store.create(save(scene(), tmp_path / "in.png"))
    _, first = s.converse(tiny_editor, "make the blue square red", seed=1)
    turn, darker = s.converse(tiny_editor, "make it darker", seed=1)
    assert turn.kind == "revise" and s.cursor == darker.id
    assert darker.parent == first.id and darker.base == 0 and darker.made_from == 0  # after step 1, from the original
    assert [st.id for st in s.path_to()] == [first.id, darker.id] and s.children(0) == [first]
    assert s.undo() == first.id and s.undo() == 0 and s.redo() == first.id and s.redo() == darker.id
    edit = darker.plan["edits"][0]
    assert (edit["action"], edit["target"], edit["value"]) == ("recolor", "blue square", "dark red")
    assert edit["box"] == first.boxes[0]  # the same instance as before
    assert darker.instruction == "make it darker" and darker.turn == {
        "kind": "revise", "said": turn.said, "revises": first.id}
    assert "dark red" in darker.plan["instruction"]
    turn, more = s.converse(tiny_editor, "a bit more", seed=1)  # a revision of a revision: still from the original
    assert turn.kind == "revise" and (more.parent, more.base) == (darker.id, 0)
    assert s.undo() == darker.id


def test_the_bike_too_applies_the_last_action_on_top_and_undo_said_undoes(store, tiny_editor, tmp_path):
    s = store.create(save(scene(), tmp_path / "in.png"))
    _, first = s.converse(tiny_editor, "make the blue square red", seed=1)
    turn, more = s.converse(tiny_editor, "and the red disc too", seed=1)
    assert turn.kind == "again" and more.parent == first.id
    assert [(e["action"], e["target"], e["value"]) for e in more.plan["edits"]] == [("recolor", "red disc", "red")]
    turn, step = s.converse(tiny_editor, "undo that")
    assert turn.kind == "undo" and step is None and s.cursor == first.id


def test_a_follow_up_with_nothing_to_lean_on_is_a_question_and_changes_nothing(store, tiny_editor, tmp_path):
    s = store.create(save(scene(), tmp_path / "in.png"))
    for words in ("make it darker", "no, the other one", "and the bike too", "undo that and try green", "remove it"):
        turn, step = s.converse(tiny_editor, words)
        assert turn.kind == "question" and turn.question and step is None, words
    assert s.steps == [] and s.cursor == 0


def test_the_other_one_never_lands_on_the_instance_edited_before(tiny_editor, tmp_path):
    from lasso_edit.core.errors import TargetNotFoundError
    from lasso_edit.core.plan import Action, Edit, EditPlan

    box = (80.0, 30.0, 150.0, 90.0)
    same = EditPlan([Edit(Action.REMOVE, "square", box=box, avoid=box)])  # a grounder that takes the VLM's box
    with pytest.raises(TargetNotFoundError, match="no other instance than the one edited before"):
        tiny_editor(save(scene(), tmp_path / "in.png"), plan=same, grounder="vlm", dry_run=True)
    elsewhere = EditPlan([Edit(Action.REMOVE, "square", box=(0.0, 0.0, 40.0, 40.0), avoid=box)])
    assert tiny_editor(save(scene(), tmp_path / "in.png"), plan=elsewhere, grounder="vlm", dry_run=True).mask.any()


def test_a_new_instruction_in_a_session_reaches_the_vlm_with_what_the_last_edit_did(store, tiny_editor, tmp_path,
                                                                                    monkeypatch):
    from lasso_edit.parse.loop import CONTEXT, PROMPT

    vlm = tiny_editor.stage("vlm")
    asked = []

    def ask(image, text, constrained=None):  # the model's words replaced; the prompt is the real one
        asked.append(text)
        return '[["recolor","door","green",null]]' if "door" in text.split("Instruction:")[-1] else \
            '[["recolor","square","red",null]]'

    monkeypatch.setattr(vlm, "ask", ask)
    monkeypatch.setattr(vlm, "constrained", False)
    s = store.create(save(scene(), tmp_path / "in.png"))
    s.converse(tiny_editor, "make the blue square red", parser="vlm", seed=1)
    assert asked[-1] == PROMPT.format(instruction="make the blue square red")  # nothing before: the same bytes
    _, step = s.converse(tiny_editor, "paint the door green", parser="vlm", seed=1)
    line = 'the person said "make the blue square red" and Lasso did: make the square red'
    assert CONTEXT.format(context=line) + "Instruction: paint the door green" in asked[-1]
    assert step.plan["edits"][0]["target"] == "door" and step.parent == 1


def test_two_edits_at_once_chain_the_second_starts_from_the_first(store, tiny_editor, tmp_path):
    """Each edit's base is read under the session's lock: one read before it (while another edit
    runs) would branch from a stale step. The Ray test found this across replicas; threads show it too."""
    import threading

    s = store.create(save(scene(), tmp_path / "in.png"))
    first_running, second_read = threading.Event(), threading.Event()
    understand = s.understand

    def understood(words):  # the second edit has read the session, then waits for the lock
        turn = understand(words)
        if first_running.is_set():
            second_read.set()
        return turn

    def slow(*args, **kwargs):  # the first edit holds the lock until the second has read
        if not first_running.is_set():
            first_running.set()
            second_read.wait()
        return tiny_editor(*args, **kwargs)

    s.understand = understood
    first = threading.Thread(target=s.converse, args=(slow, "make it black and white"))
    first.start()
    first_running.wait()
    s.converse(slow, "make the square red")
    first.join()
    assert [(st.id, st.parent) for st in s.steps] == [(1, 0), (2, 1)] and s.cursor == 2
