"""Many edits on one Editor, the next images decoded in threads meanwhile: `Editor.batch` and the
runner behind `lasso batch` (batch.py) both use `edit_many`. Below both: it knows the editor only
as a callable and imports neither."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass
class BatchItem:
    """One photo and what to do to it. `id` names its outputs and its line in results.jsonl."""

    image: Any  # a path (what `lasso batch` gives), or anything `load_image` takes
    instruction: str
    id: str


@dataclass
class BatchOutcome:
    """What `Editor.batch` yields per item: the result, or the error that stopped it."""

    item: BatchItem
    result: Any = None  # EditResult
    error: BaseException | None = None
    seconds: float = 0.0


def edit_many(
    editor: Callable[..., Any],
    items: Iterable[BatchItem],
    prefetch: int = 2,
    pool: ThreadPoolExecutor | None = None,
    **kwargs: Any,
) -> Iterator[BatchOutcome]:
    """Edit each item with `editor`, decoding the next `prefetch` images in threads meanwhile.
    Errors are yielded, not raised (KeyboardInterrupt and SystemExit still stop it)."""
    from ..imaging import load_image

    own = pool is None
    pool = pool or ThreadPoolExecutor(max(1, prefetch), thread_name_prefix="lasso-decode")
    queue: list[tuple[BatchItem, Future]] = []
    it = iter(items)
    try:

        def top_up() -> None:
            while len(queue) <= prefetch:
                item = next(it, None)
                if item is None:
                    return
                queue.append((item, pool.submit(load_image, item.image)))

        top_up()
        while queue:
            item, loading = queue.pop(0)
            top_up()
            t0 = time.perf_counter()
            try:
                loaded = loading.result()
                result = editor(loaded, item.instruction, **kwargs)
            except Exception as e:  # noqa: BLE001 - one bad item is reported, never fatal
                yield BatchOutcome(item, error=e, seconds=time.perf_counter() - t0)
                continue
            yield BatchOutcome(item, result=result, seconds=time.perf_counter() - t0)
    finally:
        for _, f in queue:
            f.cancel()
        if own:
            pool.shutdown(wait=True)
