"""The options commands share (options.py), as a user types them.

Issue 28 #19: `lasso edit --help` starts with examples, groups its options into panels (as `lasso batch`
does the options they share), and every list of choices in it comes from a registry.
Issue 28 #15: a part Lasso cannot do stops `lasso edit`, `lasso plan` and `lasso batch` with exit 2 (a
failed item in a batch) naming it; `--skip-unknown` makes the rest.
"""

import json
import re

import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.actions import RECOLOR_MODES
from lasso_edit.core.presets import PRESETS
from lasso_edit.core.registry import GROUNDERS, PARSERS

from ..helpers import run_cli, save, scene

INSTRUCTION = "rotate the photo 90 degrees and make it 4K"

PANELS = ["Outputs", "Edit", "Models", "Advanced"]


def _help(command: str) -> str:
    r = run_cli(command, "--help")
    assert r.returncode == 0, r.stderr
    return r.stdout


def _panels(text: str) -> dict[str, str]:
    """Each box of rich's help (its title -> its words, however rich wrapped them), in order."""
    panels: dict[str, str] = {}
    title = None
    for line in text.splitlines():
        head = re.match(r"\s*╭─ (.+?) ─", line)
        if head:
            title = head.group(1)
            panels[title] = ""
        elif line.strip().startswith("╰"):
            title = None
        elif title is not None:
            panels[title] += " " + " ".join(line.replace("│", " ").split())
    return panels


def _option(panel: str, name: str) -> str:
    """The words of option `name` in a panel, from its name to the next option's, its <type> left out."""
    m = re.search(rf"(?:^|\s){re.escape(name)}\s(?:-\w\s)?(?:<[^>]*>\s)?(.*?)(?=\s--[a-z]|$)", panel)
    assert m, f"{name} is not in {panel!r}"
    return m.group(1)


@pytest.mark.parametrize("preset", list(PRESETS))  # a new preset is checked with no change here
@pytest.mark.parametrize("command", ["edit", "batch", "plan"])
def test_the_help_lists_every_registered_preset(command, preset):
    words = _option(_panels(_help(command))["Models"], "--preset")
    assert re.search(rf"\b{re.escape(preset)}\b", words.split("[default")[0]), words


def test_every_choice_list_comes_from_its_registry():
    panels = _panels(_help("edit"))
    assert _option(panels["Advanced"], "--parser").startswith(", ".join(PARSERS.names()) + " ")
    assert _option(panels["Advanced"], "--grounder").startswith(", ".join(GROUNDERS.names()) + " ")
    recolor = _option(panels["Edit"], "--recolor")
    assert all(f"{mode}:" in recolor for mode in RECOLOR_MODES), recolor
    default = {name: p.parser for name, p in PRESETS.items()}
    for name, parser in default.items():  # the defaults it says are the presets' own
        assert parser in _option(panels["Advanced"], "--parser").split("(default", 1)[1], name


def test_edit_help_starts_with_three_examples():
    text = _help("edit")
    before_options = text.split("╭", 1)[0]  # usage, the summary, and what comes before the first panel
    lines = [x.strip() for x in before_options.splitlines() if x.strip()]
    assert lines[0].startswith("Usage:") and "edit [OPTIONS]" in lines[0] and lines[2] == "Examples:", lines
    examples = lines[3:]
    assert len(examples) == 3, examples
    assert all(x.startswith("lasso edit photo.jpg ") and (" -o " in x or "--dry-run" in x) for x in examples)


@pytest.mark.parametrize("command", ["edit", "batch"])
def test_options_are_grouped_into_panels_and_shared_ones_sit_in_the_same_panel(command):
    panels = _panels(_help(command))
    assert [p for p in panels if p in PANELS] == PANELS, list(panels)
    assert set(panels["Options"].split()) <= {"--help", "Show", "this", "message", "and", "exit."}  # nothing left over
    where = {
        "--preset": "Models",
        "--vlm": "Models",
        "--device": "Models",
        "--steps": "Edit",
        "--seed": "Edit",
        "--skip-unknown": "Edit",
        "--recolor": "Edit",
        "--png-compress": "Outputs",
        "--output": "Outputs",
        "--parser": "Advanced",
        "--grounder": "Advanced",
        "--deepcache": "Advanced",
        "--debug": "Advanced",
    }
    for option, panel in where.items():
        assert re.search(rf"(?:^|\s){option}\s", panels[panel]), (command, option, panel)


# --- --skip-unknown
def test_edit_refuses_a_partly_possible_instruction_naming_the_parts_and_writes_nothing(tiny_dir, tmp_path):
    src = save(scene(), tmp_path / "in.png")
    r = run_cli("edit", str(src), INSTRUCTION, "-o", str(tmp_path / "out.png"), "--preset", "tiny")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    assert "'rotate' is not an edit Lasso makes" in lines[0] and "'make it 4K' is not an edit" in lines[0]
    assert "blur, pixelate" in lines[0]  # what it does instead
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_edit_with_skip_unknown_leaves_the_parts_out_and_repaints_nothing(tiny_dir, tmp_path):
    src = save(scene(), tmp_path / "in.png")
    out, plan = tmp_path / "out.png", tmp_path / "plan.json"
    r = run_cli(
        "edit", str(src), INSTRUCTION, "-o", str(out), "--plan-out", str(plan), "--preset", "tiny", "--skip-unknown"
    )
    assert r.returncode == 0, r.stderr
    assert (np.asarray(Image.open(out)) == scene()).all()  # "4K" was a restyle of every pixel
    assert json.loads(plan.read_text())["edits"] == []
    assert "'rotate the photo 90 degrees' was left out" in r.stderr and "'make it 4K' was left out" in r.stderr


def test_plan_refuses_and_skips_as_edit_does(tmp_path):
    src = save(scene(), tmp_path / "in.png")
    words = "make the ball red and make it 4K"
    r = run_cli("plan", str(src), words, "--parser", "rules", "--json")
    assert r.returncode == 2 and "'make it 4K' is not an edit Lasso makes" in r.stderr and r.stdout == ""
    assert "--skip-unknown" in r.stderr  # there is a rest to make: how to ask for it
    r = run_cli("plan", str(src), words, "--parser", "rules", "--json", "--skip-unknown")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert [(e["action"], e["target"]) for e in got["edits"]] == [("recolor", "ball")]
    assert any("'make it 4K' was left out" in w for w in got["warnings"])


def test_batch_fails_the_item_without_the_flag_and_makes_the_rest_with_it(tiny_dir, tmp_path):
    (tmp_path / "in").mkdir()
    save(scene(), tmp_path / "in" / "a.png")
    words = "make the ball red and upscale it"
    r = run_cli("batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-i", words, "--preset", "tiny", "-q")
    assert r.returncode == 5, r.stderr
    record = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[-1])
    assert "'upscale' is not an edit Lasso makes" in record["error"]
    r = run_cli(
        "batch",
        str(tmp_path / "in"),
        "-o",
        str(tmp_path / "out"),
        "-i",
        words,
        "--preset",
        "tiny",
        "-q",
        "--skip-unknown",
    )
    assert r.returncode == 0, r.stderr
    record = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "ok" and any("'upscale it' was left out" in w for w in record["warnings"])
