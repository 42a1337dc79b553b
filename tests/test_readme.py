"""README's first screen: the two commands a newcomer needs, and the edit one runs as pasted on the
photo that ships with the project (issue 28 #18)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
FIRST_SCREEN = 40  # lines a terminal or a repository page shows before scrolling


def _first_screen() -> str:
    return "\n".join((ROOT / "README.md").read_text().splitlines()[:FIRST_SCREEN])


def _blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_the_first_screen_shows_set_up_and_edit_and_the_tests():
    blocks = _blocks(_first_screen())
    assert len(blocks) >= 2, "the first screen needs two command blocks: set up + edit, and the tests"
    edit, tests = blocks[0], blocks[1]
    assert "pip install" in edit and "lasso edit examples/" in edit
    assert "bash .ci/run" in tests


def test_the_shipped_photo_has_its_licence_stated():
    photo = re.search(r"lasso edit (examples/\S+)", _first_screen()).group(1)
    assert (ROOT / photo).is_file()
    listed = (ROOT / "examples" / "README.md").read_text()
    assert Path(photo).name in listed and "CC0" in listed


def test_the_readme_edit_command_runs_as_pasted(tmp_path, tiny_dir, processes):
    """The `lasso ...` parts of the first block, run by a shell in a folder laid out like a clone
    (the install parts are what .ci/run did already): exit 0, an output of the photo's size."""
    line = _blocks(_first_screen())[0].strip()
    lasso = [part.strip() for part in line.split("&&") if part.strip().startswith("lasso ")]
    assert lasso, line
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lasso").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lasso_edit.cli "$@"\n')
    (bin_dir / "lasso").chmod(0o755)
    env = {**os.environ, "LASSO_TINY_DIR": str(tiny_dir), "HF_HUB_OFFLINE": "1",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    proc = processes.start(["sh", "-c", " && ".join(lasso)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert "0 of" in out and "pixels changed" in out  # the edit's proof, then verify's
    photo = re.search(r"lasso edit (examples/\S+)", line).group(1)
    written = re.search(r"-o (\S+)", line).group(1)
    assert Image.open(tmp_path / written).size == Image.open(tmp_path / photo).size
