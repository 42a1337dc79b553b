"""Edit many photos with the models loaded once: `lasso batch` and `Editor.batch`.

    items = read_items(Path("photos/"), instruction="make the sky dramatic")   # or a JSONL / CSV manifest
    summary = BatchRunner(editor, Path("out/"), settings).run(items)

Every item ends as one line of `OUT/results.jsonl`: its output and mask paths, plan, seed, timings
and warnings, or its error and the exit-code class of that error. One bad file never stops the
batch. A re-run resumes: an item whose last line is `ok` under the same key (a hash of the file's
bytes, the instruction and the settings) and whose output is still there is skipped. Decoding the
next images and encoding finished ones run in a small thread pool beside the model work. Outputs
are written atomically, so an interrupted batch leaves no half-written file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.errors import InvalidInputError, LassoError
from .core.jsonl import last_by_id, manifest_rows
from .core.uris import is_uri
from .imaging import write_atomic
from .pipeline.many import BatchItem, BatchOutcome, edit_many

if TYPE_CHECKING:
    from .pipeline.result import EditResult

RESULTS = "results.jsonl"
MASKS = "masks"
# What the output keeps of the input's format; anything else is written as lossless PNG.
KEEP_SUFFIX = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}


@dataclass
class BatchSummary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    failures: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.done + self.failed + self.skipped

    def count(self, rec: dict) -> None:
        """Count one item's results.jsonl record (a skipped item's carries "skipped")."""
        if rec.get("skipped"):
            self.skipped += 1
        elif rec["status"] == "ok":
            self.done += 1
        else:
            self.failed += 1
            self.failures.append(rec)


# ---------------------------------------------------------------------- reading the input
ID_MAX = 100  # characters of an item's id: a file name of id + suffix stays far under NAME_MAX (255 bytes)


def safe_id(text: str) -> str:
    """A file-name-safe id: ASCII letters, digits, '.', '_' and '-' only, at most ID_MAX characters
    (a longer one keeps its start and gets a hash of the whole, so two long ids stay apart)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "item"
    if len(safe) > ID_MAX:
        whole = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]  # a lone surrogate too
        safe = f"{safe[: ID_MAX - 9]}-{whole}"
    return safe


def unique_ids(ids: list[str]) -> list[str]:
    """The ids made unique by construction, case folded (cat and Cat are one file on macOS): the
    first of each keeps its id, a repeat gets the first free `-2`, `-3`, ... that is no other
    item's id either (so `cat.png`, `cat-2.png`, `cat.jpg` give cat, cat-2, cat-3)."""
    reserved = {i.casefold() for i in ids}
    taken: set[str] = set()
    out = []
    for i in ids:
        new, n = i, 1
        while new.casefold() in taken:
            n += 1
            new = f"{i}-{n}"
            if new.casefold() in reserved:  # another item's own id: skip it
                new = i
        taken.add(new.casefold())
        out.append(new)
    return out


def read_items(source: Path, instruction: str | None = None) -> list[BatchItem]:
    """Items from a folder of images (each with `instruction`), or from a manifest: JSONL with
    one {"image", "instruction", "id"?} object a line, or CSV with image and instruction columns
    (and id). Relative image paths are relative to the manifest's folder; a row without an
    instruction takes `instruction`. Raises InvalidInputError for an unreadable manifest."""
    source = Path(source).expanduser()
    if source.is_dir():
        if not instruction:
            raise InvalidInputError("a folder of images needs --instruction (or give a manifest with one per image)")
        from PIL import Image

        known = {ext.lower() for ext in Image.registered_extensions()}
        files = sorted(
            p for p in source.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in known
        )
        if not files:
            raise InvalidInputError(f"no images in {source}")
        ids = unique_ids([safe_id(p.stem) for p in files])
        return [BatchItem(str(p), instruction, i) for p, i in zip(files, ids)]
    if not source.is_file():
        raise InvalidInputError(f"no such folder or manifest: {source}")
    rows = _manifest_rows(source)
    items, ids = [], []
    for n, row in rows:
        image, said = row.get("image"), row.get("instruction") or instruction
        if not image or not isinstance(image, str):
            raise InvalidInputError(f"{source.name} line {n}: no image path")
        if not said or not isinstance(said, str):
            raise InvalidInputError(f"{source.name} line {n}: no instruction (give one, or --instruction for all)")
        if is_uri(image):  # s3://, gs://, ...: read by the workers of `lasso batch --ray`
            items.append(BatchItem(image, said, ""))
        else:
            path = Path(image).expanduser()
            items.append(BatchItem(str(path if path.is_absolute() else source.parent / path), said, ""))
        ids.append(safe_id(str(row.get("id") or Path(image).stem)))
    if not items:
        raise InvalidInputError(f"{source} lists no images")
    for item, i in zip(items, unique_ids(ids)):
        item.id = i
    return items


def _manifest_rows(source: Path) -> list[tuple[int, dict]]:
    if source.suffix.lower() == ".csv":
        reader = csv.DictReader(source.read_text(encoding="utf-8-sig").splitlines())
        if not reader.fieldnames or "image" not in reader.fieldnames:
            raise InvalidInputError(f"{source.name}: a CSV manifest needs a header with an 'image' column")
        return [(n, row) for n, row in enumerate(reader, 2)]
    return manifest_rows(source)


def item_key(item: BatchItem, settings: dict, local: str | Path | None = None) -> str:
    """What makes an item's output: the file's bytes, the instruction and the settings. `local`:
    where the bytes are, when not at `item.image` (a worker's copy of an object-store URI)."""
    h = hashlib.sha256()
    try:
        with open(local or item.image, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        h.update(b"<unreadable>")
    h.update(json.dumps({"instruction": item.instruction, **settings}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def check_apart(
    items: list[BatchItem],
    outputs: dict[str, list[str]],
    shared: Iterable[str] = (),
    protected: Iterable[str | Path] = (),
) -> None:
    """Before any work: no file a batch writes may be one it reads, and no two items may write one
    file. `outputs`: item id -> the paths (or URIs) that item writes; `shared`: files written for the
    whole batch (results.jsonl); `protected`: other files read (the manifest). Local paths are
    compared by the file they name (device and inode: links, `..` and case-insensitive disks
    included), URIs as text. Raises InvalidInputError naming the first clash."""

    def identity(where: str) -> object | None:
        if is_uri(where):
            return where.rstrip("/")
        try:
            st = os.stat(where)
        except OSError:
            return None  # not there: not an input; two outputs are compared by name below
        return (st.st_dev, st.st_ino)

    reads: dict[object, str] = {}
    for where in [*(str(item.image) for item in items), *(str(p) for p in protected)]:
        key = identity(where)
        if key is not None:
            reads.setdefault(key, where)
    written: dict[str, str] = {}
    for owner, paths in [*((item.id, outputs.get(item.id, [])) for item in items), ("the batch", list(shared))]:
        for where in paths:
            key = identity(where)
            if key is not None and key in reads:
                raise InvalidInputError(
                    f"the output {where} would overwrite the input {reads[key]}; Lasso never "
                    "overwrites its input: choose another output folder (-o)"
                )
            name = where.rstrip("/") if is_uri(where) else os.path.normcase(os.path.abspath(where)).casefold()
            if name in written:
                raise InvalidInputError(
                    f"two items would write {where} ({written[name]} and {owner}); give them distinct ids"
                )
            written[name] = owner


# ---------------------------------------------------------------------- the runner behind `lasso batch`
def error_class(e: BaseException) -> tuple[str, int]:
    """(kind, exit code) of an item's error, as `lasso edit` would have exited."""
    if isinstance(e, LassoError):
        return type(e).__name__, e.exit_code
    return type(e).__name__, 1


def base_record(item: BatchItem, key: str) -> dict:
    return {"id": item.id, "image": item.image, "instruction": item.instruction, "key": key}


def failed_record(item: BatchItem, key: str, e: BaseException, seconds: float) -> dict:
    """The results.jsonl line of an item that failed: its error, in words and as an exit-code class."""
    kind, code = error_class(e)
    return {
        **base_record(item, key),
        "status": "failed",
        "error": str(e),
        "error_kind": kind,
        "exit_code": code,
        "seconds": round(seconds, 3),
    }


def ok_record(
    item: BatchItem,
    key: str,
    result: EditResult,
    seconds: float,
    out: Path,
    mask: Path | None,
    png_compress: int = 1,
    named: tuple[str, str | None] | None = None,
    credentials: Any = None,
) -> dict:
    """Write an edited item's output (and mask) and return its results.jsonl line. `named`: the
    (output, mask) to record instead of the paths written (a worker writes locally, then uploads).
    `credentials`: who signs its Content Credentials (core/config.py's Credentials; False: none)."""
    from .pipeline.outputs import run_record, write_and_prove

    said = write_and_prove(result, out, mask, png_compress=png_compress, credentials=credentials)
    warnings = list(result.warnings) + said
    run = run_record(result)
    shown = named or (str(out), str(mask) if mask else None)
    return {
        **base_record(item, key),
        "status": "ok",
        "output": shown[0],
        "mask": shown[1],
        "plan": {k: run[k] for k in ("edits", "source", "instruction")},
        "seed": result.seed,
        "timings": run["timings"],
        "changed_pixels": run["changed_pixels"],
        "preservation": result.preservation,  # the output as written, against the input (verify.py)
        "warnings": list(dict.fromkeys(warnings)),
        "seconds": round(seconds, 3),
    }


def remove_leftovers(out: Path, items: list[BatchItem]) -> None:
    """Remove the temporary files of these items' outputs and masks in `out` (`.NAME.xxxx.tmp`,
    written then renamed by OutputBatch): what a process killed mid-write (SIGKILL, a lost node)
    left behind. Only this batch's own names are touched, and only when no edit of it runs."""
    for folder, names in ((out, {output_name(i) for i in items}), (out / MASKS, {mask_name(i) for i in items})):
        if not folder.is_dir():
            continue
        for name in names:
            for tmp in folder.glob(f".{glob_escape(name)}.*.tmp"):
                tmp.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    """`name` for Path.glob, its wildcard characters taken literally (ids hold only [A-Za-z0-9._-],
    so this is a guard)."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def output_name(item: BatchItem) -> str:
    """The output's file name: the item's id with the input's suffix, or .png for other formats."""
    suffix = Path(str(item.image)).suffix.lower()
    return f"{item.id}{suffix if suffix in KEEP_SUFFIX else '.png'}"


def mask_name(item: BatchItem) -> str:
    return f"{item.id}.png"


def compacted(items: list[BatchItem], latest: dict[str, dict], before: dict[str, dict]) -> bytes:
    """results.jsonl with one line per item, in input order (items not reached keep their earlier
    line, if any; lines of items not in this run are kept after them)."""
    lines = []
    ids = {item.id for item in items}
    for item in items:
        rec = latest.get(item.id) or before.get(item.id)
        if rec is not None:
            lines.append(json.dumps({k: v for k, v in rec.items() if k != "skipped"}))
    lines += [json.dumps(rec) for sid, rec in before.items() if sid not in ids]
    return ("\n".join(lines) + "\n" if lines else "").encode()


class ResultsLog:
    """results.jsonl while a batch runs. In a folder each record is appended as it comes (a kill
    loses nothing finished); on an object store (`lasso batch --ray -o s3://...`), which cannot
    append, the whole file is rewritten at most every FLUSH_S. `close` leaves it compacted: one
    line per item, in input order."""

    FLUSH_S = 10.0

    def __init__(
        self,
        where: str | Path,
        items: list[BatchItem],
        before: dict[str, dict],
        write_bytes: Callable[[str, bytes], None] | None = None,
    ):
        """`write_bytes(where, data)`: how a URI is written (scale/storage.py's, which the Ray runner
        passes in); a local path is appended to and rewritten atomically here."""
        self.where, self.items, self.before = str(where), items, before
        self.latest: dict[str, dict] = {}
        self.flushed = time.monotonic()
        self.write_bytes = write_bytes
        if is_uri(self.where) and write_bytes is None:
            raise ValueError(f"results at {self.where}: a URI needs a write_bytes (scale/storage.py)")
        self.file = None if is_uri(self.where) else open(self.where, "a", encoding="utf-8")

    def add(self, rec: dict) -> None:
        self.latest[rec["id"]] = rec
        if rec.get("skipped"):  # its line is there already
            return
        if self.file is not None:
            self.file.write(json.dumps(rec) + "\n")
            self.file.flush()
        elif time.monotonic() - self.flushed > self.FLUSH_S:
            self._write()
            self.flushed = time.monotonic()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self._write()

    def _write(self) -> None:
        data = compacted(self.items, self.latest, self.before)
        if self.file is not None:
            write_atomic(Path(self.where), lambda f: f.write(data))
        elif self.write_bytes is not None:  # a URI: __init__ checked that it has a writer
            self.write_bytes(self.where, data)


class BatchRunner:
    """Runs items through an editor into `out_dir`, recording each in results.jsonl, resuming."""

    def __init__(
        self,
        editor: Callable[..., EditResult],
        out_dir: Path,
        settings: dict,
        masks: bool = True,
        png_compress: int = 1,
        edit_kwargs: dict | None = None,
        protected: Iterable[str | Path] = (),
        credentials: Any = None,  # core/config.py's Credentials (False: none; None: the defaults)
    ):
        self.editor, self.out, self.settings = editor, Path(out_dir), dict(settings)
        self.credentials = credentials
        self.protected = [str(p) for p in protected]  # files read besides the images (the manifest)
        self.masks, self.png_compress = masks, png_compress
        self.edit_kwargs = dict(edit_kwargs or {})
        self.out.mkdir(parents=True, exist_ok=True)
        self.results = self.out / RESULTS

    def output_for(self, item: BatchItem) -> Path:
        return self.out / output_name(item)

    def mask_for(self, item: BatchItem) -> Path:
        return self.out / MASKS / mask_name(item)

    def check(self, items: list[BatchItem]) -> dict[str, dict]:
        """Before any work: no output is an input, a manifest or another item's output, and
        results.jsonl can be read. Returns what it holds (`previous`)."""
        outputs = {
            item.id: [str(self.output_for(item))] + ([str(self.mask_for(item))] if self.masks else []) for item in items
        }
        check_apart(items, outputs, [str(self.results)], self.protected)
        return self.previous()

    def previous(self) -> dict[str, dict]:
        """The last line of each item in results.jsonl (a torn last line, from a kill, or bytes that
        are not UTF-8 are ignored). InvalidInputError when results.jsonl is not a file."""
        if self.results.exists() and not self.results.is_file():
            raise InvalidInputError(f"{self.results} is not a file; batch keeps its record there: move it away")
        if not self.results.exists():
            return {}
        return last_by_id(self.results.read_bytes().decode("utf-8", errors="replace"))

    def run(self, items: list[BatchItem], on_item: Callable[[dict], None] | None = None) -> BatchSummary:
        """Edit every item not already done; `on_item(record)` after each (skips included)."""
        t_start = time.perf_counter()
        before = self.check(items)
        remove_leftovers(self.out, items)  # a previous run killed mid-write
        summary = BatchSummary()
        keys = {item.id: item_key(item, self.settings) for item in items}
        log = ResultsLog(self.results, items, before)

        def record(rec: dict) -> None:
            log.add(rec)
            summary.count(rec)
            if on_item:
                on_item(rec)

        todo = []
        for item in items:
            old = before.get(item.id)
            if old and old.get("status") == "ok" and old.get("key") == keys[item.id] and Path(old["output"]).exists():
                record({**old, "skipped": True})
            else:
                todo.append(item)
        if self.masks:
            (self.out / MASKS).mkdir(exist_ok=True)

        def failed(item: BatchItem, e: BaseException, seconds: float) -> dict:
            return failed_record(item, keys[item.id], e, seconds)

        def save(outcome: BatchOutcome) -> dict:
            item = outcome.item
            return ok_record(
                item,
                keys[item.id],
                outcome.result,
                outcome.seconds,
                self.output_for(item),
                self.mask_for(item) if self.masks else None,
                self.png_compress,
                credentials=self.credentials,
            )

        pool = ThreadPoolExecutor(2, thread_name_prefix="lasso-batch-io")
        saving: list[tuple[BatchItem, Future, float]] = []

        def collect(block: bool) -> None:
            while saving and (block or saving[0][1].done()):
                item, fut, seconds = saving.pop(0)
                try:
                    record(fut.result())
                except Exception as e:  # noqa: BLE001 - a failed write is that item's failure
                    record(failed(item, e, seconds))

        try:
            for outcome in edit_many(self.editor, todo, pool=pool, **self.edit_kwargs):
                if outcome.error is not None:
                    collect(block=True)  # keep results.jsonl in input order
                    record(failed(outcome.item, outcome.error, outcome.seconds))
                else:
                    saving.append((outcome.item, pool.submit(save, outcome), outcome.seconds))
                    while len(saving) > 2:  # at most two encodes behind the model work
                        collect(block=True)
                    collect(block=False)
            collect(block=True)
        finally:
            try:
                collect(block=True)  # an interrupt still records every finished file
            finally:
                pool.shutdown(wait=True)
                log.close()
        summary.seconds = time.perf_counter() - t_start
        return summary
