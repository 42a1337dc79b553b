"""Step 1, check inputs: one check for the Python API and the CLI, before any model is built.

Everything a caller gives is validated here and turned into Lasso's typed errors (exit code 2 at
the CLI): the image (decoded once), the instruction or a given plan, and the settings. The CLI
calls `check_inputs` before it builds an editor; `Editor.__call__` calls it as its first step.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core.errors import InvalidInputError
from ..core.plan import Correction, Edit, EditPlan
from ..imaging import LoadedImage, load_image
from ..parse.limits import check_instruction

MAX_GUIDANCE = 100.0  # classifier-free guidance: 1-15 is the useful range; far above, fp16 overflows
MIN_STRENGTH = 0.01  # a style edit runs int(steps x strength) steps: below this, 100 steps run none


@dataclass
class CheckedInputs:
    loaded: LoadedImage
    instruction: str
    plan: EditPlan | None
    steps: int | None
    guidance: float | None
    strength: float
    seed: int


def check_inputs(
    image: Any,
    instruction: str = "",
    *,
    plan: EditPlan | None = None,
    seed: int | str | None = None,
    steps: int | str | None = None,
    guidance: float | str | None = None,
    strength: float | str = 0.65,
) -> CheckedInputs:
    """The inputs of one edit, checked and normalised (a seed of None becomes a random one, chosen
    here, so the CLI prints the seed the editor uses). Raises InvalidInputError or its children."""
    loaded = image if isinstance(image, LoadedImage) else load_image(image)
    if plan is None:
        check_instruction(instruction)
    else:
        check_plan(plan, loaded.size)
    steps, guidance, strength, seed = check_settings(steps, guidance, strength, seed)
    return CheckedInputs(loaded, instruction, plan, steps, guidance, strength, seed)


def check_plan(plan: EditPlan, size: tuple[int, int]) -> None:
    """A plan given by the caller (not parsed here): an EditPlan that passes the plan schema
    (plan_schema.py, the same the HTTP API's JSON passes) and whose boxes are XYXY pixels that
    overlap the (width, height) image. Raises `InvalidInputError` naming the edit."""
    from ..parse.schema import check_plan_dict

    if not isinstance(plan, EditPlan):
        raise InvalidInputError(f"plan must be an EditPlan, got {type(plan).__name__}")
    for i, edit in enumerate(plan.edits, 1):
        if not isinstance(edit, Edit):
            raise InvalidInputError(f"edit {i} of the plan must be an Edit, got {type(edit).__name__}")
    for i, edit in enumerate(plan.edits, 1):
        if edit.box is not None:
            check_box(f"edit {i}: box", edit.box, size)
    check_plan_dict(plan.to_dict())


def check_box(what: str, box: Any, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """An XYXY pixel box that overlaps the (width, height) image, as floats."""
    w, h = size
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be four numbers (x0, y0, x1, y1), got {box!r}") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        raise InvalidInputError(f"{what} {list(box)!r} is not x0 < x1, y0 < y1 in pixels")
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        raise InvalidInputError(f"{what} {list(box)!r} lies entirely outside the {w}x{h} image")
    return x0, y0, x1, y1


def as_correction_map(corrections: Any) -> dict[int, Any]:
    """Corrections in any accepted form as {edit index: Correction}, the Nones dropped (unchecked)."""
    if corrections is None:
        return {}
    if isinstance(corrections, Correction):
        corrections = {0: corrections}
    elif isinstance(corrections, (list, tuple)):
        corrections = dict(enumerate(corrections))
    if not isinstance(corrections, dict):
        raise InvalidInputError(f"corrections must be a Correction, a list or a dict, got {type(corrections).__name__}")
    return {i: c for i, c in corrections.items() if c is not None}


def check_corrections(corrections: Any, size: tuple[int, int]) -> dict[int, Correction]:
    """Mask corrections, normalised to {edit index (0-based): Correction}. Accepts None, one
    Correction (for the first edit), a list (one per edit, None to skip) or a dict. Points must lie
    in the (width, height) image and boxes overlap it; the edit indices are checked against the
    plan by the editor, once it has one."""
    w, h = size
    out = {}
    for i, c in as_correction_map(corrections).items():
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            raise InvalidInputError(f"a correction's edit must be an edit's index (0 = the first), got {i!r}")
        if not isinstance(c, Correction):
            raise InvalidInputError(f"correction {i} must be a Correction, got {type(c).__name__}")
        if len(c.labels) != len(c.points):
            raise InvalidInputError(f"correction {i}: one label per point (1 keep, 0 leave out)")
        for x, y in c.points:
            if not (math.isfinite(x) and math.isfinite(y) and 0 <= x <= w and 0 <= y <= h):
                raise InvalidInputError(f"correction {i}: point ({x:g}, {y:g}) is outside the {w}x{h} image")
        if c.box is not None:
            check_box(f"correction {i}: box", c.box, size)
        if c.mask is not None:
            c = replace(c, mask=check_mask(f"correction {i}", c, size))
        if not c.empty:
            out[i] = c
    return out


def check_mask(what: str, c: Correction, size: tuple[int, int]) -> np.ndarray:
    """A correction's mask as bool HxW (any array of the (width, height) image's size; nonzero
    may change), alone in the correction and with at least one pixel to edit."""
    w, h = size
    if c.points or c.box is not None or c.candidate is not None:
        raise InvalidInputError(f"{what}: a mask is the whole correction; give no points, box or candidate with it")
    m = np.asarray(c.mask)
    if m.ndim != 2 or m.dtype.kind not in "biuf":
        raise InvalidInputError(f"{what}: the mask must be an HxW array (bool: True may change), got {m.shape}")
    if m.shape != (h, w):
        raise InvalidInputError(f"{what}: the mask is {m.shape[1]}x{m.shape[0]}; the image is {w}x{h}")
    m = m != 0
    if not m.any():
        raise InvalidInputError(f"{what}: the mask has no pixel to edit")
    return m


def check_settings(
    steps: int | str | None, guidance: float | str | None, strength: float | str, seed: int | str | None
) -> tuple[int | None, float | None, float, int]:
    """Validate the per-call settings the same way for every executor; return them normalised.

    steps: a whole number >= 1 (or None); guidance: in 0..MAX_GUIDANCE (or None); strength: in
    MIN_STRENGTH..1;
    seed: a whole number in 0..2**64-1, what torch.Generator.manual_seed takes (None: a random one).
    """

    def whole(name: str, v: Any, lo: int, hi: int) -> int:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise InvalidInputError(f"{name} must be a whole number, got {v!r}")
        try:
            f = float(v)
        except ValueError:
            raise InvalidInputError(f"{name} must be a whole number, got {v!r}") from None
        if not math.isfinite(f) or f != int(f):
            raise InvalidInputError(f"{name} must be a whole number, got {v!r}")
        n = int(v) if not isinstance(v, str) else int(f)
        if not lo <= n <= hi:
            raise InvalidInputError(f"{name} must be in {lo}..{hi}, got {n}")
        return n

    def number(name: str, v: Any) -> float:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{name} must be a number, got {v!r}") from None
        if isinstance(v, bool) or not math.isfinite(f):
            raise InvalidInputError(f"{name} must be a finite number, got {v!r}")
        return f

    if steps is not None:
        steps = whole("steps", steps, 1, 1000)
    if guidance is not None:
        guidance = number("guidance", guidance)
        if not 0 <= guidance <= MAX_GUIDANCE:  # past it the arithmetic runs to NaN long before 1e308
            raise InvalidInputError(f"guidance must be in 0..{MAX_GUIDANCE:g} (7.5 is usual), got {guidance:g}")
    strength = number("strength", strength)
    if not MIN_STRENGTH <= strength <= 1.0:  # below it no step of any scheduler runs
        raise InvalidInputError(f"strength must be in {MIN_STRENGTH:g}..1 (0.65 is the default), got {strength:g}")
    seed = secrets.randbelow(2**31) if seed is None else whole("seed", seed, 0, 2**64 - 1)
    return steps, guidance, strength, seed
