"""Sessions: several edits of one photo, with undo, redo and branches, kept on disk.

    store = SessionStore("~/.cache/lasso/sessions")
    s = store.create("photo.jpg")
    s.apply(editor, "make the car red")
    s.apply(editor, "remove the person")
    s.undo()                                  # back to the red car
    s.apply(editor, "add a hat on the man")   # a new branch; the removal is kept, not lost
    s.redo()                                  # nothing after the newest step: stays
    s.image()                                 # path of the current image

The history is a tree in the order the person acted: every step records its parent (the step
that was current when it was made), undo goes to the parent, redo to the newest child, and
applying after an undo starts a new branch beside the old one. A refinement ("make it darker",
"no, the other one") is computed from the picture before the step it refines (its `base`), yet
it is the next step after that one: undo after "make the car blue", "a bit darker" is the blue
car, not the red one. A session is a
folder: the upload as it came (`original.<ext>`), one lossless PNG per step (in the input's mode,
16 bits for 16-bit inputs) and its mask, and `session.json`. The step's files are written first
and `session.json` last, each through a temporary file and a rename, so a crash mid-edit leaves
the previous step intact and a restarted process finds every session as it was. Sessions expire
after `ttl_s` without use, and the oldest go first when the store passes `max_bytes`.

Several processes may share one store (the replicas of `lasso serve --ray`, on a shared disk): a
change takes the session folder's file lock and starts from what session.json says now, and a
session read by one process is read again once another has changed it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.errors import LassoError
from ..core.plan import EditPlan, Notice
from ..imaging import load_image, save_image, suffix_for, write_atomic
from ..pipeline.inputs import as_correction_map
from ..pipeline.outputs import write_and_prove
from .conversation import Context, Turn, resolve

if TYPE_CHECKING:
    from ..pipeline.result import EditResult

META = "session.json"
LOCK = ".lock"  # flock()ed while a process changes the session
BROWSER_FORMATS = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp"}
# secrets.token_urlsafe(16): 22 characters, 128 random bits. Always fullmatch()ed: match() with `$`
# let "<id>\n" through (`$` holds before a last line break), and a folder so named was a session.
_ID = re.compile(r"[A-Za-z0-9_-]{22,64}")


class SessionNotFoundError(LassoError):
    """No session with that id (never made, deleted or expired)."""

    exit_code = 2


@dataclass
class Step:
    """One applied edit. `parent` is the step it follows, the one current when it was made (0 = the
    original upload): undo goes back to it. `base` is the step whose picture the edit ran on, where
    that is another (a refinement runs on the picture before the step it refines); None: the parent."""

    id: int
    parent: int
    instruction: str
    image: str  # file name in the session folder
    mask: str
    plan: dict[str, Any]
    seed: int
    models: dict[str, str]
    timings: dict[str, float]
    warnings: list[str]  # the technical lines
    created: float
    corrections: dict[str, Any] = field(default_factory=dict)  # edit index -> Correction.to_dict(), as applied
    preservation: dict[str, Any] | None = None  # the step's image as written against its parent's (verify.py)
    boxes: list[list[float] | None] = field(default_factory=list)  # where each edit's target was found (XYXY)
    turn: dict[str, Any] | None = None  # a follow-up's reading (conversation.Turn: kind, said); None: standalone
    base: int | None = None  # the step whose picture it ran on, when not the parent (a refinement)
    warning_details: list[dict[str, Any]] = field(default_factory=list)  # each warning: code, text, plain words
    # the Content Credentials signed into the step's image: signer, local (Lasso's own identity), signed
    credentials: dict[str, Any] | None = None

    @property
    def made_from(self) -> int:
        """The step whose picture this one was computed from (its mask and proof are against it)."""
        return self.parent if self.base is None else self.base


@dataclass
class Session:
    id: str
    root: Path
    original: str  # file name of the upload
    created: float
    touched: float
    cursor: int = 0  # the current step; 0 = the original
    steps: list[Step] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _stamp: tuple = field(default=(), repr=False, compare=False)  # session.json's identity when last read

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """This process's lock, then the folder's (other processes sharing the store), then the
        state as session.json has it now: a change never starts from a stale copy."""
        with self._lock:
            try:
                fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                raise SessionNotFoundError(f"no session {self.id} (deleted or expired)") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if not (self.root / META).exists():  # deleted by another process meanwhile
                    raise SessionNotFoundError(f"no session {self.id} (deleted or expired)")
                _used(self.root)
                self.refresh()
                yield
            finally:
                os.close(fd)  # releases the flock

    def refresh(self) -> None:
        """Read session.json again if another process has changed it since this copy was read."""
        stamp = _identity(self.root / META)
        if stamp == self._stamp or not stamp:
            return
        try:
            d = json.loads((self.root / META).read_text())
        except (OSError, ValueError):
            return  # gone meanwhile: the next store.get says so
        self.cursor, self.touched = d["cursor"], d["touched"]
        self.steps = [Step(**x) for x in d["steps"]]
        self._stamp = stamp

    # ------------------------------------------------------------------ reading
    def step(self, n: int) -> Step | None:
        """Step `n` (None for 0, the original). Raises SessionNotFoundError for a step that is not there."""
        if n == 0:
            return None
        for s in self.steps:
            if s.id == n:
                return s
        raise SessionNotFoundError(f"session {self.id} has no step {n}")

    def image(self, step: int | None = None) -> Path:
        """The image at `step` (default: the current one)."""
        s = self.step(self.cursor if step is None else step)
        return self.root / (s.image if s else self.original)

    def view(self, step: int | None = None) -> Path:
        """The image at `step` in a format every browser shows: the file itself when it is PNG, JPEG,
        WebP, GIF or BMP, else (a TIFF upload, say) a PNG made once beside it (`original-view.png`)."""
        path = self.image(step)
        if path.suffix.lower() in BROWSER_FORMATS:
            return path
        out = self.root / "original-view.png"
        if not out.exists():
            save_image(load_image(path).original, out)
        return out

    def mask(self, step: int | None = None) -> Path | None:
        s = self.step(self.cursor if step is None else step)
        return self.root / s.mask if s else None

    def children(self, n: int) -> list[Step]:
        return [s for s in self.steps if s.parent == n]

    def path_to(self, n: int | None = None) -> list[Step]:
        """The steps from the original to step `n` (default: the current one), in order."""
        out, cur = [], self.cursor if n is None else n
        while cur:
            s = self._existing(cur)
            out.append(s)
            cur = s.parent
        return out[::-1]

    def _existing(self, n: int) -> Step:
        """Step `n`, which is not the original (0)."""
        s = self.step(n)
        if s is None:
            raise ValueError("step 0 is the original, not a step")
        return s

    @property
    def can_undo(self) -> bool:
        return self.cursor != 0

    @property
    def can_redo(self) -> bool:
        return bool(self.children(self.cursor))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "original": self.original,
            "created": self.created,
            "touched": self.touched,
            "cursor": self.cursor,
            "steps": [asdict(s) for s in self.steps],
        }

    # ------------------------------------------------------------------ changing
    def apply(
        self,
        editor: Callable[..., EditResult],
        instruction: str = "",
        *,
        on: int | None = None,
        turn: Turn | None = None,
        **kwargs: Any,
    ) -> Step:
        """Run `editor` on the current image (or step `on`'s) and make the result the new current step.

        `kwargs` go to the editor (seed, steps, guidance, strength, plan, corrections, progress); the
        corrections are recorded with the step. `turn`: the follow-up this step answers (recorded,
        and its instruction is what the editor reads; `instruction` stays the person's words; a
        revision runs on the picture the current step was made from, and follows the current step).
        Nothing changes on disk unless the edit and every write succeed."""
        with self._changing():  # the base is read here, under the lock: another process may have moved on
            base = self.cursor if on is None else on
            if turn is not None and turn.replaces_last and on is None:
                base = self.base_for(turn)
            self.step(base)  # raises for a step that is not there
            said = turn.instruction if turn is not None and turn.instruction else instruction
            result = editor(str(self.image(base)), said, **kwargs)
            fixes = as_correction_map(kwargs.get("corrections"))  # checked by the editor already
            n = max([s.id for s in self.steps], default=0) + 1
            after = self.cursor if on is None else on  # the step it follows in what the person did
            step = Step(
                id=n,
                parent=after,
                base=base if base != after else None,
                instruction=instruction or result.plan.instruction,
                image=f"step-{n}.png",
                mask=f"step-{n}-mask.png",
                plan=result.plan.to_dict(),
                seed=result.seed,
                models=dict(result.models),
                timings={k: round(v, 4) for k, v in result.timings.items()},
                warnings=[str(w) for w in result.warnings],
                warning_details=[Notice.of(w).to_dict() for w in result.warnings],
                created=time.time(),
                corrections={str(i): c.to_dict() for i, c in fixes.items()},
                boxes=[list(g.boxes[0]) if g is not None and len(g.boxes) == 1 else None for g in result.groundings],
                turn=_turn_record(turn, self.cursor),
            )
            # the step's files, proved as written; session.json, written after, is what makes it real
            write_and_prove(result, self.root / step.image, mask_out=self.root / step.mask)
            step.preservation = result.preservation
            step.credentials = result.credentials
            previous = self.cursor
            self.steps.append(step)
            self.cursor = n
            try:
                self._save()
            except BaseException:
                self.steps.pop()
                self.cursor = previous
                for name in (step.image, step.mask):
                    (self.root / name).unlink(missing_ok=True)
                raise
            return step

    # ------------------------------------------------------------------ conversation
    def context(self) -> Context | None:
        """What the current step did, for a follow-up to lean on (None at the original)."""
        current = self.step(self.cursor)
        if current is None:
            return None
        plan = EditPlan.from_dict(current.plan)
        boxes = [(b[0], b[1], b[2], b[3]) if b else None for b in current.boxes]
        return Context(current.instruction, plan.edits, boxes)

    def understand(self, words: str) -> Turn:
        """What `words` mean after the current step (conversation.resolve): no model, no change."""
        return resolve(words, self.context())

    def base_for(self, turn: Turn) -> int:
        """The step a turn's edit runs on: the current one, or for a revision the one the current
        step was made from (a revision of a revision still starts from the picture before both)."""
        if turn.replaces_last:
            current = self.step(self.cursor)
            return current.made_from if current is not None else 0
        return self.cursor

    def converse(self, editor: Callable[..., EditResult], words: str, **kwargs: Any) -> tuple[Turn, Step | None]:
        """Read `words` against the current step and do what they mean: a revision of the last edit
        (made from the picture before it, and the next step after it: undo comes back to it), the
        last action on a new target, an undo, or a new edit. A question (a reference with nothing to lean on) changes nothing.
        `kwargs` go to the editor; a `plan` among them (one the person previewed) is used as it is."""
        turn = self.understand(words)
        if turn.kind == "question":
            return turn, None
        if turn.kind == "undo":
            self.undo()
            return turn, None
        if kwargs.get("plan") is None and turn.plan is not None:
            kwargs["plan"] = turn.plan
        if turn.context and kwargs.get("plan") is None:
            kwargs["context"] = turn.context
        return turn, self.apply(editor, words, turn=turn, **kwargs)

    def undo(self) -> int:
        """Back to the parent of the current step; returns the new cursor (unchanged at the original)."""
        with self._changing():
            if self.cursor:
                self.cursor = self._existing(self.cursor).parent
                self._save()
            return self.cursor

    def redo(self) -> int:
        """Forward to the newest child of the current step; returns the new cursor (unchanged at a tip)."""
        with self._changing():
            kids = self.children(self.cursor)
            if kids:
                self.cursor = max(kids, key=lambda s: s.id).id
                self._save()
            return self.cursor

    def go(self, n: int) -> None:
        """Make step `n` current (any step of any branch; 0 = the original)."""
        with self._changing():
            self.step(n)
            self.cursor = n
            self._save()

    def _save(self) -> None:
        self.touched = time.time()
        data = json.dumps(self.to_dict(), indent=1).encode()
        write_atomic(self.root / META, lambda f: f.write(data))
        self._stamp = _identity(self.root / META)


def _turn_record(turn: Turn | None, current: int) -> dict[str, Any] | None:
    """What a step records of the follow-up it answers: its kind, how it was read, and for a revision
    the step it refines (`revises`: the one current then, which it follows)."""
    if turn is None or not turn.said:
        return None
    record: dict[str, Any] = {"kind": turn.kind, "said": turn.said}
    if turn.replaces_last:
        record["revises"] = current
    return record


def _identity(path: Path) -> tuple:
    """What changes whenever session.json is replaced (each write is a new file, renamed in)."""
    try:
        st = path.stat()
    except OSError:
        return ()
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class SessionStore:
    """Sessions under one folder, one subfolder each."""

    def __init__(self, root: str | Path, ttl_s: float = 7 * 24 * 3600, max_bytes: int = 20 * 2**30):
        self.root = Path(root).expanduser()
        self.root.mkdir(parents=True, exist_ok=True)
        self.ttl_s, self.max_bytes = ttl_s, max_bytes
        self._open: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, image: Any) -> Session:
        """A new session holding `image` (a path, kept byte for byte, or a PIL image / RGB array,
        kept as PNG). The image is checked as any input is; a bad one makes no session."""
        loaded = load_image(image)
        sid = secrets.token_urlsafe(16)
        folder = self.root / sid
        folder.mkdir()
        try:
            if loaded.path is not None:  # the suffix from what was decoded, never from the client's name
                original = f"original{suffix_for(loaded.format)}"
                data = loaded.path.read_bytes()
                write_atomic(folder / original, lambda f: f.write(data))
            else:
                original = "original.png"
                save_image(loaded.original, folder / original)
            (folder / LOCK).touch()  # there from the start: a session's files change only by its steps
            now = time.time()
            session = Session(id=sid, root=folder, original=original, created=now, touched=now)
            session._save()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with self._lock:
            self._open[sid] = session
        self.sweep(keep=sid)
        return session

    def get(self, sid: str) -> Session:
        """The session `sid`, from memory or from disk (a use: the sweep's clock for it starts again).
        Raises SessionNotFoundError."""
        if not isinstance(sid, str) or not _ID.fullmatch(sid):  # also: no path ever built from a bad id
            raise SessionNotFoundError("no such session")
        _used(self.root / sid)
        with self._lock:
            if sid in self._open and (self.root / sid / META).exists():
                session = self._open[sid]
                session.refresh()  # another process sharing the store may have changed it
                return session
            meta = self.root / sid / META
            try:
                d = json.loads(meta.read_text())
            except (OSError, ValueError):
                self._open.pop(sid, None)
                raise SessionNotFoundError(f"no session {sid} (deleted or expired)") from None
            session = Session(
                id=d["id"],
                root=self.root / sid,
                original=d["original"],
                created=d["created"],
                touched=d["touched"],
                cursor=d["cursor"],
                steps=[Step(**s) for s in d["steps"]],
            )
            session._stamp = _identity(meta)
            self._open[sid] = session
            return session

    def delete(self, sid: str) -> None:
        """Remove the session, once a change running on it (in any process) has finished."""
        session = self.get(sid)  # validates the id; raises if absent
        with self._lock:
            self._open.pop(sid, None)
        with session._changing():  # a change waiting for it then finds no session, not half a folder
            shutil.rmtree(self.root / sid, ignore_errors=True)

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The `limit` sessions used last, newest first: id, created, touched, cursor, steps and the
        current step's instruction (what a list of recent photos shows)."""
        found = []
        for sid in self.ids():
            try:
                d = json.loads((self.root / sid / META).read_text())
                touched = max(d["touched"], (self.root / sid / LOCK).stat().st_mtime)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            current = next((s for s in d["steps"] if s["id"] == d["cursor"]), None)
            found.append(
                {
                    "id": sid,
                    "created": d["created"],
                    "touched": touched,
                    "cursor": d["cursor"],
                    "steps": len(d["steps"]),
                    "instruction": current["instruction"] if current else None,
                }
            )
        return sorted(found, key=lambda x: -x["touched"])[:limit]

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if _ID.fullmatch(p.name) and (p / META).exists())

    def sweep(self, now: float | None = None, keep: str | None = None) -> list[str]:
        """Delete sessions unused for ttl_s, then the least recently used while the store is over
        max_bytes (never `keep`), and leftovers of interrupted writes. Returns the ids deleted."""
        now = time.time() if now is None else now
        found = []
        for sid in self.ids():
            folder = self.root / sid
            for tmp in folder.glob(".*.tmp"):  # a write that never finished
                tmp.unlink(missing_ok=True)
            try:
                touched = json.loads((folder / META).read_text())["touched"]
                touched = max(touched, (folder / LOCK).stat().st_mtime)  # read or edit begun since
            except (OSError, ValueError, KeyError, TypeError):
                continue
            size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
            found.append((touched, sid, size))
        gone = [sid for touched, sid, _ in found if now - touched > self.ttl_s and sid != keep]
        kept = sorted((t, s, b) for t, s, b in found if s not in gone and s != keep)
        total_keep = sum(b for _, s, b in found if s == keep)
        total = sum(b for _, _, b in kept) + total_keep
        while kept and total > self.max_bytes:
            _, sid, size = kept.pop(0)
            gone.append(sid)
            total -= size
        removed = []
        for sid in gone:
            with _unless_in_use(self.root / sid) as free:
                if not free:
                    continue  # a change holds it (an edit being applied): it stays, touched when that ends
                with self._lock:
                    self._open.pop(sid, None)
                shutil.rmtree(self.root / sid, ignore_errors=True)
                removed.append(sid)
        return removed


def _used(folder: Path) -> None:
    """Mark the session as used now (its lock file's time; session.json changes only with its steps)."""
    try:
        os.utime(folder / LOCK)
    except OSError:
        pass  # gone, or never made: get() and _changing() say so


@contextlib.contextmanager
def _unless_in_use(folder: Path) -> Iterator[bool]:
    """Yields True with the session folder's lock held (no change can start meanwhile), or False
    at once when a change (in any process) holds it."""
    try:
        fd = os.open(folder / LOCK, os.O_RDWR)
    except OSError:
        yield True  # no lock file: a folder left half-made; nothing can be using it
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
