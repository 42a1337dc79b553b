"""An edit's warnings: made where they arise, each with a code and plain words, carried by the
result, the CLI's summary, the API's answer and the session's step (issue 29); the tiny preset's
random models say so once instead of raising them every run (issue 28 item 16)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from lasso_edit.core.plan import Notice

from .helpers import run_cli, save, scene

NOISE = ("unusable", "SAM was prompted", "rules parser", "(fallback)", "covers")
JARGON = ("VLM", "SAM", "rules parser", "predicted quality", "segmenter", "detector")


@pytest.fixture(scope="module")
def real_editor(tiny_dir):
    """The tiny models as a real preset would run them: the random-weights flag off."""
    from lasso_edit import Editor
    from lasso_edit.core.presets import PRESETS

    return Editor.from_preset(replace(PRESETS["tiny"], name="tiny-as-real", random_weights=False), device="cpu")


def test_a_tiny_run_says_once_that_its_models_are_random_and_nothing_that_reads_as_a_fault(tiny_dir, tmp_path):
    src = save(scene(), tmp_path / "street.png")
    plan = tmp_path / "plan.json"
    r = run_cli("edit", str(src), "make the elephant green", "--preset", "tiny", "-o", str(tmp_path / "o.png"),
                "--plan-out", str(plan), process=True)
    assert r.returncode == 0, r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith(("warning:", "note:"))]
    assert len(said) == 1 and said[0].startswith("note: the tiny preset's models are random"), r.stderr
    assert "noise" in said[0] and "real" in said[0]
    for fault in NOISE:
        assert fault not in r.stderr and fault not in r.stdout, (fault, r.stderr, r.stdout)
    assert [w["code"] for w in json.loads(plan.read_text())["warning_details"]] == ["random_weights"]


def test_the_flag_is_the_presets_not_its_name(tiny_dir):
    from lasso_edit import Editor
    from lasso_edit.core.presets import PRESETS

    assert PRESETS["tiny"].random_weights and not any(p.random_weights for n, p in PRESETS.items() if n != "tiny")
    renamed = replace(PRESETS["tiny"], name="renamed")
    assert Editor.from_preset(renamed, device="cpu").random_weights  # the flag, not the name "tiny"
    # a real model in place of a random one: its warnings are real
    assert not Editor.from_preset(renamed, device="cpu", vlm="openai:m@http://127.0.0.1:9/v1").random_weights


def test_a_real_presets_editor_keeps_each_warning_with_its_code_and_plain_words(real_editor, tmp_path):
    res = real_editor(scene(), "make the elephant green", seed=1, dry_run=True)
    notices = [Notice.of(w) for w in res.warnings]
    codes = [n.code for n in notices]
    assert codes[:2] == ["plan_from_words", "not_found"] and "random_weights" not in codes, codes
    assert "the plan comes from the rules parser" in notices[0]  # the technical line is the string itself
    assert "SAM was prompted with the whole image" in notices[1] and notices[1].edit == 0
    assert notices[0].plain == "Lasso could not tell what to change from the picture, so it read your sentence on its own."
    assert "could not find 'elephant'" in notices[1].plain
    for n in notices:
        assert not any(word in n.plain for word in JARGON), n.plain
    if res.mask.mean() > 0.5:
        assert "large_mask" in codes
    details = res.summary()["warning_details"]
    assert [d["text"] for d in details] == list(res.warnings)  # the details are the warnings, in order
    assert [d["code"] for d in details] == codes


def test_the_cli_prints_a_real_presets_warnings(real_editor, tmp_path, monkeypatch):
    """`lasso edit` on the same models with the flag off: the warnings are there, as warnings."""
    from lasso_edit.core import presets

    monkeypatch.setitem(presets.PRESETS, "tiny-as-real", replace(presets.PRESETS["tiny"], random_weights=False))
    src = save(scene(), tmp_path / "street.png")
    r = run_cli("edit", str(src), "make the elephant green", "--preset", "tiny-as-real", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "warning: the VLM's answer was unusable" in r.stderr and "warning: no box from the VLM" in r.stderr
    assert "note:" not in r.stderr and "plan from rules (fallback)" in r.stdout


def test_a_notice_is_a_string_everywhere_a_string_goes():
    n = Notice("the technical line", "not_found", "the plain words", 2)
    assert n == "the technical line" and json.dumps([n]) == '["the technical line"]'
    assert Notice.from_dict(n.to_dict()).to_dict() == n.to_dict()
    assert Notice.of("a plain string").to_dict() == {"code": "note", "text": "a plain string",
                                                    "plain": "a plain string", "edit": None}
    assert Notice.of(n, 5).edit == 2 and Notice.of("x", 5).edit == 5
    import pickle

    assert pickle.loads(pickle.dumps(n)).to_dict() == n.to_dict()  # a result crosses processes (Ray, batch)


def test_a_sessions_step_keeps_its_warnings_on_disk(real_editor, tmp_path):
    from lasso_edit.sessions.session import SessionStore

    s = SessionStore(tmp_path / "s").create(save(scene(), tmp_path / "in.png"))
    step = s.apply(real_editor, "make the elephant green", seed=1)
    assert [d["code"] for d in step.warning_details][:2] == ["plan_from_words", "not_found"]
    assert step.warnings == [d["text"] for d in step.warning_details]
    again = SessionStore(tmp_path / "s").get(s.id).steps[0]  # read back from session.json
    assert again.warning_details == step.warning_details and again.warnings == step.warnings


def test_the_apis_answers_carry_each_warning_with_its_code_through_a_preview_and_its_apply(real_editor, tmp_path):
    import io

    from fastapi.testclient import TestClient
    from PIL import Image

    from lasso_edit.server.app import ServerSettings, create_app

    buf = io.BytesIO()
    Image.fromarray(scene()).save(buf, format="PNG")
    png = buf.getvalue()
    app = create_app(ServerSettings(preset="tiny", data_dir=str(tmp_path / "serve")), editor=real_editor)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        sid = c.post("/v1/sessions", files={"image": ("in.png", png, "image/png")}).json()["id"]
        p = c.post(f"/v1/sessions/{sid}/plan", data={"instruction": "make the elephant green"}).json()
        assert [d["code"] for d in p["warning_details"]][:2] == ["plan_from_words", "not_found"]
        assert p["warnings"] == [d["text"] for d in p["warning_details"]]  # the strings as they were
        # the previewed plan sent back: its own warning keeps its code in the step
        s = c.post(f"/v1/sessions/{sid}/edit", data={"instruction": "make the elephant green",
                                                     "plan": json.dumps(p["plan"]), "seed": "1"}).json()
        assert [d["code"] for d in s["steps"][0]["warning_details"]][:2] == ["plan_from_words", "not_found"]
        one = c.post("/v1/edit", files={"image": ("in.png", png, "image/png")},
                     data={"instruction": "make the elephant green"}, headers={"Accept": "application/json"}).json()
        assert "not_found" in [d["code"] for d in one["warning_details"]] and one["warnings"]
