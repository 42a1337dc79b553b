"""What every route shares: the one editor, the session store, the bounded queue and the jobs a
client polls. `Service` is made once by create_app and reached by routes as a dependency
(`service(request)`), so a route is a plain function of its fields."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import Request
from starlette.datastructures import UploadFile

from ..core.errors import storage_error
from ..imaging import write_atomic
from ..sessions.session import SessionStore
from .errors import JobNotFoundError, Scrubber, answer
from .jobs import Job, JobQueue, QueueTimeout
from .settings import ServerSettings

if TYPE_CHECKING:
    from ..pipeline.editor import Editor

T = TypeVar("T")
Progress = Callable[[str], None]  # what an edit says as it goes

JOBS_KEPT_S = 15 * 60  # a finished job can be polled this long


class Service:
    def __init__(self, settings: ServerSettings, editor: Editor | None = None) -> None:
        from ..pipeline.credentials import identity, use_by_default
        from ..pipeline.editor import Editor

        self.settings = settings
        if settings.credentials is not None:  # every write of this server signs as its settings say
            identity(settings.credentials)  # a bad certificate: exit 2 before any model loads
        use_by_default(settings.credentials)
        self.data = Path(settings.data_dir).expanduser()
        uploads = self.data / "uploads"
        if settings.shared:
            uploads = _own_uploads(uploads, settings.instance or f"{socket.gethostname()}-{os.getpid()}")
        uploads.mkdir(parents=True, exist_ok=True)
        for leftover in uploads.iterdir():  # a previous run's, stopped mid-request
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
        self.uploads = uploads
        self.shared_jobs = self.data / "jobs" if settings.shared else None
        if self.shared_jobs is not None:
            self.shared_jobs.mkdir(exist_ok=True)
        self.editor = editor if editor is not None else Editor.from_config(settings.editor_config())
        self.editors = {settings.editor_config().preset: self.editor}  # preset -> its editor, built when chosen
        self._resident = settings.editor_config().preset
        self.store = SessionStore(
            self.data / "sessions", ttl_s=settings.session_ttl_s, max_bytes=settings.session_max_bytes
        )
        self.jobs = JobQueue(settings.queue)
        self.background: dict[str, Job] = {}  # jobs a client polls (Prefer: respond-async)
        self.max_bytes = int(settings.max_upload_mb * 2**20)
        self.scrub = Scrubber(self.data)
        self._published: dict[str, float] = {}

    def editor_for(self, preset: str | None) -> Editor:
        """The editor of a preset a request chose (None: the server's). Called on the queue's worker,
        so switching never races an edit: the previous preset's models are unloaded first."""
        from ..core.config import EditorConfig
        from ..pipeline.editor import Editor

        name = preset or self._default
        offered = self.settings.offered()
        if name not in offered:
            from ..core.errors import InvalidInputError

            raise InvalidInputError(f"this server offers the presets {', '.join(offered)}; not {name!r}")
        if name not in self.editors:  # the preset's own models, but the server's painter (a hosted one too) and keys
            base = self.settings.editor_config()
            self.editors[name] = Editor.from_config(
                EditorConfig(
                    name,
                    device=base.device,
                    optional=("detector",),
                    vlm_api_key=base.vlm_api_key,
                    inpainter=base.inpainter,
                    inpainter_api_key=base.inpainter_api_key,
                )
            )
        if name != self._resident:
            self.editors[self._resident].unload()
            self._resident = name
        return self.editors[name]

    @property
    def _default(self) -> str:
        return self.settings.editor_config().preset

    # ------------------------------------------------------------------ uploads
    async def receive(self, upload: UploadFile) -> Path:
        """The upload in a file of our own, read in chunks (the body's size limit is guards.BodyLimit's)."""
        fd, name = tempfile.mkstemp(prefix="upload-", dir=self.uploads)  # the client's file name is never used
        try:
            with os.fdopen(fd, "wb") as f:
                while chunk := await upload.read(1 << 20):
                    f.write(chunk)
        except BaseException as e:
            Path(name).unlink(missing_ok=True)
            full = storage_error(e, "the server's disk (its upload folder)")
            if full is not None:
                raise full from None
            raise
        return Path(name)

    # ------------------------------------------------------------------ the queue
    def queued(self, work: Callable[[Progress], T], job: Job | None = None) -> Future[T]:
        """`work(progress)` as a queue job: the progress callback feeds `job`, and stops the edit on
        shutdown or once its request has given up on it (timed out)."""
        submitted = time.monotonic()
        mine: list[Future[T]] = []  # the job's future, once submitted
        timeout_s = self.settings.timeout_s

        def progress(message: str) -> None:
            self.jobs.check(mine[0] if mine else None)  # raises Cancelled on SIGTERM, or when the request timed out
            if job is not None:
                job.report(message)
                self.publish(job)

        def fn() -> T:
            if time.monotonic() - submitted > timeout_s:  # waited too long: never start it
                raise QueueTimeout(f"the edit waited over {timeout_s:g} s")
            if job is not None:
                job.state = "running"
                job.report("starting")
                self.publish(job, now=True)
            return work(progress)

        mine.append(self.jobs.submit(fn))  # QueueFull at once when the queue is full
        return mine[0]

    async def run(self, work: Callable[[Progress], T]) -> T:
        """`work(progress)` on the queue's worker; the event loop stays free to answer others meanwhile.
        A request that times out (503) takes its edit with it: waiting, it never starts; running, it
        stops at its next step, and nothing is written."""
        future = self.queued(work)
        timeout_s = self.settings.timeout_s
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), timeout_s)
        except asyncio.TimeoutError:
            self.jobs.stop(future)
            raise QueueTimeout(f"the edit waited over {timeout_s:g} s") from None
        except asyncio.CancelledError:  # the client went away: nobody will read the answer
            self.jobs.stop(future)
            raise

    async def quick(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, work that needs no model (reading a follow-up's words), in a worker thread of
        its own rather than on the queue: the event loop answers other requests meanwhile (`/healthz`
        too), and no such read waits behind an edit that is painting."""
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(fn, *args)

    # ------------------------------------------------------------------ background jobs
    def start_job(self, work: Callable[[Progress], T], finish: Callable[[T], Any]) -> Job:
        """`work` in the background; `finish(result)` makes the job's answer. The job is polled at /v1/jobs/{id}."""
        now = time.time()
        for jid in [j for j, job in self.background.items() if job.finished and now - job.finished > JOBS_KEPT_S]:
            self.background.pop(jid, None)
        if self.shared_jobs is not None:  # every replica's, a gone one's too: untouched past any poll's use
            for f in self.shared_jobs.glob("*.json"):
                with contextlib.suppress(OSError):
                    if now - f.stat().st_mtime > JOBS_KEPT_S + self.settings.timeout_s:
                        f.unlink()
        job = Job()
        future = self.queued(work, job)
        self.background[job.id] = job
        self.publish(job, now=True)

        def done(f: Future[T]) -> None:
            try:
                job.result = finish(f.result())
                job.state = "done"
                job.message = "done"
            except BaseException as e:  # noqa: BLE001 - the job says what the synchronous route would
                status, detail, exit_code, retry_after = answer(e)
                job.error = {
                    "status": status,
                    "detail": self.scrub(detail),
                    "exit_code": exit_code,
                    "retry_after": retry_after,
                }
                job.state = "failed"
                job.message = job.error["detail"]
            job.finished = time.time()
            self.publish(job, now=True)

        future.add_done_callback(done)
        return job

    def publish(self, job: Job, now: bool = False) -> None:
        """A shared store's copy of the job, for the other replicas' polls (progress at most 4 times a second)."""
        if self.shared_jobs is None or (not now and time.monotonic() - self._published.get(job.id, 0.0) < 0.25):
            return
        self._published[job.id] = time.monotonic()
        if job.finished:
            self._published.pop(job.id, None)
        text = json.dumps(job.to_dict()).encode()
        try:
            write_atomic(self.shared_jobs / f"{job.id}.json", lambda f: f.write(text))
        except OSError:  # a full or gone disk: this replica still answers its own polls
            pass

    def job(self, jid: str) -> dict[str, Any]:
        """A job as a poll answers it: this replica's, or (shared) another's from the shared store."""
        job = self.background.get(jid)
        if job is not None:
            return job.to_dict(position=self.position(job))
        if self.shared_jobs is not None and re.fullmatch(r"[A-Za-z0-9_-]{22}", jid):  # another replica's
            try:
                found = json.loads((self.shared_jobs / f"{jid}.json").read_text())
                if not found.get("finished") or time.time() - found["finished"] <= JOBS_KEPT_S:
                    return found
            except (OSError, ValueError):
                pass
        raise JobNotFoundError("no such job (unknown, or finished over 15 minutes ago)")

    def position(self, job: Job) -> int:
        """Edits ahead of a queued job: the running one and the background jobs queued before it
        (a synchronous request waiting in the queue is not counted)."""
        ahead = sum(1 for j in self.background.values() if j.state == "queued" and j.created < job.created)
        return ahead + self.jobs.running


def service(request: Request) -> Service:
    """The app's Service, for a route's `Depends`."""
    return request.app.state.service


def wants_async(request: Request) -> bool:
    return "respond-async" in request.headers.get("prefer", "").lower()


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _own_uploads(root: Path, instance: str) -> Path:
    """This instance's folder under a shared uploads folder; those of instances gone a day are removed."""
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    for other in root.iterdir():
        if other.is_dir() and time.time() - other.stat().st_mtime > 24 * 3600:
            shutil.rmtree(other, ignore_errors=True)
    return root / re.sub(r"[^A-Za-z0-9._-]+", "_", instance)
