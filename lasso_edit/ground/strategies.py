"""Step 3, ground: (image, edit) -> Grounding, or TargetNotFoundError. Three strategies:

- `vlm`: the box the VLM gave in its plan (already mapped to original pixels through the
  processor's frame, see geometry.py). Without one, the documented fallback is the whole image
  as SAM's box prompt, which segments the dominant object; the grounding carries a warning.
- `detector`: an open-vocabulary detector (OWLv2 / Grounding DINO) finds every instance of the
  target phrase; spatial words, "all", relations and scores choose among them (select.py).
  Nothing above the threshold -> TargetNotFoundError: never paint the wrong thing.
- `attention`: where the VLM looked when it read the target's name (attention.py): SAM gets the
  peaks as positive points, the coldest places as negative ones, and the hot region's box.
- `auto` (default): the detector; when it finds several candidates and the instruction picks
  none, the one with the most of the VLM's attention wins (if the VLM is loaded; otherwise the
  VLM's box breaks the tie); if the detector finds nothing, the VLM's box alone; if neither sees
  the target, TargetNotFoundError.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import TargetNotFoundError
from ..core.plan import Box, Edit, Grounding, Notice
from .select import iou, nms, select, set_aside

if TYPE_CHECKING:
    from ..core.stages import Models
    from ..parse.loop import VisionLanguageModel
    from .attention import AttentionSettings
    from .detector import Detector


def whole_image(image: np.ndarray) -> Box:
    return 0.0, 0.0, float(image.shape[1]), float(image.shape[0])


def query_phrase(edit: Edit) -> str | None:
    """The phrase to find: the target, or for a background edit the subject kept (None = main subject)."""
    if edit.region == "inverse":
        return edit.subject
    return edit.target


WORN_ON_HEAD = {
    "hat",
    "cap",
    "crown",
    "helmet",
    "wig",
    "hood",
    "halo",
    "tiara",
    "beanie",
    "headband",
    "horns",
    "top hat",
    "cowboy hat",
    "party hat",
    "santa hat",
    "flower crown",
    "bow",
}
WORN_ON_FACE = {"glasses", "sunglasses", "mask", "mustache", "moustache", "beard", "eyepatch", "monocle", "goggles"}


def placement(anchor: Box | None, relation: str | None, image_size: tuple[int, int], new: str | None = None) -> Box:
    """Where to paint a new object for an `add` edit, relative to its anchor's box.

    Things worn on the head ("a hat on the man") go over the top of the anchor's box, things worn
    on the face a little below its top, both about head-sized for a standing figure. Otherwise:
    "on" a small anchor: over its top; "on"/"in" a large anchor: inside it ("a boat on the
    lake"); "next to"/"beside"/"near"/"by": beside it, on the side with more room;
    "under"/"below": beneath; "above"/"over": above; no anchor: the centre of the image.
    """
    w, h = image_size
    if anchor is None:
        return w / 3, h / 3, 2 * w / 3, 2 * h / 3
    x0, y0, x1, y1 = anchor
    bw, bh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    rel = (relation or "on").lower()
    large = bw * bh > 0.25 * w * h
    item = (new or "").lower().strip()
    item = item[:-1] if item.endswith("s") and item[:-1] in WORN_ON_HEAD else item
    if rel in ("on", "onto", "on top of") and item in WORN_ON_HEAD:
        box = (cx - 0.25 * bw, y0 - 0.08 * bh, cx + 0.25 * bw, y0 + 0.12 * bh)
    elif rel in ("on", "onto") and item in WORN_ON_FACE:
        box = (cx - 0.2 * bw, y0 + 0.05 * bh, cx + 0.2 * bw, y0 + 0.15 * bh)
    elif rel in ("on", "onto", "on top of") and not large:
        box = (cx - 0.3 * bw, y0 - 0.2 * bh, cx + 0.3 * bw, y0 + 0.25 * bh)
    elif rel in ("above", "over"):
        box = (cx - 0.35 * bw, y0 - 0.5 * bh, cx + 0.35 * bw, y0)
    elif rel in ("under", "below", "beneath", "underneath"):
        box = (cx - 0.35 * bw, y1, cx + 0.35 * bw, y1 + 0.4 * bh)
    elif rel in ("next to", "beside", "near", "by", "around"):
        right = (w - x1) >= x0
        box = (x1, y0 + 0.2 * bh, x1 + 0.6 * bw, y1) if right else (x0 - 0.6 * bw, y0 + 0.2 * bh, x0, y1)
    elif rel == "in front of":
        box = (cx - 0.3 * bw, y0 + 0.5 * bh, cx + 0.3 * bw, y1 + 0.1 * bh)
    elif rel == "behind":
        box = (cx - 0.4 * bw, y0 - 0.15 * bh, cx + 0.4 * bw, y0 + 0.5 * bh)
    else:  # "in", "inside", "on" a large anchor, "at"
        box = (cx - 0.25 * bw, y0 + 0.35 * bh, cx + 0.25 * bw, y0 + 0.75 * bh)
    x0, y0, x1, y1 = box
    return max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)


def place_added(image: np.ndarray, edit: Edit, g: Grounding) -> Grounding:
    """For `add`, turn the anchor's grounding into the box where the new object goes."""
    if edit.anchored:
        size = (image.shape[1], image.shape[0])
        anchors = g.boxes
        if len(anchors) > 1 and not edit.each:  # "a lamp next to the bags": one lamp, by the group
            anchors = [
                (
                    min(b[0] for b in anchors),
                    min(b[1] for b in anchors),
                    max(b[2] for b in anchors),
                    max(b[3] for b in anchors),
                )
            ]
        g.boxes = [placement(b, edit.relation, size, edit.value) for b in anchors]
        g.source += "+placement"
    return g


class VLMGrounder:
    """The box the VLM gave with the plan (none: the whole image). Uses no model of its own."""

    name = "vlm"
    label = "the VLM's box"
    needs: tuple[str, ...] = ()

    @classmethod
    def create(cls, models: Models, threshold: float = 0.15) -> VLMGrounder:
        return cls()

    def ground(self, image: np.ndarray, edit: Edit) -> Grounding:
        if edit.region == "whole":
            return Grounding([whole_image(image)], [1.0], "whole-image")
        if edit.anchored and edit.target is None:
            return Grounding([placement(None, None, (image.shape[1], image.shape[0]))], [1.0], "placement")
        if edit.box is not None:
            return place_added(image, edit, Grounding([edit.box], [1.0], "vlm"))
        what = query_phrase(edit) or "the main subject"
        g = Grounding([whole_image(image)], [0.0], "whole-image")
        g.warnings.append(_guessed(what, f"no box from the VLM for {what!r}: SAM was prompted with the whole image"))
        return place_added(image, edit, g)


def _guessed(what: str, text: str) -> Notice:
    """The warning of a region guessed from the whole picture, `what` not having been found."""
    plain = (
        f"Lasso could not find {what!r} in the picture, so it guessed the region: check the mask, or mark it yourself."
    )
    return Notice(text, "not_found", plain)


def _settings(models: Models) -> AttentionSettings:
    from .attention import AttentionSettings

    return getattr(models, "attention", None) or AttentionSettings()


class AttentionGrounder:
    """SAM prompted by the VLM's own attention to the target's name (attention.py)."""

    name = "attention"
    label = "the VLM's attention"
    needs = ("vlm",)

    @classmethod
    def create(cls, models: Models, threshold: float = 0.15) -> AttentionGrounder:
        return cls(models("vlm"), _settings(models))

    def __init__(self, vlm: VisionLanguageModel, settings: AttentionSettings | None = None) -> None:
        from .attention import AttentionSettings

        self.vlm = vlm
        self.settings = settings or AttentionSettings()

    def ground(self, image: np.ndarray, edit: Edit) -> Grounding:
        from .attention import heatmap, prompts

        phrase = query_phrase(edit)
        if edit.region == "whole" or phrase is None:  # nothing named to look for
            return VLMGrounder().ground(image, edit)
        heat = heatmap(self.vlm, image, phrase, self.settings)
        points, labels, box = prompts(heat, self.settings)
        if box is None:
            g = Grounding([whole_image(image)], [0.0], "whole-image", heatmap=heat)
            g.warnings.append(
                _guessed(phrase, f"the VLM's attention to {phrase!r} is flat: SAM was prompted with the whole image")
            )
            return place_added(image, edit, g)
        if edit.anchored:  # the anchor's box places the new object; its points do not apply
            points, labels = [], []
        return place_added(
            image, edit, Grounding([box], [heat.mass(box)], "attention", points=points, labels=labels, heatmap=heat)
        )


class DetectorGrounder:
    name = "detector"
    label = "detector"
    needs = ("detector",)

    @classmethod
    def create(cls, models: Models, threshold: float = 0.15) -> DetectorGrounder:
        return cls(models("detector"), threshold=threshold)

    def __init__(
        self,
        detector: Detector,
        threshold: float = 0.15,
        nms_iou: float = 0.5,
        use_hint: bool = False,
        attention: tuple[VisionLanguageModel, AttentionSettings] | None = None,
    ) -> None:
        self.detector = detector
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.use_hint = use_hint  # `auto`: the VLM's box breaks ties and stands in when nothing is detected
        # `auto`: (vlm, AttentionSettings) when the VLM is loaded: its attention breaks ties first
        self.attention = attention

    def ground(self, image: np.ndarray, edit: Edit) -> Grounding:
        if edit.region == "whole":
            return Grounding([whole_image(image)], [1.0], "whole-image")
        phrase = query_phrase(edit)
        hint = edit.box if self.use_hint else None
        if phrase is None:  # add without anchor, background without a named subject
            if edit.anchored:
                return Grounding([placement(None, None, (image.shape[1], image.shape[0]))], [1.0], "placement")
            g = Grounding([hint or whole_image(image)], [1.0 if hint else 0.0], "vlm" if hint else "whole-image")
            return g
        boxes, scores = self.detector.detect(image, phrase)
        ok = [i for i, s in enumerate(scores) if s >= self.threshold]
        boxes_ok, scores_ok = [boxes[i] for i in ok], [scores[i] for i in ok]
        keep = nms(boxes_ok, scores_ok, self.nms_iou)
        cand, cand_s = [boxes_ok[i] for i in keep], [scores_ok[i] for i in keep]
        kept = set_aside(cand, edit, phrase)  # "no, the other one": the instance edited before is not a candidate
        cand, cand_s = [cand[i] for i in kept], [cand_s[i] for i in kept]
        if not cand:
            if hint is not None:
                g = Grounding([hint], [1.0], "vlm", candidates=boxes[:5], candidate_scores=scores[:5])
                g.warnings.append(
                    Notice(
                        f"the detector found no {phrase!r} above {self.threshold}; used the VLM's box",
                        "unsure",
                        f"Lasso was not sure where {phrase!r} is and used its best guess: check the mask.",
                    )
                )
                return place_added(image, edit, g)
            best = f" (best score {scores[0]:.2f})" if scores else ""
            raise TargetNotFoundError(
                phrase,
                f"the detector found nothing above the threshold {self.threshold}{best}"
                + (" and the VLM gave no box" if self.use_hint else "")
                + "; nothing was painted. Check the wording, or lower --box-threshold",
            )
        heat, masses = None, []
        if edit.relation and not edit.qualifier and not edit.select_all and len(cand) > 1:
            chosen = self._by_relation(image, edit.relation, cand)
        elif self.attention is not None and len(cand) > 1 and not edit.qualifier and not edit.select_all:
            from .attention import heatmap

            vlm, settings = self.attention
            heat = heatmap(vlm, image, phrase, settings)
            masses = [heat.mass(b) for b in cand]
            chosen = [int(np.argmax(masses))]
        else:
            chosen = select(cand, cand_s, edit.qualifier, edit.select_all, hint, (image.shape[1], image.shape[0]))
        if heat is not None:
            source = "detector+attention"
        else:
            source = (
                "detector+vlm" if hint is not None and any(iou(hint, cand[i]) > 0.1 for i in chosen) else "detector"
            )
        g = Grounding(
            [cand[i] for i in chosen],
            [cand_s[i] for i in chosen],
            source,
            candidates=cand,
            candidate_scores=cand_s,
            heatmap=heat,
            attention=masses,
        )
        return place_added(image, edit, g)

    def _by_relation(self, image: np.ndarray, relation: str, cand: list[Box]) -> list[int]:
        """'the cat on the table': the candidate nearest the best box of the relation's object."""
        obj = re.sub(
            r"^(?:(?:that|which|who)\s+(?:is|are)\s+)?(?:sitting|standing|lying|parked|hanging|placed)?\s*"
            r"(?:on top of|in front of|next to|close to|to the (?:left|right) of|\w+)\s+(?:the\s+|a\s+|an\s+)?",
            "",
            relation,
        ).strip()
        boxes, scores = self.detector.detect(image, obj) if obj else ([], [])
        if not boxes or scores[0] < self.threshold:
            return [0]
        rx0, ry0, rx1, ry1 = boxes[0]

        def dist(b: Box) -> float:
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            dx = max(rx0 - cx, 0.0, cx - rx1)
            dy = max(ry0 - cy, 0.0, cy - ry1)
            return dx * dx + dy * dy

        return [int(np.argmin([dist(b) for b in cand]))]


class AutoGrounder(DetectorGrounder):
    name = "auto"
    label = "detector, ties broken by the VLM"

    @classmethod
    def create(cls, models: Models, threshold: float = 0.15) -> AutoGrounder:
        # The VLM breaks ties with its attention when it is loaded already (the VLM parser read the
        # instruction): a tie never loads a multi-gigabyte model on its own (docs/decisions.md).
        loaded = getattr(models, "loaded", None)
        vlm = models("vlm") if loaded is not None and loaded("vlm") else None
        local = vlm is not None and hasattr(vlm, "processor")  # a remote planner has no attention to read
        attention = (vlm, _settings(models)) if local and vlm is not None else None
        return cls(models("detector"), threshold=threshold, attention=attention)

    def __init__(
        self,
        detector: Detector,
        threshold: float = 0.15,
        nms_iou: float = 0.5,
        attention: tuple[VisionLanguageModel, AttentionSettings] | None = None,
    ) -> None:
        super().__init__(detector, threshold, nms_iou, use_hint=True, attention=attention)
