"""Typed plans, groundings and segmentations, with a JSON round trip (the result: pipeline/result.py).

Conventions (see docs/design.md): boxes are XYXY in pixels of the original image, float;
masks are bool HxW; images are RGB uint8 HxWx3 inside the library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

from .actions import spec

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


Box = tuple[float, float, float, float]


class Action(str, Enum):
    """The actions, one member per spec in actions/specs.py (a test holds the two equal)."""

    RECOLOR = "recolor"  # change the colour of an object, keep its shape and texture
    REPLACE = "replace"  # paint something else in the object's place
    REMOVE = "remove"  # erase the object, fill with what is behind it
    BACKGROUND = "background"  # repaint everything but the subject
    ADD = "add"  # paint a new object near an anchor
    STYLE = "style"  # a whole-image change ("make it look like winter")
    ADJUST = "adjust"  # a deterministic filter: blur, pixelate, brightness, contrast, exposure, saturation

    @property
    def needs_value(self) -> bool:
        return spec(self).needs_value


class Notice(str):
    """A warning about an edit, made where it arises. The string itself is the technical line (what
    `lasso edit` prints and a `warnings` list holds, so any code that takes a str takes it); `code`
    names what happened, for a surface to key on ("not_found", "large_mask", ...); `plain` says it
    in words a person who knows no model names reads; `edit` is the index of the edit it is about."""

    code: str
    plain: str
    edit: int | None

    def __new__(cls, text: str, code: str = "note", plain: str | None = None, edit: int | None = None) -> Notice:
        self = super().__new__(cls, text)
        self.code, self.plain, self.edit = code, plain or text, edit
        return self

    @classmethod
    def of(cls, warning: str, edit: int | None = None) -> Notice:
        """`warning` as a Notice (a plain string: code "note", its words its own), about `edit` when
        it names none yet."""
        n = warning if isinstance(warning, Notice) else cls(warning)
        if n.edit is None and edit is not None:
            n = cls(str(n), n.code, n.plain, edit)
        return n

    @property
    def label(self) -> str:
        """How a command line prefixes it: "note" for a fact of the setup (random models), no fault."""
        return "note" if self.code in NOTES else "warning"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "text": str(self), "plain": self.plain, "edit": self.edit}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | str) -> Notice:
        """From `to_dict()` (an API answer's `warning_details`), or from a plain string."""
        if isinstance(d, str):
            return cls(d)
        return cls(str(d.get("text", "")), str(d.get("code") or "note"), d.get("plain"), d.get("edit"))


NOTES = {"random_weights"}  # codes that are facts to know, not warnings


@dataclass
class Edit:
    """One change the instruction asks for."""

    action: Action
    target: str | None  # the bare noun phrase of the object edited ("car"); None for style edits
    value: str | None = None  # new colour / object / background / style as the user wrote it
    qualifier: str | None = None  # spatial choice among instances: "left", "second from the left", "largest"
    relation: str | None = None  # context that is not the target: "on the table"
    select_all: bool = False  # "all the cars": every matching instance
    subject: str | None = None  # background edits: the foreground kept ("dog"); None = the main subject
    box: Box | None = None  # a hint from the VLM, XYXY pixels of the original image
    prompt: str | None = None  # text for the inpainter; built from action/value when None
    negative_prompt: str | None = None
    strength: float | None = None  # style edits: how far from the original (0..1)
    each: bool = False  # add edits with several anchors: one new object per anchor, not one for the group
    avoid: Box | None = None  # an instance not to choose ("no, the other one"): XYXY pixels of the one edited before

    def __post_init__(self) -> None:
        from .errors import InvalidInputError

        try:
            self.action = Action(self.action)
        except ValueError:
            known = ", ".join(a.value for a in Action)
            raise InvalidInputError(f"unknown action {self.action!r}; one of: {known}") from None
        for name in ("box", "avoid"):
            given = getattr(self, name)
            if given is None:
                continue
            try:
                box = tuple(float(v) for v in given)
            except (TypeError, ValueError):
                box = ()
            if len(box) != 4:
                raise InvalidInputError(f"{name} must be four numbers (x0, y0, x1, y1), got {given!r}")
            setattr(self, name, box)

    @property
    def mask_action(self) -> Action:
        """How this edit is grounded and masked: its own action, or the one its spec's `mask_as`
        names (an adjustment masks as a style, background or recolour edit, by its target)."""
        how = spec(self.action).mask_as
        return self.action if how is None else Action(how(self))

    @property
    def region(self) -> str:
        """What its mask covers, by the spec of its mask action (actions/spec.py): "whole" (the
        photo), "inverse" (all but a subject), "tight" or "grown" (an object, edge or dilated)."""
        return spec(self.mask_action).refine

    @property
    def anchored(self) -> bool:
        """Its target is an anchor the new object goes near (add), not what is painted."""
        return spec(self.action).anchored

    def describe(self) -> str:
        """The edit as a short sentence: "make the car (left) red", "remove all the wheels"."""
        what = f"the {self.target}" if self.target else "the image"
        if self.select_all and self.target:
            noun = self.target if self.target.endswith("s") else self.target + "s"
            what = f"all the {noun}"
        if self.qualifier:
            what = f"{what} ({self.qualifier})"
        return spec(self.action).sentence(self, what, self.value or "?")

    def brief(self) -> dict[str, Any]:
        """What `lasso plan --json` and the API's plan show of an edit."""
        d = self.to_dict()
        return {k: d[k] for k in ("action", "target", "value", "qualifier", "relation", "select_all", "subject", "box")}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["action"] = self.action.value
        d["box"] = list(self.box) if self.box is not None else None
        d["avoid"] = list(self.avoid) if self.avoid is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Edit:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass
class EditPlan:
    """What Lasso understood: the edits, in the order they run, and where the plan came from."""

    edits: list[Edit]
    instruction: str = ""
    source: str = ""  # "vlm", "rules", or "rules (fallback)"
    raw_answer: str | None = None  # the VLM's text, kept for debugging
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instruction": self.instruction,
            "source": self.source,
            "edits": [e.to_dict() for e in self.edits],
            "warnings": list(self.warnings),
            "warning_details": [Notice.of(w).to_dict() for w in self.warnings],  # each with its code
            "raw_answer": self.raw_answer,
        }

    def brief(self, groundings: list[Grounding | None] | None = None) -> dict[str, Any]:
        """The plan as `lasso plan --json` prints it (and the MCP tool `plan_edit` answers): the
        edits, where the plan came from, its warnings, and the groundings when there are any."""
        out: dict[str, Any] = {
            "edits": [e.brief() for e in self.edits],
            "source": self.source,
            "warnings": self.warnings,
        }
        if groundings is not None:
            out["groundings"] = [g.to_dict() if g else None for g in groundings]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EditPlan:
        return cls(
            edits=[Edit.from_dict(e) for e in d.get("edits", [])],
            instruction=d.get("instruction", ""),
            source=d.get("source", ""),
            raw_answer=d.get("raw_answer"),
            warnings=_warnings_of(d),
        )


def _warnings_of(d: dict[str, Any]) -> list[str]:
    """A plan's or result's warnings from JSON, as Notices again where `warning_details` has them."""
    said, details = list(d.get("warnings") or []), d.get("warning_details") or []
    if details and len(details) == len(said):
        return [Notice.from_dict(x) for x in details]
    return said


@dataclass
class Correction:
    """A person's fix of one edit's mask (the page's clicks, the API's `corrections`).

    `points`: XY pixels of the image, each with a label in `labels` (1 = part of the object,
    0 = not); they join the box prompts SAM is given. `box`: XYXY pixels that replace the
    grounded boxes (and so also stand in when nothing was found). `candidate`: which of SAM's
    candidate masks to keep instead of the best-scored one (0, 1 or 2).

    `mask`: the pixels the edit may change, drawn by a person (bool HxW, the image's size, in its
    frame as loaded: EXIF orientation applied; an OpenAI mask's transparent pixels). It replaces
    grounding and segmentation for that edit, and refining never grows it: the region is the mask
    as it is, its feather ramps inward (`refine.within`), so every pixel where it is False stays
    bit-identical whatever the action. It takes no points, box or candidate beside it.

        editor(image, plan=plan, corrections=Correction(mask=drawn))
    """

    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: Box | None = None
    candidate: int | None = None
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)  # an array has no one truth value

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None and self.candidate is None and self.mask is None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "points": [list(p) for p in self.points],
            "labels": list(self.labels),
            "box": list(self.box) if self.box is not None else None,
            "candidate": self.candidate,
        }
        if self.mask is not None:  # the pixels are the step's region; the record says how many there were
            out["mask_pixels"] = int(self.mask.sum())
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Correction:
        """From JSON, checked: raises `InvalidInputError` naming what is wrong (bounds are
        checked against the image by `inputs.check_corrections`)."""
        from .errors import InvalidInputError

        if not isinstance(d, dict):
            raise InvalidInputError(f"a correction must be an object with points, labels, box or candidate; got {d!r}")
        unknown = set(d) - {"points", "labels", "box", "candidate", "edit"}
        if unknown:
            raise InvalidInputError(
                f"a correction has no field {sorted(unknown)[0]!r}; use points, labels, box, candidate (and edit)"
            )

        def number(v: object) -> float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidInputError(f"correction coordinates must be numbers, got {v!r}")
            return float(v)

        points = d.get("points") or []
        labels = d.get("labels")
        if not isinstance(points, list) or any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in points):
            raise InvalidInputError(f"correction points must be a list of [x, y] pairs, got {points!r}")
        pts = [(number(x), number(y)) for x, y in points]
        if labels is None:
            labels = [1] * len(pts)
        if (
            not isinstance(labels, list)
            or len(labels) != len(pts)
            or any(v not in (0, 1) or isinstance(v, bool) for v in labels)
        ):
            raise InvalidInputError(
                f"correction labels must be one 1 (keep) or 0 (leave out) per point, got {labels!r}"
            )
        box = d.get("box")
        if box is not None:
            if not isinstance(box, (list, tuple)) or len(box) != 4:
                raise InvalidInputError(f"a correction box must be four numbers (x0, y0, x1, y1), got {box!r}")
            box = tuple(number(v) for v in box)
        cand = d.get("candidate")
        if cand is not None and (isinstance(cand, bool) or not isinstance(cand, int) or cand < 0):
            raise InvalidInputError(f"a correction's candidate must be a mask index (0, 1, 2), got {cand!r}")
        return cls(points=pts, labels=[int(v) for v in labels], box=box, candidate=cand)


@dataclass
class Grounding:
    """Where an edit's target is: one box per selected instance, XYXY pixels of the original image."""

    boxes: list[Box]
    scores: list[float]
    source: str  # "vlm", "detector", "detector+vlm", "detector+attention", "attention", "whole-image", "user"
    candidates: list[Box] = field(default_factory=list)  # every detection considered, for the UI
    candidate_scores: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Point prompts for SAM, XY pixels, with labels (1 = on the object, 0 = not): the attention peaks.
    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    heatmap: Any = None  # ground.attention.Heatmap: where the VLM looked, when attention was read
    attention: list[float] = field(default_factory=list)  # each candidate's share of the heat (auto's tie-break)
    # The chosen instances' own masks (bool HxW), when the grounder segments too (SAM 3's concept
    # search): the segmenter takes them as they are. Not in to_dict (the masks are the steps').
    masks: list[Any] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "boxes": [list(b) for b in self.boxes],
            "scores": list(self.scores),
            "source": self.source,
            "candidates": [list(b) for b in self.candidates],
            "candidate_scores": list(self.candidate_scores),
        }
        if self.points:
            out["points"] = [list(p) for p in self.points]
            out["labels"] = list(self.labels)
        if self.attention:
            out["candidate_attention"] = list(self.attention)
        if self.heatmap is not None:
            out["attention_layers"] = list(self.heatmap.layers)
        return out


@dataclass
class Segmentation:
    """The segmenter's answer for one grounding: the chosen mask and the alternatives it weighed."""

    mask: np.ndarray  # bool HxW, the union over the grounding's boxes of the best candidate each
    score: float  # predicted IoU of the chosen candidate (mean over boxes)
    candidates: Sequence[np.ndarray] = field(default_factory=list)  # bool HxW each, SAM's alternatives
    candidate_scores: list[float] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    chosen: int | None = None  # the index of `mask` among `candidates` (per box; the first box's)
