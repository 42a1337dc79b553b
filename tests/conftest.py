"""Shared fixtures: tiny random models built once per test session and loaded back through the
same `from_pretrained` code a Hub id takes; offline Hub; synthetic images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # no network in tests; an uncached id fails at once
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """The tiny models, built once, and LASSO_TINY_DIR pointing at them (for the `tiny` preset)."""
    from lasso_edit.testing.tiny import ensure_tiny_models

    root = tmp_path_factory.mktemp("tiny") / "models"
    ensure_tiny_models(root)
    os.environ["LASSO_TINY_DIR"] = str(root)
    return root


@pytest.fixture(scope="session")
def tiny_editor(tiny_dir):
    from lasso_edit import Editor

    return Editor.from_preset("tiny", device="cpu")
