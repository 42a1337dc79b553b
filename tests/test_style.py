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



LONGEST = 80  # lines, def to last line: a function longer than this is split into its steps (issue 30 #6)


def _long_functions(root: Path) -> list[str]:
    import ast

    from .helpers import parse_python

    out = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(parse_python(path)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > LONGEST:
                    out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)")
    return out


@pytest.mark.unit
def test_no_function_in_the_package_is_over_80_lines():
    assert _long_functions(ROOT / "lasso_edit") == []


@pytest.mark.unit
def test_a_planted_long_function_is_caught(tmp_path):
    (tmp_path / "m.py").write_text("class A:\n    def f(self):\n" + "        x = 1\n" * LONGEST)
    (tmp_path / "ok.py").write_text("def g():\n" + "    x = 1\n" * (LONGEST - 1))
    assert _long_functions(tmp_path) == [f"m.py:2 f ({LONGEST + 1} lines)"]
