"""Evaluation data, read from local files (nothing is downloaded here):

- MagicBrush as published on the Hub (`hf download osunlp/MagicBrush --repo-type dataset`): parquet
  shards with img_id, turn_index, source_img, mask_img, instruction, target_img, read with `datasets`;
- a JSONL manifest: {"image", "instruction", "target"?, "mask"?, "caption"?, "id"?, "turn"?} a line,
  paths relative to the manifest; rows sharing an id with a "turn" form a multi-turn chain;
- PIE-Bench (Ju et al., ICLR 2024): a folder with `mapping_file.json` (per image: `image_path`,
  `original_prompt`, `editing_prompt`, `editing_instruction`, `editing_type_id`, `blended_word`
  and a run-length `mask` on the 512x512 frame) and `annotation_images/`. No ground truth: it is
  scored on preservation outside its mask and on CLIP against `editing_prompt`, per edit type.

Single-turn: every turn is a sample, edited from the ground-truth input. Multi-turn: every chain is
one sample, each turn edited from Lasso's previous output, the last one scored.
"""

from __future__ import annotations

import io
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import InvalidInputError


@dataclass
class Turn:
    source: Any  # PIL image: the ground-truth input of this turn
    instruction: str
    target: Any = None  # PIL image or None
    mask: Any = None  # PIL image or None (the dataset's edit region)
    caption: str | None = None  # the target's local caption, for CLIP-T (PIE-Bench: its editing_prompt)
    kind: str | None = None  # PIE-Bench's editing_type_id ("0" to "9"): its tables are per edit type
    name: str | None = (
        None  # the input's path within the dataset (PIE-Bench's image_path): where other editors save theirs
    )


@dataclass
class Sample:
    id: str
    turns: list[Turn]


def _image(value, base: Path | None = None):
    """A PIL image from what a dataset row holds: PIL, {"bytes", "path"}, bytes, or a path."""
    if value is None or isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            return Image.open(io.BytesIO(value["bytes"]))
        value = value.get("path")
        if value is None:
            return None
    if isinstance(value, (bytes, bytearray)):
        return Image.open(io.BytesIO(value))
    path = Path(value)
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.exists():
        raise InvalidInputError(f"the dataset names an image that is not there: {path}")
    return Image.open(path)


def load_chains(source: Path) -> list[tuple[str, list[Turn]]]:
    """(id, turns in order) per chain, from a MagicBrush parquet folder or file, a JSONL manifest,
    or a PIE-Bench folder (or its mapping_file.json)."""
    source = Path(source).expanduser()
    if source.name == "mapping_file.json" or (source / "mapping_file.json").is_file():
        return _piebench(source if source.name == "mapping_file.json" else source / "mapping_file.json")
    if source.is_dir() or source.suffix == ".parquet":
        return _magicbrush(source)
    if source.suffix == ".jsonl":
        return _manifest(source)
    raise InvalidInputError(
        f"{source}: expected a folder of MagicBrush parquet shards, a .parquet file or a .jsonl manifest"
    )


def _magicbrush(source: Path) -> list[tuple[str, list[Turn]]]:
    files = sorted(str(p) for p in source.rglob("*.parquet")) if source.is_dir() else [str(source)]
    if not files:
        raise InvalidInputError(f"no .parquet files under {source}")
    try:
        import datasets
    except ImportError:
        raise InvalidInputError("reading MagicBrush needs the eval extra: pip install 'lasso-edit[eval]'") from None
    datasets.disable_progress_bars()  # our own progress bar is the one shown
    datasets.logging.set_verbosity_error()
    ds = datasets.Dataset.from_parquet(files, keep_in_memory=True)
    need = {"img_id", "turn_index", "source_img", "instruction", "target_img"}
    if not need <= set(ds.column_names):
        raise InvalidInputError(f"{source}: not MagicBrush's schema; missing {sorted(need - set(ds.column_names))}")
    chains: dict[str, list[tuple[int, Turn]]] = defaultdict(list)
    for row in ds:
        turn = Turn(
            _image(row["source_img"]),
            row["instruction"],
            _image(row["target_img"]),
            _image(row.get("mask_img")),
            row.get("caption"),
        )
        chains[str(row["img_id"])].append((int(row["turn_index"]), turn))
    return [(cid, [t for _, t in sorted(turns, key=lambda x: x[0])]) for cid, turns in chains.items()]


def _manifest(source: Path) -> list[tuple[str, list[Turn]]]:
    from ..jsonl import manifest_rows

    chains: dict[str, list[tuple[int, Turn]]] = defaultdict(list)
    for n, row in manifest_rows(source):
        if not row.get("image") or not row.get("instruction"):
            raise InvalidInputError(f"{source.name} line {n}: needs image and instruction")
        base = source.parent
        turn = Turn(
            _image(row["image"], base),
            str(row["instruction"]),
            _image(row.get("target"), base),
            _image(row.get("mask"), base),
            row.get("caption"),
        )
        cid = str(row.get("id") or Path(str(row["image"])).stem)
        chains[cid].append((int(row.get("turn", len(chains[cid]) + 1)), turn))
    if not chains:
        raise InvalidInputError(f"{source} lists no samples")
    return [(cid, [t for _, t in sorted(turns, key=lambda x: x[0])]) for cid, turns in chains.items()]


PIE_SIDE = 512


def pie_mask(encoded: list[int], shape: tuple[int, int] = (PIE_SIDE, PIE_SIDE)):
    """PIE-Bench's run-length mask as its own evaluation decodes it (cure-lab/PnPInversion,
    evaluation/evaluate.py, `mask_decode`): (start, length) pairs over the row-major flattened frame,
    each run clipped at the frame's end, then the outermost rows and columns set ("to avoid
    annotation errors in boundary"). Returns bool HxW, True where the edit is."""
    import numpy as np

    if len(encoded) % 2:
        raise InvalidInputError("a PIE-Bench mask must be (start, length) pairs; it has an odd count")
    n = shape[0] * shape[1]
    flat = np.zeros(n, dtype=bool)
    for start, length in zip(encoded[::2], encoded[1::2]):
        if not 0 <= start < n or length < 0:
            raise InvalidInputError(
                f"a PIE-Bench mask run ({start}, {length}) is outside the {shape[1]}x{shape[0]} frame"
            )
        flat[start : start + min(length, n - start)] = True
    mask = flat.reshape(shape)
    mask[0, :] = mask[-1, :] = True
    mask[:, 0] = mask[:, -1] = True
    return mask


def _piebench(mapping: Path) -> list[tuple[str, list[Turn]]]:
    import json

    import numpy as np

    try:
        data = json.loads(mapping.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InvalidInputError(f"{mapping}: not a readable PIE-Bench mapping file ({e})") from None
    if not isinstance(data, dict) or not data:
        raise InvalidInputError(f"{mapping}: expected an object of images keyed by id")
    images = mapping.parent / "annotation_images"
    chains = []
    for key, item in data.items():
        missing = [k for k in ("image_path", "editing_prompt", "mask") if k not in item]
        if missing:
            raise InvalidInputError(f"{mapping.name}: {key} has no {', '.join(missing)}")
        prompt = str(item["editing_prompt"]).replace("[", "").replace("]", "")  # its blended-word brackets
        said = item.get("editing_instruction") or prompt
        turn = Turn(
            _image(item["image_path"], images),
            str(said),
            None,
            Image.fromarray(pie_mask(item["mask"]).astype(np.uint8) * 255),
            prompt,
            str(item.get("editing_type_id", "")) or None,
            str(item["image_path"]),
        )
        chains.append((str(key), [turn]))
    return chains


def samples(chains: list[tuple[str, list[Turn]]], turns: str = "single") -> list[Sample]:
    """Single-turn: one sample per turn (`<id>-<k>`); multi-turn: one per chain."""
    if turns not in ("single", "multi"):
        raise InvalidInputError(f"--turns must be single or multi, got {turns!r}")
    if turns == "multi":
        return [Sample(cid, ts) for cid, ts in chains]
    return [Sample(f"{cid}-{k}" if len(ts) > 1 else cid, [t]) for cid, ts in chains for k, t in enumerate(ts, 1)]


class StoredOutputs:
    """Another editor's outputs in a folder, to score on the same table as Lasso's (`--outputs`):
    each sample's at the input's own path within the dataset (PIE-Bench's image_path, as its
    methods save them), or named by the sample's id (as `lasso eval` saves Lasso's: outputs/ID.png),
    any image suffix."""

    SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")

    def __init__(self, folder: Path):
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise InvalidInputError(f"--outputs {folder}: no such folder")

    def find(self, sample: Sample) -> Path | None:
        turn = sample.turns[-1]
        stems = [Path(turn.name).with_suffix("") if turn.name else None, Path(sample.id)]
        root = self.folder.resolve()
        for stem in filter(None, stems):
            for suffix in self.SUFFIXES:
                path = self.folder / stem.with_suffix(suffix)
                if path.is_file() and path.resolve().is_relative_to(root):  # a dataset's name never leads out
                    return path
        return None
