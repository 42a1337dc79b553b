"""One bounded queue for the model work of a server: one worker thread, so the models (and the GPU)
serve one edit at a time, and a full queue is said at once instead of piling up.

    jobs = JobQueue(size=8)
    future = jobs.submit(fn)        # raises QueueFull when `size` jobs already wait
    result = jobs.wait(future, timeout_s)   # raises QueueTimeout; a job not started is dropped
    jobs.cancel_running()           # SIGTERM: the running edit stops at its next progress report

`Job` is what a client polls (GET /v1/jobs/{id}) for an edit it asked to run in the background:
its state, the editor's last progress message and the denoising step, then the result or error.
"""

from __future__ import annotations

import queue
import re
import secrets
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """Every place in the queue is taken: come back in a moment (HTTP 429)."""


class QueueTimeout(Exception):
    """The job waited longer than its timeout (HTTP 503); if it had not started, it never will."""


class Cancelled(Exception):
    """The server is shutting down: the running edit stopped, nothing was written (HTTP 503)."""


_STEP = re.compile(r"step (\d+)/(\d+)")  # the editor's painting messages: "painting 'car': step 3/30"


@dataclass
class Job:
    """An edit run in the background, as a client sees it."""

    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    state: str = "queued"  # queued, running, done, failed
    message: str = "waiting in the queue"
    step: int | None = None  # denoising step of the edit being painted, and of how many
    steps: int | None = None
    result: Any = None
    error: dict[str, Any] | None = None  # {"status", "detail"} as the synchronous route would answer
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def report(self, message: str) -> None:
        """The editor's progress callback."""
        self.message = message
        m = _STEP.search(message)
        self.step, self.steps = (int(m[1]), int(m[2])) if m else (None, None)

    def to_dict(self, position: int | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "message": self.message,
            "step": self.step,
            "steps": self.steps,
            "created": self.created,
            "finished": self.finished,
        }
        if self.state == "queued" and position is not None:
            d["position"] = position  # jobs ahead of this one, the running one included
        if self.state == "done":
            d["result"] = self.result
        if self.state == "failed":
            d["error"] = self.error
        return d


class JobQueue:
    """Jobs run one at a time by one worker thread; at most `size` wait. A waiting job that is
    cancelled (its request timed out) leaves its place at once; a running one asked to stop
    (`stop(future)`) stops at its next progress report (`check(future)` raises Cancelled)."""

    def __init__(self, size: int = 8):
        if size < 1:
            raise ValueError("the queue needs at least one place")
        self.size = size
        self._q: queue.Queue = queue.Queue()  # bounded by the live waiting jobs, not by its own size
        self._waiting: set[Future] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.cancelling = threading.Event()  # set on shutdown: the running job's progress reports raise Cancelled
        self._stopped: set[Future] = set()  # running jobs asked to stop (their caller gave up on them)
        self.running = 0  # jobs running now (0 or 1)
        self._worker = threading.Thread(target=self._run, name="lasso-jobs", daemon=True)
        self._worker.start()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if len(self._waiting) >= self.size:
                raise QueueFull(f"the edit queue is full ({self.size} waiting)")
            self._waiting.add(future)
        future.add_done_callback(self._left)  # cancelled while waiting: its place is free at once
        self._q.put((fn, future))
        return future

    def _left(self, future: Future) -> None:
        with self._lock:
            self._waiting.discard(future)
            self._stopped.discard(future)

    def wait(self, future: Future, timeout_s: float) -> Any:
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            self.stop(future)
            raise QueueTimeout(f"the edit waited over {timeout_s:g} s") from None

    def stop(self, future: Future) -> None:
        """Nobody waits for this job any more: a waiting one never starts (and leaves its place); a
        running one stops at its next progress report."""
        if not future.cancel():
            with self._lock:
                if not future.done():
                    self._stopped.add(future)

    def check(self, future: Future | None = None) -> None:
        """Called from a job's progress reports: raises Cancelled once shutdown has begun, or once
        the job's caller gave up on it (`stop`)."""
        if self.cancelling.is_set():
            raise Cancelled("the server is shutting down; the edit was stopped and nothing was changed")
        if future is not None and future in self._stopped:
            raise Cancelled("the edit was stopped: its request timed out, and nothing was changed")

    def cancel_running(self) -> None:
        """Shutdown has begun: the running job stops at its next progress report, the waiting ones never start."""
        self.cancelling.set()
        self._stop.set()

    def close(self, timeout_s: float = 30.0) -> None:
        """Wait for the running job (up to `timeout_s`), refuse the waiting ones, stop the worker."""
        self._stop.set()
        while True:
            try:
                _, future = self._q.get_nowait()
            except queue.Empty:
                break
            _refuse(future)
        self._q.put((None, None))  # wake the worker
        self._worker.join(timeout_s)

    def _run(self) -> None:
        while True:
            fn, future = self._q.get()
            if fn is None:
                return
            if self._stop.is_set():
                _refuse(future)
                continue
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited (its place was freed then)
            with self._lock:
                self._waiting.discard(future)
            self.running = 1
            try:
                future.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - the caller gets the error, the worker lives on
                future.set_exception(e)
            finally:
                self.running = 0


def _refuse(future: Future) -> None:
    """A job that will never run: its caller hears why (a cancelled future would say nothing)."""
    if future.set_running_or_notify_cancel():
        future.set_exception(Cancelled("the server is shutting down; the edit never started"))
