"""`lasso batch --ray`: the batch on a Ray cluster, with Ray Data.

    runner = RayBatchRunner(EditorConfig("balanced"), "s3://bucket/out", settings, address="auto")
    summary = runner.run(read_items(Path("manifest.jsonl")))     # same BatchSummary as the local runner

The manifest becomes a dataset of one row per item; `map_batches` hands the rows to a pool of
`EditWorker` actors, each holding one Editor (its models loaded once) on its own GPU (`num_gpus=1`;
a fraction for the fast preset, whose models share a card) or CPU cores. Workers read their images
(local or shared paths, or fsspec URIs), edit them, and write the outputs and masks themselves to
OUT (a shared path or a URI); only the small results.jsonl records travel back to the driver,
which writes them as they come, exactly as the local batch does: same fields, same resume rule
(an item whose last record is ok under the same key, with its output still there, is skipped;
the worker checks, since it is the one reading the bytes), one line per item at the end.

A worker that dies mid-item (a node lost, an out-of-memory kill) is restarted by Ray and its item
run again (Ray Data's actors retry their tasks); the item's outputs are written whole or not at
all, and its record reaches the driver once.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..batch import (
    MASKS,
    RESULTS,
    BatchSummary,
    ResultsLog,
    check_apart,
    failed_record,
    item_key,
    mask_name,
    ok_record,
    output_name,
    remove_leftovers,
)
from ..core.config import EditorConfig
from ..core.errors import InvalidInputError, ModelUnavailableError
from ..core.jsonl import last_by_id
from ..core.uris import is_uri
from ..pipeline.many import BatchItem
from . import storage

# The settings the workers need from the environment of the command (model caches, tokens, the
# tiny preset's folder, the libraries' quiet), whichever node they run on.
PASSED_ENV = ("LASSO_", "HF_", "HUGGINGFACE_", "TRANSFORMERS_", "DIFFUSERS_", "TOKENIZERS_", "OPENAI_")


def connect(address: str | None) -> None:
    """Join the Ray cluster at `address` ("auto": the running one; None: the running one, or a new
    local one; "ray://host:10001": a remote one through Ray Client). A process that already called
    ray.init keeps its cluster."""
    try:
        import ray
    except ImportError:
        raise InvalidInputError("--ray needs Ray: pip install 'lasso-edit[ray]'") from None
    import signal
    import threading

    if ray.is_initialized():
        return
    _check_reachable(address)
    ours = signal.getsignal(signal.SIGTERM)
    env = {k: v for k, v in os.environ.items() if k.startswith(PASSED_ENV)}
    env.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::DeprecationWarning")
    try:
        ray.init(
            address=address,
            log_to_driver=True,
            logging_level=logging.WARNING,
            include_dashboard=False,
            runtime_env={"env_vars": env},
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ModelUnavailableError(
            f"cannot join the Ray cluster at {address or 'auto'}: {e} (start one with "
            "`ray start --head`, or name it: --ray HOST:6379)"
        ) from None
    if ours is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, ours)  # Ray's handler would end the process before ours cleans up


def gpus_each(preset: str, gpus: float | None, what: str) -> tuple[float, float]:
    """(GPUs each editor holds, GPUs in the cluster): by default 1, or 0.5 for the fast preset
    (two share a card), or 0 on a cluster without GPUs. `what` names the editor in errors."""
    import ray

    have = ray.cluster_resources().get("GPU", 0.0)
    if gpus is None:
        gpus = (0.5 if preset == "fast" else 1.0) if have else 0.0
    if gpus > 0 and have < gpus:
        raise InvalidInputError(f"each {what} asks for {gpus:g} GPU but the cluster has {have:g}")
    return gpus, have


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """A HOST:PORT or ray://HOST:PORT address that nothing answers is exit 3 in seconds (ray.init
    would keep retrying it for minutes)."""
    import re
    import socket

    m = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d+)", address or "")
    if not m:
        return  # None, "auto", "local": Ray finds (or starts) the cluster itself, or says at once
    try:
        socket.create_connection((m[1], int(m[2])), timeout=timeout_s).close()
    except OSError as e:
        raise ModelUnavailableError(
            f"no Ray cluster answers at {address} ({e.strerror or e}); start one with "
            "`ray start --head`, or check the address"
        ) from None


def worker_shape(preset: str, gpus: float | None, cpus: float, workers: int | None) -> tuple[float, float, int]:
    """(GPUs per worker, CPUs per worker, workers) for the cluster joined: one worker per GPU (two
    per GPU for the fast preset), or on a cluster without GPUs one per `cpus` cores."""
    import ray

    gpus, have = gpus_each(preset, gpus, "worker")
    if workers is None:
        workers = int(have // gpus) if gpus else int(ray.cluster_resources().get("CPU", 1.0) // cpus)
    return gpus, cpus, max(1, workers)


class EditWorker:
    """A Ray Data actor: one Editor, kept for every batch it is handed."""

    def __init__(
        self, editor_options: dict, out: str, settings: dict, masks: bool, png_compress: int, edit_kwargs: dict
    ):
        from ..pipeline.editor import Editor

        self.editor = Editor.from_config(EditorConfig.from_dict(editor_options))
        self.out, self.settings, self.masks = out, settings, masks
        self.png_compress, self.edit_kwargs = png_compress, edit_kwargs
        self.name = f"{socket.gethostname()}:{os.getpid()}"  # recorded: which process edited an item

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        records = [json.dumps(self.one(json.loads(row))) for row in batch["item"]]
        return {"record": np.array(records, dtype=object)}

    def one(self, row: dict) -> dict:
        from ..imaging import load_image

        item, prev = BatchItem(row["image"], row["instruction"], row["id"]), row.get("prev")
        t0 = time.perf_counter()
        scratch = Path(tempfile.mkdtemp(prefix="lasso-item-"))
        key = ""
        try:
            local = storage.fetch(item.image, _folder(scratch / "in"))
            key = item_key(item, self.settings, local)
            if prev and prev.get("key") == key and storage.exists(prev["output"]):
                return {**prev, "skipped": True}
            output = storage.join(self.out, output_name(item))
            mask = storage.join(self.out, MASKS, mask_name(item)) if self.masks else None
            result = self.editor(load_image(local), item.instruction, **self.edit_kwargs)
            seconds = time.perf_counter() - t0
            if not is_uri(self.out):
                rec = ok_record(
                    item, key, result, seconds, Path(output), Path(mask) if mask else None, self.png_compress
                )
            else:  # written here first (a folder each: no name can clash), then each file uploaded whole
                here_out = _folder(scratch / "out") / output_name(item)
                here_mask = _folder(scratch / "mask") / mask_name(item) if mask else None
                rec = ok_record(
                    item, key, result, seconds, here_out, here_mask, self.png_compress, named=(output, mask)
                )
                storage.put(here_out, output)
                if here_mask is not None and mask is not None:
                    storage.put(here_mask, mask)
        except Exception as e:  # noqa: BLE001 - one bad item is recorded, never fatal
            rec = failed_record(item, key or item_key(item, self.settings), e, time.perf_counter() - t0)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        rec["worker"] = self.name  # which process edited it, and when it was done (epoch seconds)
        rec["finished"] = round(time.time(), 3)
        return rec


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


class RayBatchRunner:
    """The batch on Ray; `run` answers what BatchRunner.run does."""

    def __init__(
        self,
        editor_options: EditorConfig | dict,
        out: str | Path,
        settings: dict,
        masks: bool = True,
        png_compress: int = 1,
        edit_kwargs: dict | None = None,
        address: str | None = None,
        gpus: float | None = None,
        cpus: float = 1.0,
        workers: int | None = None,
        protected: Sequence[str | Path] = (),
    ):
        config = editor_options if isinstance(editor_options, EditorConfig) else EditorConfig.from_dict(editor_options)
        self.editor_options, self.settings = config.to_dict(), dict(settings)  # a dict: what a worker is sent
        self.protected = [str(p) for p in protected]  # files read besides the images (the manifest)
        self.out = str(out) if is_uri(str(out)) else str(Path(out).expanduser().resolve())
        self.masks, self.png_compress, self.edit_kwargs = masks, png_compress, dict(edit_kwargs or {})
        self.address, self.gpus, self.cpus, self.workers = address, gpus, cpus, workers
        self.results = storage.join(self.out, RESULTS)

    def check(self, items: list[BatchItem]) -> None:
        """Before any work: no output is an input, the manifest or another item's output."""
        outputs = {
            item.id: [storage.join(self.out, output_name(item))]
            + ([storage.join(self.out, MASKS, mask_name(item))] if self.masks else [])
            for item in items
        }
        check_apart(items, outputs, [self.results], self.protected)

    def previous(self) -> dict[str, dict]:
        text = storage.read_text(self.results)
        return last_by_id(text) if text else {}

    def run(self, items: list[BatchItem], on_item: Callable[[dict], None] | None = None) -> BatchSummary:
        """Edit every item not already done on the cluster; `on_item(record)` after each, as the
        records arrive (skips included)."""
        self.check(items)
        connect(self.address)
        import logging

        import ray

        logging.getLogger("ray.data").setLevel(logging.WARNING)  # its warnings still show
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = context.print_on_execution_start = False  # the CLI draws its own
        t_start = time.perf_counter()
        gpus, cpus, workers = worker_shape(self.editor_options.get("preset", ""), self.gpus, self.cpus, self.workers)
        storage.make_folder(self.out)
        if self.masks:
            storage.make_folder(storage.join(self.out, MASKS))
        before = self.previous()
        rows = []
        for item in items:
            old = before.get(item.id)
            prev = old if old and old.get("status") == "ok" else None
            image = item.image if is_uri(item.image) else str(Path(item.image).resolve())  # workers' cwd differs
            rows.append(
                {"item": json.dumps({"image": image, "instruction": item.instruction, "id": item.id, "prev": prev})}
            )
        ds: Any = ray.data.from_items(rows, override_num_blocks=len(rows))  # a block an item: any worker takes any
        ds = ds.map_batches(
            EditWorker,
            batch_size=1,
            num_gpus=gpus,
            compute=ray.data.ActorPoolStrategy(size=min(workers, len(rows))),
            num_cpus=cpus,
            fn_constructor_kwargs={
                "editor_options": self.editor_options,
                "out": self.out,
                "settings": self.settings,
                "masks": self.masks,
                "png_compress": self.png_compress,
                "edit_kwargs": self.edit_kwargs,
            },
        )
        summary = BatchSummary()
        log = ResultsLog(self.results, items, before, write_bytes=storage.write_bytes)
        try:
            for row in ds.iter_rows():
                rec = json.loads(row["record"])
                log.add(rec)
                summary.count(rec)
                if on_item:
                    on_item(rec)
        finally:
            log.close()
        if not is_uri(self.out):  # a worker killed mid-write left its temporary file; every worker is done
            remove_leftovers(Path(self.out), items)
        summary.seconds = time.perf_counter() - t_start
        return summary
