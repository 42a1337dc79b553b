"""Helpers shared by the tests: synthetic images and running the CLI as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image


def noise_image(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


def scene(h: int = 120, w: int = 160) -> np.ndarray:
    """A grey background with a red disc (left) and a blue square (right): things to find and edit."""
    img = np.full((h, w, 3), 128, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    img[(yy - h // 2) ** 2 + (xx - w // 4) ** 2 < (min(h, w) // 5) ** 2] = (200, 30, 30)
    img[h // 3: 2 * h // 3, 5 * w // 8: 7 * w // 8] = (30, 60, 200)
    return img


def save(arr: np.ndarray, path: Path, mode: str | None = None) -> Path:
    Image.fromarray(arr, mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def run_cli(*args: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `lasso` in a subprocess, as a user would."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "lasso_edit.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)
