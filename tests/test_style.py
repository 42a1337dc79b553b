"""The package's lint, format and types: ruff and mypy as configured in pyproject.toml (issue 18)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e  # the tools run as a developer runs them


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *cmd], cwd=ROOT, capture_output=True, text=True)


def test_ruff_lint_and_format_pass():
    pytest.importorskip("ruff", reason="ruff is in the test extra")
    r = _run("ruff", "check", "lasso_edit")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    r = _run("ruff", "format", "--check", "lasso_edit")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_mypy_passes_on_the_package():
    pytest.importorskip("mypy", reason="mypy is in the test extra")
    r = _run("mypy")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
