"""Tests written to catch mutations that earlier tests let through (issue 6, part 3)."""

import re

import numpy as np
import pytest
from PIL import Image

from lasso_edit.plan import Grounding

from .helpers import noise_image, run_cli, save, scene


@pytest.fixture(scope="module")
def segmenter(tiny_dir):
    from lasso_edit.segment.sam import SamSegmenter

    return SamSegmenter.from_pretrained(str(tiny_dir / "segmenter"))


def test_several_boxes_give_the_union_of_their_masks(segmenter):
    img = scene()
    a, b = (0, 0, 60, 60), (90, 50, 160, 120)
    one = segmenter.segment(img, Grounding([a], [1.0], "t")).mask
    two = segmenter.segment(img, Grounding([b], [1.0], "t")).mask
    both = segmenter.segment(img, Grounding([a, b], [1.0, 1.0], "t")).mask
    assert not (one == two).all()
    assert (both == (one | two)).all()


def test_each_edit_is_grounded_on_the_image_the_previous_one_left(tiny_dir):
    from lasso_edit import Editor

    ed = Editor.from_preset("tiny", device="cpu", parser="rules", grounder="detector", box_threshold=0.0)
    det = ed.stage("detector")
    seen = []
    real = det.detect
    det.detect = lambda image, phrase: seen.append(image.copy()) or real(image, phrase)
    img = scene()
    res = ed(img, "remove the ball and remove the box", seed=1)
    assert len(seen) == 2 and (seen[0] == img).all()
    assert not (seen[1] == img).all()  # the first removal had painted
    inside = res.steps[0].region
    assert (seen[1][~inside] == img[~inside]).all() and not (seen[1][inside] == img[inside]).all()


def test_the_vlm_is_asked_through_its_chat_template(tiny_dir, monkeypatch):
    from lasso_edit.parse.llava import LlavaParser

    vlm = LlavaParser.from_pretrained(str(tiny_dir / "vlm"))
    texts = []
    real = type(vlm.processor).__call__
    monkeypatch.setattr(type(vlm.processor), "__call__", lambda self, *a, **k: texts.append(k["text"]) or real(self, *a, **k))
    vlm.ask(scene(), "make the car red")
    assert texts[-1].startswith("USER: <image>") and texts[-1].rstrip().endswith("ASSISTANT:")


def test_the_rules_parser_warns_about_what_it_left_out():
    from lasso_edit.parse.rules import RulesParser

    plan = RulesParser().parse(None, "make the car red and sing a song")
    assert [e.target for e in plan.edits] == ["car"]
    assert plan.warnings == ["did not understand 'sing a song'; it was left out of the plan"]


def test_the_printed_seed_reproduces_the_image(tiny_dir, tmp_path):
    src = save(noise_image(64, 64), tmp_path / "in.png")
    first = run_cli("edit", str(src), "remove the ball", "--preset", "tiny", "-o", str(tmp_path / "a.png"))
    assert first.returncode == 0, first.stderr
    seed = re.search(r"seed (\d+)", first.stdout).group(1)
    again = run_cli("edit", str(src), "remove the ball", "--preset", "tiny", "-o", str(tmp_path / "b.png"),
                    "--seed", seed)
    assert again.returncode == 0
    a, b = np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    assert (a == b).all() and not (a == np.asarray(Image.open(src))).all()


@pytest.mark.e2e  # a subprocess, as a user runs it
def test_models_shows_the_cache_state_of_each_model(tiny_dir, tmp_path):
    # One model in the cache, laid out as huggingface_hub lays it out: refs/main -> snapshots/<commit>/.
    repo = tmp_path / "hf" / "hub" / "models--google--owlv2-base-patch16-ensemble"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    (repo / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (repo / "snapshots" / ("0" * 40) / "config.json").write_text("{}")
    r = run_cli("models", env={"LASSO_TINY_DIR": str(tiny_dir), "HF_HOME": str(tmp_path / "hf"),
                               "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")})
    assert r.returncode == 0, r.stderr
    rows = {tuple(c.strip() for c in line.split("│")[1:4]): line.split("│")[4].strip()
            for line in r.stdout.splitlines() if line.count("│") >= 5}
    assert rows[("tiny", "vlm", "tiny:vlm")] == "yes"  # built by the fixture
    assert rows[("balanced", "vlm", "llava-hf/llava-1.5-7b-hf")] == "no"
    assert rows[("fast", "detector", "google/owlv2-base-patch16-ensemble")] == "yes"


def test_step_summaries_read_as_sentences():
    from lasso_edit.plan import Action, Edit

    assert Edit(Action.BACKGROUND, "background", "a snowy forest").describe() == \
        "replace the background with a snowy forest"
    assert Edit(Action.BACKGROUND, "background", "a beach", subject="dog").describe() == \
        "replace the background behind the dog with a beach"
    assert Edit(Action.REMOVE, "wheel", select_all=True).describe() == "remove all the wheels"
    assert Edit(Action.RECOLOR, "car", "red", qualifier="left").describe() == "make the car (left) red"
    assert Edit(Action.REPLACE, "dog", "a cat").describe() == "replace the dog with a cat"
    assert Edit(Action.ADD, "man", "a hat", relation="on").describe() == "add a hat on the man"
    assert Edit(Action.STYLE, None, "winter").describe() == "restyle the image: winter"
