"""One bounded queue for the model work of a server: one worker thread, so the models (and the GPU)
serve one edit at a time, and a full queue is said at once instead of piling up.

    jobs = JobQueue(size=8)
    future = jobs.submit(fn)        # raises QueueFull when `size` jobs already wait
    result = jobs.wait(future, timeout_s)   # raises QueueTimeout; a job not started is dropped
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Callable


class QueueFull(Exception):
    """Every place in the queue is taken: come back in a moment (HTTP 429)."""


class QueueTimeout(Exception):
    """The job waited longer than its timeout (HTTP 503); if it had not started, it never will."""


class JobQueue:
    def __init__(self, size: int = 8):
        if size < 1:
            raise ValueError("the queue needs at least one place")
        self.size = size
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self.running = 0  # jobs running now (0 or 1)
        self._worker = threading.Thread(target=self._run, name="lasso-jobs", daemon=True)
        self._worker.start()

    @property
    def waiting(self) -> int:
        return self._q.qsize()

    def submit(self, fn: Callable[[], Any]) -> Future:
        future: Future = Future()
        try:
            self._q.put_nowait((fn, future))
        except queue.Full:
            raise QueueFull(f"the edit queue is full ({self.size} waiting)") from None
        return future

    def wait(self, future: Future, timeout_s: float) -> Any:
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            future.cancel()  # a job not yet started is skipped by the worker
            raise QueueTimeout(f"the edit waited over {timeout_s:g} s") from None

    def close(self, timeout_s: float = 30.0) -> None:
        """Let the running job finish (up to `timeout_s`), cancel the rest, stop the worker."""
        self._stop.set()
        while True:
            try:
                _, future = self._q.get_nowait()
            except queue.Empty:
                break
            future.cancel()
        self._q.put((None, None))  # wake the worker
        self._worker.join(timeout_s)

    def _run(self) -> None:
        while True:
            fn, future = self._q.get()
            if fn is None or self._stop.is_set():
                if future is not None:
                    future.cancel()
                if fn is None:
                    return
                continue
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            self.running = 1
            try:
                future.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - the caller gets the error, the worker lives on
                future.set_exception(e)
            finally:
                self.running = 0
