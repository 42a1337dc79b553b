"""What `lasso mcp` offers an assistant, without MCP itself: plan, edit, contain another editor's
output, and sessions with undo and redo, on images given as a path or a data URL. `mcp_server.py`
puts these behind MCP's tools; the answers here are plain (text, an image's bytes, a record), so
they are tested without a client.

    tools = Tools(EditorConfig(preset="tiny"), FilePolicy.unrestricted(), sessions="~/.cache/lasso/mcp")
    tools.plan("photo.jpg", "make the car red")          # the plan, as `lasso plan --json` prints it
    a = tools.edit("data:image/png;base64,...", "remove the dog", output="out.png")
    a.text, a.image, a.mime                              # one line; the edited image's bytes; its type
    tools.contain("photo.jpg", "their_edit.png")         # another editor's output, kept inside its region

One editor is built on first use and kept (models load once per server); edits run one at a time.
Over HTTP (`FilePolicy.inside(root)`, or `FilePolicy()`: data URLs only), paths a caller names must lie inside
the root: a remote assistant reads and writes only where the person running the server said.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..core.config import EditorConfig
from ..core.errors import InvalidInputError
from ..core.uris import is_data_url
from ..imaging import check_outputs, format_of, load_image, output_mode
from .session import Session, SessionStore

if TYPE_CHECKING:
    from ..pipeline.editor import Editor
    from ..pipeline.result import EditResult

PREVIEW_SIDE = 2048  # an image answered larger than this on its long side comes back scaled down
MAX_DATA_URL_BYTES = 64 * 2**20  # decoded bytes of one data URL
MAX_PATH_BYTES = 4096  # a path a caller names, encoded (Linux's PATH_MAX)
MAX_NAME_BYTES = 255  # one file or folder name in it (NAME_MAX)
SHOWN = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.I)


@dataclass(frozen=True)
class FilePolicy:
    """Which paths a caller may name. `root` None and `anywhere` True: any (stdio, the user's own
    process, like the CLI); `root` set: only inside it; neither: none (data URLs only)."""

    root: Path | None = None
    anywhere: bool = False

    @classmethod
    def unrestricted(cls) -> FilePolicy:
        return cls(anywhere=True)

    @classmethod
    def inside(cls, root: str | Path) -> FilePolicy:
        return cls(root=Path(root).expanduser().resolve())

    def check(self, path: str, what: str) -> Path:
        """`path` as a Path the caller may use for `what` ("image", "output"); InvalidInputError if not:
        a path no file could have (not text, a NUL byte, too long) is said so before the file system sees it."""
        _path_text(path, what)
        p = Path(path).expanduser()
        if self.anywhere:
            return p
        if self.root is None:
            raise InvalidInputError(
                f"this server takes no file paths (the {what} {path!r}): send the image as a data URL, "
                "or start it with --files DIR to allow paths inside DIR"
            )
        joined = p if p.is_absolute() else self.root / p
        _path_text(str(joined), what)
        full = joined.resolve()
        if not full.is_relative_to(self.root):
            raise InvalidInputError(f"the {what} {path!r} is outside the folder this server may use ({self.root})")
        return full


def _path_text(path: object, what: str) -> None:
    """InvalidInputError when `path` could name no file: not text, a NUL byte, text a file name cannot
    hold (a lone surrogate), longer than MAX_PATH_BYTES, or a name in it longer than MAX_NAME_BYTES."""
    if not isinstance(path, str):
        raise InvalidInputError(f"the {what} must be a path (text), not {type(path).__name__}")
    if "\x00" in path:
        raise InvalidInputError(f"the {what} path contains a NUL byte: no file is named so")
    try:
        raw = os.fsencode(path)
    except UnicodeError:
        raise InvalidInputError(f"the {what} path holds text no file name can (a lone surrogate)") from None
    if len(raw) > MAX_PATH_BYTES:
        raise InvalidInputError(f"the {what} path is {len(raw)} bytes long; a path holds at most {MAX_PATH_BYTES}")
    seps = re.escape((os.sep + (os.altsep or "")).encode())
    longest = max(len(name) for name in re.split(b"[" + seps + b"]", raw))
    if longest > MAX_NAME_BYTES:
        raise InvalidInputError(
            f"the {what} path has a name {longest} bytes long; a file or folder name holds at most {MAX_NAME_BYTES}"
        )


@dataclass
class Answer:
    """One tool's result: a line of text, optionally an image (its bytes and MIME type), and the
    record behind the line (a plan, a step)."""

    text: str
    image: bytes | None = None
    mime: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[str], None]


class Tools:
    """The tools of `lasso mcp`. `config`: the editor every tool uses (built once, on first use);
    `files`: which paths callers may name; `sessions`: the folder sessions live in; `editor`: one
    already built (the Python API's, a test's) instead of building it from `config`."""

    def __init__(self, config: EditorConfig, files: FilePolicy, sessions: str | Path, editor: Editor | None = None):
        self.config = config
        self.files = files
        self.store = SessionStore(sessions)
        self._editor = editor
        self._lock = threading.Lock()  # one edit at a time: the models are shared
        self._work = tempfile.TemporaryDirectory(prefix="lasso-mcp-")  # decoded data URLs, unsaved results

    @property
    def work_dir(self) -> Path:
        """This server's own folder: decoded data URLs, results not asked to be kept. Gone on close()."""
        return Path(self._work.name)

    def close(self) -> None:
        self._work.cleanup()

    @property
    def editor(self) -> Editor:
        if self._editor is None:
            from ..pipeline.editor import Editor

            self._editor = Editor.from_config(self.config)
        return self._editor

    # ------------------------------------------------------------------ images in
    def image_path(self, image: str, what: str = "image") -> Path:
        """A path the caller may read, or a data URL decoded into this server's own folder."""
        if not isinstance(image, str) or not image.strip():
            raise InvalidInputError(f"no {what}: give a path or a data URL (data:image/png;base64,...)")
        if is_data_url(image):
            return self._decode_data_url(image)
        return self.files.check(image, what)

    def _decode_data_url(self, url: str) -> Path:
        m = _DATA_URL.match(url[:300])
        if m is None:
            raise InvalidInputError("a data URL must be base64: data:image/png;base64,...")
        text = url[m.end() :]
        if len(text) > MAX_DATA_URL_BYTES * 4 // 3 + 4:
            raise InvalidInputError(f"the data URL holds more than {MAX_DATA_URL_BYTES // 2**20} MiB")
        try:
            data = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInputError("the data URL's base64 is not valid") from None
        if not data:
            raise InvalidInputError("the data URL holds no bytes")
        fd, name = tempfile.mkstemp(dir=self.work_dir, prefix="upload-")
        with open(fd, "wb") as f:
            f.write(data)
        return Path(name)

    # ------------------------------------------------------------------ tools
    def plan(self, image: str, instruction: str) -> Answer:
        """What Lasso understood, without painting: the plan as `lasso plan --json` prints it."""
        from ..pipeline.inputs import check_inputs

        loaded = check_inputs(self.image_path(image), instruction).loaded
        with self._lock:
            plan = self.editor.parser.parse(loaded.rgb, instruction)
        record = plan.brief()
        return Answer(json.dumps(record, indent=2), data=record)

    def edit(
        self,
        image: str,
        instruction: str,
        output: str | None = None,
        seed: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        strength: float | None = None,
        progress: Progress | None = None,
    ) -> Answer:
        """Edit `image` as `instruction` says; the result is written to `output` when given (else kept
        only in the answer), with its proof of what changed outside the mask."""
        from ..pipeline.inputs import check_inputs
        from ..pipeline.outputs import write_and_prove

        source = self.image_path(image)
        checked = check_inputs(
            source,
            instruction,
            seed=seed,
            steps=steps,
            guidance=guidance,
            strength=0.65 if strength is None else strength,
        )
        loaded = checked.loaded
        out = self._output(output, image, "edit", "edited")
        check_outputs(out, None, None, source, mode=output_mode(loaded), size=loaded.size)
        with self._lock:
            result = self.editor(
                loaded,
                instruction,
                progress=progress,
                seed=checked.seed,
                steps=checked.steps,
                guidance=checked.guidance,
                strength=checked.strength,
            )
            warnings = list(result.warnings) + write_and_prove(result, out)
        summary = result.summary()
        text = _summary_line(summary) + (f"; wrote {out}" if output is not None else "")
        text += "".join(f"\nwarning: {w}" for w in dict.fromkeys(warnings))
        data, mime, note = _shown(out)
        if output is None:
            out.unlink(missing_ok=True)
        return Answer(text + note, data, mime, {**summary, "output": str(out) if output is not None else None})

    def contain(self, original: str, edited: str, mask: str | None = None, output: str | None = None) -> Answer:
        """Another editor's output (`edited`) put back into `original` so only its region changes, as
        `lasso contain` does: aligned, its colour drift undone, pasted inside `mask` (a path or data URL;
        without one, what changed). No model is needed, so no edit waits and none is loaded. The record
        has `lasso contain --json`'s keys; a data URL is named None in it (its text is the image)."""
        from ..pipeline.contain import contain as put_back
        from ..pipeline.outputs import write_and_prove

        source, other = self.image_path(original), self.image_path(edited)
        region = self.image_path(mask, "mask") if mask is not None else None
        out = self._output(output, original, "contain", "contained")
        try:
            check_outputs(out, None, None, source, other, region)  # before any work: never an input
            before = load_image(source)
            check_outputs(out, None, None, source, other, region, mode=output_mode(before), size=before.size)
            result, report = put_back(before, other, region)
            warnings = list(dict.fromkeys(list(result.warnings) + write_and_prove(result, out)))
            data, mime, note = _shown(out)
        finally:
            if output is None:
                out.unlink(missing_ok=True)
        record = {
            **{k: None if is_data_url(v) else v for k, v in (("original", original), ("edited", edited))},
            "output": str(out) if output is not None else None,
            **report,
            "warnings": warnings,
            **(result.preservation or {}),
        }
        text = _contained_line(record) + (f"; wrote {out}" if output is not None else "")
        text += "".join(f"\nwarning: {w}" for w in warnings)
        return Answer(text + note, data, mime, record)

    def _output(self, output: str | None, image: str, tool: str, tag: str) -> Path:
        """Where a result is written: `output` (a file; a folder: named after the input file,
        `NAME-{tag}.png`), else a file of this server's own (`{tool}-*.png`), for the answer only."""
        if output is None:
            return Path(tempfile.mkstemp(dir=self.work_dir, prefix=f"{tool}-", suffix=".png")[1])
        out = self.files.check(output, "output")
        if out.is_dir():  # a data URL's text names nothing
            out = out / f"{'image' if is_data_url(image) else Path(image).stem}-{tag}.png"
        return out

    def open_session(self, image: str) -> Answer:
        session = self.store.create(self.image_path(image))
        return self._session_answer(session, f"session {session.id} opened on a {_size(session.image())} image")

    def session_edit(self, sid: str, instruction: str, progress: Progress | None = None) -> Answer:
        """Apply `instruction` to the session's current image, read against the last edit as the page
        reads it ("make it darker", "no, the other one", "undo that and try green", "and the bike
        too"). A reference with nothing to lean on is answered with a question and changes nothing."""
        session = self.store.get(sid)
        turn, step = session.converse(self._edit_in_turn, instruction, progress=progress)
        if turn.kind == "question":
            return Answer(f"question: {turn.question}", data={"session": sid, "question": turn.question})
        if step is None:  # "undo", said in words
            return self._session_answer(session, f"undid the last edit; now at {_where(session.cursor)}")
        line = f"step {step.id}: {turn.said or '; '.join(_edit_words(step.plan))}; seed {step.seed}"
        if step.preservation:
            from ..imaging.verify import line_of

            line += f"; {line_of(step.preservation)}"
        return self._session_answer(session, line)

    def _edit_in_turn(self, *args: Any, **kwargs: Any) -> EditResult:
        """The editor, called while no other edit runs (the models are shared). Only the painting
        waits for the lock: reading a follow-up needs no model, so a slow one holds up no other tool."""
        with self._lock:
            return self.editor(*args, **kwargs)

    def undo(self, sid: str) -> Answer:
        session = self.store.get(sid)
        before = session.cursor
        now = session.undo()
        said = "nothing to undo: this is the original" if now == before else f"undid step {before}"
        return self._session_answer(session, f"{said}; now at {_where(now)}")

    def redo(self, sid: str) -> Answer:
        session = self.store.get(sid)
        before = session.cursor
        now = session.redo()
        said = f"nothing to redo after {_where(now)}" if now == before else f"redid step {now}"
        return self._session_answer(session, said)

    def _session_answer(self, session: Session, said: str) -> Answer:
        current = session.step(session.cursor)
        data, mime, note = _shown(session.image())
        record = {
            "session": session.id,
            "cursor": session.cursor,
            "can_undo": session.can_undo,
            "can_redo": session.can_redo,
            "instruction": current.instruction if current else None,
        }
        return Answer(said + note, data, mime, record)


def _summary_line(summary: dict) -> str:
    """One line: what was changed, in how many pixels, the seed, and the proof."""
    parts = [f"{s['edit']} ({s['pixels']} px)" for s in summary.get("steps", [])]
    line = "; ".join(parts) or "nothing changed"
    line += f"; seed {summary.get('seed')}"
    proof = summary.get("preservation")
    if proof:
        from ..imaging.verify import line_of

        line += f"; {line_of(proof)}"
    return line


def _contained_line(record: dict[str, Any]) -> str:
    """One line for contain: the alignment found, the colour undone, the region, and the proof."""
    a, c = record["alignment"], record["colour"]
    dx, dy = a["shift"]
    line = (
        f"aligned EDITED ({_wxh(a['edited_size'])}) on ORIGINAL ({_wxh(a['original_size'])}): scale {a['scale']:.4f}, "
        f"shift {dx:+.2f}, {dy:+.2f} px, rotation {a['rotation']:+.3f} deg; colour undone: gain "
        + " ".join(f"{g:.3f}" for g in c["gain"])
        + ", offset "
        + " ".join(f"{b:+.1f}" for b in c["offset"])
        + f" (R G B); region {record['region_px']:,} px "
        + ("(the mask given)" if record["region_from"] == "mask" else "(what changed)")
    )
    if "identical_outside" in record:
        from ..imaging.verify import line_of

        line += f"; {line_of(record)}"
    return line


def _wxh(size: list[int]) -> str:
    return f"{size[0]}x{size[1]}"


def _where(cursor: int) -> str:
    return f"step {cursor}" if cursor else "the original"


def _edit_words(plan: dict) -> list[str]:
    from ..core.plan import EditPlan

    return [e.describe() for e in EditPlan.from_dict(plan).edits] or ["nothing changed"]


def _size(path: Path) -> str:
    w, h = load_image(path).size
    return f"{w}x{h}"


def _shown(path: Path) -> tuple[bytes, str, str]:
    """The image at `path` as an assistant can show it: the file's own bytes when it is PNG, JPEG,
    WebP or GIF and no larger than PREVIEW_SIDE, else a PNG scaled to fit (and a note saying so)."""
    fmt = format_of(path)
    loaded = load_image(path)
    w, h = loaded.size
    if fmt in SHOWN and max(w, h) <= PREVIEW_SIDE and loaded.mode in ("RGB", "RGBA", "L", "P", "LA"):
        return path.read_bytes(), SHOWN[fmt], ""
    from PIL import Image

    img = Image.fromarray(loaded.rgb)
    note = ""
    if max(w, h) > PREVIEW_SIDE:
        img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
        note = f" (shown scaled to {img.width}x{img.height}; the image is {w}x{h})"
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue(), "image/png", note
