"""The tiny models' ids: `tiny:<name>` as a user types it at the CLI, every painter id end to end."""

import numpy as np
import pytest
from PIL import Image

from lasso_edit.core.errors import InvalidInputError
from lasso_edit.testing import TINY_IDS, resolve_tiny

from ..helpers import run_cli, save, scene


def test_an_unknown_tiny_id_or_one_for_another_stage_is_bad_input_naming_the_known_ones():
    with pytest.raises(InvalidInputError, match="unknown tiny model 'tiny:flux-schnell'; one of: .*tiny:flux-fill"):
        resolve_tiny({"inpainter": "tiny:flux-schnell"})
    with pytest.raises(InvalidInputError, match="tiny:flux-fill is a tiny inpainter, not a vlm; for the vlm: tiny:vlm"):
        resolve_tiny({"vlm": "tiny:flux-fill"})
    assert resolve_tiny({"vlm": "llava-hf/llava-1.5-7b-hf"}) == {"vlm": "llava-hf/llava-1.5-7b-hf"}


def test_an_unknown_tiny_id_at_the_cli_is_exit_2_with_the_list(tiny_dir, tmp_path):
    src = save(scene(), tmp_path / "in.png")
    r = run_cli("edit", str(src), "remove the red disc", "--preset", "tiny", "--inpainter", "tiny:nope",
                "-o", str(tmp_path / "out.png"))
    assert r.returncode == 2, r.stderr
    assert "unknown tiny model 'tiny:nope'" in r.stderr and "tiny:flux2-klein" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out.png").exists()


EXTRA = [(stage, n) for n, (stage, builder) in TINY_IDS.items() if builder is not None]  # beyond the preset's four


@pytest.mark.parametrize("stage,name", EXTRA, ids=[n for _, n in EXTRA])
def test_every_extra_tiny_id_plans_and_edits_through_the_cli_keeping_every_pixel_outside(tiny_dir, tmp_path, stage,
                                                                                       name):
    img = scene()
    src = save(img, tmp_path / "in.png")
    out, mask = tmp_path / "out.png", tmp_path / "mask.png"
    given = [f"--{stage}", f"tiny:{name}"]
    r = run_cli("edit", str(src), "replace the red disc with a cat", "--preset", "tiny", *given, "--grounder", "vlm",
                "-o", str(out), "--mask-out", str(mask), "--seed", "2", "--steps", "1")  # one step: the plumbing
    assert r.returncode == 0, r.stderr
    edited, m = np.asarray(Image.open(out)), np.asarray(Image.open(mask))
    outside = m == 0
    assert outside.any() and (~outside).any()
    assert (edited[outside] == img[outside]).all()
    if stage == "vlm":  # `lasso plan` plans only: it takes the planner, not the painter
        r = run_cli("plan", str(src), "replace the red disc with a cat", "--preset", "tiny", *given)
    else:
        r = run_cli("edit", str(src), "replace the red disc with a cat", "--preset", "tiny", *given, "--dry-run")
    assert r.returncode == 0, r.stderr
