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

A dataset file is read as untrusted: an image it names must lie inside its folder (no absolute path,
no '..', no link pointing out), and a row that cannot be used (not an object, a bad id, mask or
image) is, with `keep_going`, a turn carrying its `error`: that sample's error, the rest still run.
Output names come from ids through `output_names` (safe, unique, capped), never from ids directly.
"""

from __future__ import annotations

import io
import json
import os
import reprlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, overload

from PIL import Image

from ..core.errors import ImageTooLargeError, InvalidInputError, UnreadableImageError

if TYPE_CHECKING:
    import numpy as np


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
    error: str | None = None  # why this turn's row could not be used: its sample's error (load_chains(keep_going))


@dataclass
class Sample:
    id: str  # the dataset's id, as it is: never a file name (output_names makes those)
    turns: list[Turn]

    @property
    def error(self) -> str | None:
        """Why the sample cannot be run (the first of its turns' errors), or None."""
        return next((t.error for t in self.turns if t.error), None)


def output_names(items: list[Sample]) -> list[str]:
    """The file-name stem of each sample's outputs, as `lasso batch` names its items: ASCII letters,
    digits, '.', '_' and '-' only, at most batch.ID_MAX characters (a longer id keeps its start and a
    hash of the whole), unique case folded (a repeat gets -2, -3, ...). Whatever an id holds ('..',
    '/', an absolute path, NUL, a newline), its outputs stay in their folder."""
    from ..batch import safe_id, unique_ids

    return unique_ids([safe_id(s.id) for s in items])


def inside(root: Path, name: str | os.PathLike, fence: Path | None = None) -> Path | None:
    """root/name when it stays inside `fence` (default: root), resolved, once '..' and every link are
    followed; None when it leads out (an absolute name, '../', a link pointing out of the folder, root
    itself a link pointing out of fence) or cannot be a path (a NUL, a name too long, a loop of links).
    A dataset's names, and another editor's outputs (StoredOutputs), are looked up through this."""
    try:
        path = Path(root) / name
        if path.resolve().is_relative_to(fence if fence is not None else Path(root).resolve()):
            return path
    except (OSError, ValueError, RuntimeError):  # a NUL in the name; a loop of links (3.11: RuntimeError)
        pass
    return None


def open_image(source: str | os.PathLike | IO[bytes], where: str) -> Image.Image:
    """Image.open, its failures as Lasso's errors naming `where`; refused above Lasso's pixel limit.
    Pixels are decoded later (`decoded`), so a truncated file shows there."""
    from ..imaging import max_pixels

    try:
        img = Image.open(source)
    except Image.DecompressionBombError:
        raise ImageTooLargeError(f"{where} is over Pillow's decompression-bomb limit") from None
    except (OSError, ValueError, SyntaxError) as e:  # UnidentifiedImageError is an OSError
        raise UnreadableImageError(f"{where} is not an image Lasso can read ({e})") from None
    if img.width * img.height > max_pixels():
        raise ImageTooLargeError(
            f"{where} is {img.width}x{img.height}, over the {max_pixels() / 1e6:.0f} MP limit (LASSO_MAX_PIXELS)"
        )
    return img


@overload
def decoded(img: Image.Image, what: str) -> Image.Image: ...
@overload
def decoded(img: Image.Image | None, what: str) -> Image.Image | None: ...
def decoded(img: Image.Image | None, what: str) -> Image.Image | None:
    """`img` (a lazily opened PIL image, or None) with its pixels decoded now: a truncated or corrupt
    file is an UnreadableImageError naming `what`, raised before any work on it."""
    from ..imaging.decode import _DECODE_ERRORS

    if img is None:
        return None
    try:
        img.load()
    except _DECODE_ERRORS as e:
        named = " ".join(filter(None, (what, getattr(img, "filename", None))))
        raise UnreadableImageError(f"{named} is corrupt or truncated: {e}") from None
    return img


def _image(value: Any, base: Path, fence: Path | None = None, reads: list[Path] | None = None) -> Image.Image | None:
    """A PIL image from what a dataset row holds: PIL, {"bytes", "path"}, bytes, or a path relative
    to `base` that may not leave `fence` (default: base), the dataset's folder as the user named it,
    resolved once. A path it names is added to `reads` (the files the run reads: check_apart)."""
    if value is None or isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if isinstance(value.get("bytes"), (bytes, bytearray)) and value["bytes"]:
            return open_image(io.BytesIO(value["bytes"]), "an image in the dataset")
        value = value.get("path")
        if value is None:
            return None
    if isinstance(value, (bytes, bytearray)):
        return open_image(io.BytesIO(value), "an image in the dataset")
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"an image must be named by a path, got {type(value).__name__} {_brief(value)}")
    path = inside(base, value, fence)
    if path is None:
        raise InvalidInputError(f"the dataset names an image outside its folder {fence or base}: {_brief(value)}")
    if reads is not None:
        reads.append(path)
    try:
        there = path.is_file()
    except OSError as e:  # a name too long, a loop of links, no permission: this row's error, not the run's
        raise InvalidInputError(
            f"the dataset names an image Lasso cannot reach: {_brief(value)} ({e.strerror or e})"
        ) from None
    if not there:
        raise InvalidInputError(f"the dataset names an image that is not there: {path}")
    return open_image(path, str(path))


def _named(reads: list[Path] | None, base: Path, fence: Path, *values: Any) -> None:
    """Add to `reads` every file inside the dataset's folder that these row values name, even in a
    row refused later: whatever a row names, no output may be written over it (check_apart)."""
    if reads is None:
        return
    for value in values:
        value = value.get("path") if isinstance(value, dict) else value
        if isinstance(value, str) and value and (path := inside(base, value, fence)) is not None:
            reads.append(path)


def check_apart(out: Path, reads: Iterable[Path], writes: Iterable[Path] = ()) -> None:
    """Before any work: refuse (InvalidInputError, one line) when a file the run reads lies inside
    the output folder `out` (its real path, or where its link lies: saving there would replace it),
    or when a file the run writes is one it reads (a link in `out` pointing at an input). Folders
    and files are compared by identity (device and inode, as batch.check_apart does: links, '..'
    and case-insensitive disks included); a path that cannot be looked at is no clash."""

    def identity(where: str | os.PathLike) -> tuple[int, int] | None:
        try:
            st = os.stat(where)
        except (OSError, ValueError):  # not there (then nothing is in it), a NUL, a name too long
            return None
        return (st.st_dev, st.st_ino)

    def refuse(what: str) -> None:
        raise InvalidInputError(f"{what}; Lasso never overwrites its input: choose another output folder (-o)")

    folder = identity(out)
    seen: set[tuple[int, int]] = set()  # folders already found outside `out`, with all above them
    files: dict[tuple[int, int], Path] = {}
    for path in reads:
        key = identity(path)
        if key is not None:
            files.setdefault(key, path)
        if folder is None:
            continue
        try:  # the file itself, and the place its name lies (a link there would be saved through)
            places = {Path(os.path.realpath(path)).parent, Path(os.path.realpath(Path(path).parent))}
        except (OSError, ValueError):
            continue
        for place in places:
            chain = []
            for up in (place, *place.parents):
                here = identity(up)
                if here in seen:
                    break
                if here == folder:
                    refuse(f"the input {path} lies inside the output folder {out}")
                if here is not None:
                    chain.append(here)
            seen.update(chain)
    for where in writes:
        key = identity(where)
        if key is not None and key in files:
            refuse(f"the output {where} would overwrite the input {files[key]}")


def _source(value: Any, base: Path, fence: Path | None = None, reads: list[Path] | None = None) -> Image.Image:
    """A turn's input image: as _image, and there."""
    img = _image(value, base, fence, reads)
    if img is None:
        raise InvalidInputError("no input image")
    return img


def load_chains(
    source: Path, keep_going: bool = False, reads: list[Path] | None = None
) -> list[tuple[str, list[Turn]]]:
    """(id, turns in order) per chain, from a MagicBrush parquet folder or file, a JSONL manifest,
    or a PIE-Bench folder (or its mapping_file.json). A row that cannot be used raises
    InvalidInputError naming it; with `keep_going`, it is a Turn carrying its `error` instead (a
    JSONL row without a usable id is the chain `line-N`), so one bad row fails one sample. Every
    file read, or named as an image inside the dataset's folder (a bad row's too), is added to
    `reads`, for check_apart."""
    source = Path(source).expanduser()
    if source.name == "mapping_file.json" or (source / "mapping_file.json").is_file():
        mapping = source if source.name == "mapping_file.json" else source / "mapping_file.json"
        return _piebench(mapping, keep_going, reads)
    if source.is_dir() or source.suffix == ".parquet":
        return _magicbrush(source, keep_going, reads)
    if source.suffix == ".jsonl":
        return _manifest(source, keep_going, reads)
    raise InvalidInputError(
        f"{source}: expected a folder of MagicBrush parquet shards, a .parquet file or a .jsonl manifest"
    )


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 200  # a path is shown whole enough to find


def _brief(value: Any) -> str:
    """A short repr of what a dataset holds, safe for any value: deep nesting and huge lists are cut."""
    return _REPR.repr(value)


def _failed(e: InvalidInputError, keep_going: bool, where: str) -> Turn:
    """The turn of a row that cannot be used: with `keep_going`, a Turn carrying the error; else
    the error, raised. Either way it starts with `where` (the file, and the line or key)."""
    if not keep_going:
        raise InvalidInputError(f"{where}: {e}") from None
    return Turn(None, "", error=f"{where}: {e}")


def _text(row: dict, key: str, required: bool = False) -> str | None:
    """row[key] as text: a string (or None where it may be absent); anything else is refused."""
    value = row.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInputError(f"{key} must be {'non-empty ' if required else ''}text, got {_brief(value)}")
    return value


def _magicbrush(
    source: Path, keep_going: bool = False, reads: list[Path] | None = None
) -> list[tuple[str, list[Turn]]]:
    files = sorted(str(p) for p in source.rglob("*.parquet")) if source.is_dir() else [str(source)]
    if not files:
        raise InvalidInputError(f"no .parquet files under {source}")
    if reads is not None:
        reads += map(Path, files)
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
    base = source if source.is_dir() else source.parent
    fence = base.resolve()  # the folder the user named, resolved once: no image is read from outside it
    chains: dict[str, list[tuple[int, Turn]]] = defaultdict(list)
    for n, row in enumerate(ds):
        cid = str(row["img_id"])
        try:
            index = row["turn_index"]
            if not isinstance(index, int) or isinstance(index, bool):
                raise InvalidInputError(f"turn_index must be a whole number, got {_brief(index)}")
            turn = Turn(
                _source(row["source_img"], base, fence, reads),
                _text(row, "instruction") or "",  # an empty one is the editor's to refuse, as ever
                _image(row["target_img"], base, fence, reads),
                _image(row.get("mask_img"), base, fence, reads),
                _text(row, "caption"),
            )
        except InvalidInputError as e:
            index, turn = len(chains[cid]) + 1, _failed(e, keep_going, f"{source.name} row {n}")
        chains[cid].append((index, turn))
    return [(cid, [t for _, t in sorted(turns, key=lambda x: x[0])]) for cid, turns in chains.items()]


def _rows(source: Path) -> list[tuple[int, Any]]:
    """(line number, value) for each non-blank line (split on LF, CRLF or CR only: a JSON string may
    hold U+2028); a line that is not UTF-8 JSON (or nests deeper than the parser goes) is an
    InvalidInputError in place of its value, for _manifest to record."""
    try:
        data = source.read_bytes()
    except OSError as e:
        raise InvalidInputError(f"cannot read {source}: {e.strerror or e}") from None
    rows: list[tuple[int, Any]] = []
    for n, line in enumerate(data.removeprefix(b"\xef\xbb\xbf").splitlines(), 1):
        if line.strip():
            try:
                rows.append((n, json.loads(line.decode("utf-8"))))
            except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
                rows.append((n, InvalidInputError("not a line of JSON (UTF-8)")))
    return rows


def _manifest_id(row: dict) -> str:
    """A row's chain id: its "id" (text or a whole number), else its image's file stem."""
    cid = row.get("id")
    if cid is None or cid == "":
        return Path(str(row.get("image") or "")).stem
    if isinstance(cid, bool) or not isinstance(cid, (str, int)):
        raise InvalidInputError(f"id must be text or a whole number, got {_brief(cid)}")
    return str(cid)


def _manifest(source: Path, keep_going: bool = False, reads: list[Path] | None = None) -> list[tuple[str, list[Turn]]]:
    chains: dict[str, list[tuple[int, Turn]]] = defaultdict(list)
    base = source.parent
    fence = base.resolve()  # the folder the user named, resolved once: no image is read from outside it
    if reads is not None:
        reads.append(source)
    for n, row in _rows(source):
        where = f"{source.name} line {n}"
        cid = f"line-{n}"  # a row without a usable id is its own sample, named by its line
        try:
            if isinstance(row, InvalidInputError):
                raise row
            if not isinstance(row, dict):
                raise InvalidInputError("expected a JSON object with image and instruction")
            _named(reads, base, fence, row.get("image"), row.get("target"), row.get("mask"))
            if not row.get("image") or not row.get("instruction"):
                raise InvalidInputError("needs image and instruction")
            cid = _manifest_id(row)
            index = row.get("turn", len(chains[cid]) + 1)
            if not isinstance(index, int) or isinstance(index, bool):
                raise InvalidInputError(f"turn must be a whole number, got {_brief(index)}")
            turn = Turn(
                _source(row["image"], base, fence, reads),
                _text(row, "instruction", required=True) or "",
                _image(row.get("target"), base, fence, reads),
                _image(row.get("mask"), base, fence, reads),
                _text(row, "caption"),
            )
        except InvalidInputError as e:
            index, turn = len(chains[cid]) + 1, _failed(e, keep_going, where)
        chains[cid].append((index, turn))
    if not chains:
        raise InvalidInputError(f"{source} lists no samples")
    return [(cid, [t for _, t in sorted(turns, key=lambda x: x[0])]) for cid, turns in chains.items()]


PIE_SIDE = 512


def pie_mask(encoded: list[int], shape: tuple[int, int] = (PIE_SIDE, PIE_SIDE)) -> np.ndarray:
    """PIE-Bench's run-length mask as its own evaluation decodes it (cure-lab/PnPInversion,
    evaluation/evaluate.py, `mask_decode`): (start, length) pairs over the row-major flattened frame,
    each run clipped at the frame's end, then the outermost rows and columns set ("to avoid
    annotation errors in boundary"). Returns bool HxW, True where the edit is. Anything but a list
    of whole-number pairs inside the frame is an InvalidInputError."""
    import numpy as np

    if not isinstance(encoded, (list, tuple)) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in encoded
    ):
        raise InvalidInputError(f"a PIE-Bench mask must be a list of whole numbers, got {_brief(encoded)}")
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


def _pie_turn(item: Any, images: Path, fence: Path, reads: list[Path] | None = None) -> Turn:
    """One PIE-Bench entry as a Turn; InvalidInputError for anything it cannot be read from."""
    import numpy as np

    if not isinstance(item, dict):
        raise InvalidInputError(f"expected an object with image_path, editing_prompt and mask, got {_brief(item)}")
    missing = [k for k in ("image_path", "editing_prompt", "mask") if k not in item]
    if missing:
        raise InvalidInputError(f"has no {', '.join(missing)}")
    path = _text(item, "image_path", required=True) or ""
    _named(reads, images, fence, path)  # before anything else can refuse the row: check_apart sees it
    prompt = (_text(item, "editing_prompt") or "").replace("[", "").replace("]", "")  # its blended-word brackets
    said = _text(item, "editing_instruction") or prompt
    kind = item.get("editing_type_id")
    if kind is not None and (isinstance(kind, bool) or not isinstance(kind, (str, int))):
        raise InvalidInputError(f"editing_type_id must be text or a whole number, got {_brief(kind)}")
    mask = Image.fromarray(pie_mask(item["mask"]).astype(np.uint8) * 255)
    return Turn(
        _image(path, images, fence, reads),
        said,
        None,
        mask,
        prompt,
        str(kind if kind is not None else "") or None,
        path,
    )


def _piebench(mapping: Path, keep_going: bool = False, reads: list[Path] | None = None) -> list[tuple[str, list[Turn]]]:
    if reads is not None:
        reads.append(mapping)
    try:
        data = json.loads(mapping.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:
        raise InvalidInputError(f"{mapping}: not a readable PIE-Bench mapping file ({e})") from None
    if not isinstance(data, dict) or not data:
        raise InvalidInputError(f"{mapping}: expected an object of images keyed by id")
    images = mapping.parent / "annotation_images"
    # Every image is checked against the dataset's folder as the user named it, resolved once: an
    # annotation_images that is a link pointing out leads out, and each sample reading through it fails.
    fence = mapping.parent.resolve()
    chains = []
    for key, item in data.items():
        try:
            turn = _pie_turn(item, images, fence, reads)
        except InvalidInputError as e:
            turn = _failed(e, keep_going, mapping.name if keep_going else f"{mapping.name}: {key!r:.200}")
        chains.append((key, [turn]))
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
    methods save them), or named by the sample's output name (as `lasso eval` saves Lasso's:
    outputs/NAME.png) or its id, any image suffix; never outside the folder (`inside`)."""

    SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")

    def __init__(self, folder: Path):
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise InvalidInputError(f"--outputs {folder}: no such folder")

    def find(self, sample: Sample, name: str | None = None) -> Path | None:
        turn = sample.turns[-1]
        stems = [os.path.splitext(turn.name)[0] if turn.name else None, name, sample.id]
        for stem in filter(None, stems):
            for suffix in self.SUFFIXES:
                path = inside(self.folder, stem + suffix)  # a dataset's name never leads out
                try:
                    if path is not None and path.is_file():
                        return path
                except OSError:  # a name too long, a loop of links, no permission: not found there
                    pass
        return None
