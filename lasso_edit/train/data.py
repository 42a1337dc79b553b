"""Training pairs from local files: MagicBrush's parquet shards (read with `datasets`) or a JSONL
manifest of {"image", "mask", "target", "instruction"} (paths relative to it), the same readers as
`lasso eval` (evaluation/data.py). Every turn with a mask and a target is a pair.

The inpainter is trained on the prompt it is later given: the instruction is read by the rules
parser and its first edit's prompt (edit/inpaint.prompts) is the text; an instruction the rules
cannot read is used as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.errors import InvalidInputError, LassoError


@dataclass
class Pair:
    id: str
    source: np.ndarray  # RGB uint8 HxWx3
    mask: np.ndarray  # bool HxW: the edit region
    target: np.ndarray  # RGB uint8 HxWx3, the source's size
    instruction: str
    prompt: str  # what the inpainter is told
    whole: bool = False  # a style or background edit: the whole image is the crop, as at inference


def prompt_for(instruction: str) -> tuple[str, bool]:
    """(the inpainter's prompt for this instruction, whether the edit takes the whole image)."""
    from ..core.actions import spec
    from ..edit.inpaint import prompts
    from ..parse.rules import parse_instruction

    try:
        edits, _ = parse_instruction(instruction)
    except LassoError:
        return instruction, False
    if not edits:
        return instruction, False
    return prompts(edits[0])[0], spec(edits[0].action).whole_crop


def read_pairs(source: str | Path) -> list[Pair]:
    """Every (source, mask, target, instruction) of a MagicBrush folder / parquet file or a JSONL
    manifest; InvalidInputError naming the first turn without a mask or a target."""
    from ..evaluation.data import load_chains
    from ..evaluation.metrics import dataset_mask

    out: list[Pair] = []
    for cid, turns in load_chains(Path(source)):
        for k, turn in enumerate(turns, 1):
            name = f"{cid}-{k}" if len(turns) > 1 else cid
            missing = [what for what, v in (("mask", turn.mask), ("target", turn.target)) if v is None]
            if missing:
                raise InvalidInputError(
                    f"{source}: {name} has no {' and no '.join(missing)}; training needs the "
                    "source, its edit mask and the target of every pair"
                )
            src = np.asarray(turn.source.convert("RGB"))
            h, w = src.shape[:2]
            target = turn.target.convert("RGB")
            mask_img = turn.mask
            if target.size != (w, h):
                target = target.resize((w, h))
            if mask_img.size != (w, h):
                mask_img = mask_img.resize((w, h), Image.Resampling.NEAREST)
            mask = dataset_mask(mask_img)
            if not mask.any():
                raise InvalidInputError(f"{source}: {name}'s mask marks no pixel")
            prompt, whole = prompt_for(turn.instruction)
            out.append(Pair(name, src, mask, np.asarray(target), turn.instruction, prompt, whole))
    return out
