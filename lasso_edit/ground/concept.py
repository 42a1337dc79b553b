"""The `sam3` grounder: SAM 3 finds every instance of the target's phrase, with a mask each, and
the grounding hands the chosen instances' masks to the segmenter (the same model), so one model
grounds and segments.

Choosing among instances is what the other grounders do: "all the cars" takes every one, a
spatial word ("the left one", "the biggest": select.py) picks by place, otherwise the best score.
One more check, for phrases SAM 3 is known to read poorly: attributes and relations ("the person
in white", "the red car", "the cup on the table": facebookresearch/sam3 #399). When such a phrase
has several candidates and no spatial word, the VLM looks at each candidate's crop and answers
whether it is the phrase; the candidates it says yes to are kept (the best scored of them), and
the grounding's source says so ("sam3+vlm-check"). With no VLM loaded, or no yes, SAM 3's best
score stands, with a warning.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import ModelUnavailableError, TargetNotFoundError
from ..core.plan import Edit, Grounding, Notice
from .select import nms, select, set_aside
from .strategies import place_added, placement, query_phrase, whole_image

if TYPE_CHECKING:
    from ..core.plan import Box
    from ..core.stages import Models
    from ..parse.loop import VisionLanguageModel
    from ..segment.sam3 import Sam3Segmenter

CHECK_PROMPT = "Is this {phrase}? Answer yes or no."
_CHECK_MARGIN = 0.15  # of the box's size, each side: a little context around the candidate
# What makes a phrase more than a noun: a colour or other adjective before it, or a relation after it.
_COMPOSED = re.compile(r"\s(?:in|with|on|under|wearing|holding|near|next|behind|beside|from|of|that|who)\s")


def compositional(edit: Edit, phrase: str) -> bool:
    """Whether `phrase` (or the edit) says more than which thing: an attribute or a relation."""
    return bool(edit.relation) or len(phrase.split()) > 1 or _COMPOSED.search(f" {phrase} ") is not None


class Sam3Grounder:
    name = "sam3"
    label = "SAM 3's concept search, checked by the VLM"
    needs = ("segmenter",)
    tiny_models = {"segmenter": "tiny:sam3"}  # what the contract test runs it on

    @classmethod
    def create(cls, models: Models, threshold: float = 0.15) -> Sam3Grounder:
        segmenter = models("segmenter")
        if not hasattr(segmenter, "find"):
            raise ModelUnavailableError(
                "--grounder sam3 needs a SAM 3 segmenter: --segmenter facebook/sam3 (or the `best` preset)"
            )
        loaded = getattr(models, "loaded", None)
        vlm = models("vlm") if loaded is not None and loaded("vlm") else None  # never loaded for a check alone
        return cls(segmenter, threshold=threshold, vlm=vlm)

    def __init__(
        self,
        segmenter: Sam3Segmenter,
        threshold: float = 0.15,
        nms_iou: float = 0.5,
        vlm: VisionLanguageModel | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.threshold = threshold
        self.nms_iou = nms_iou
        self.vlm = vlm  # asks the yes/no question on each candidate of a compositional phrase

    def ground(self, image: np.ndarray, edit: Edit) -> Grounding:
        h, w = image.shape[:2]
        if edit.region == "whole":
            return Grounding([whole_image(image)], [1.0], "whole-image")
        phrase = query_phrase(edit)
        if phrase is None:  # add without an anchor, a background with no subject named
            if edit.anchored:
                return Grounding([placement(None, None, (w, h))], [1.0], "placement")
            return Grounding([whole_image(image)], [0.0], "whole-image")
        found = self.segmenter.find(image, phrase, threshold=self.threshold)
        keep = nms([f.box for f in found], [f.score for f in found], self.nms_iou)
        found = [found[i] for i in keep]
        if not found:
            raise TargetNotFoundError(
                phrase,
                f"SAM 3 found no instance above the threshold {self.threshold}; nothing was painted. "
                "Check the wording, or lower --box-threshold",
            )
        found = [found[i] for i in set_aside([f.box for f in found], edit, phrase)]  # "no, the other one"
        boxes, scores = [f.box for f in found], [f.score for f in found]
        source, warnings = "sam3", list[str]()
        if edit.qualifier or edit.select_all or len(found) == 1 or not compositional(edit, phrase):
            chosen = select(boxes, scores, edit.qualifier, edit.select_all, edit.box, (w, h))
        else:
            chosen, source, warnings = self._check(image, edit, phrase, boxes)
        g = Grounding(
            [boxes[i] for i in chosen],
            [scores[i] for i in chosen],
            source,
            candidates=boxes,
            candidate_scores=scores,
            warnings=warnings,
            masks=[found[i].mask for i in chosen] if not edit.anchored else [],
        )
        return place_added(image, edit, g)

    def _check(self, image: np.ndarray, edit: Edit, phrase: str, boxes: list[Box]) -> tuple[list[int], str, list[str]]:
        """The VLM's yes or no on each candidate's crop; the first (best scored) yes wins."""
        said = self.phrase_of(edit, phrase)
        if self.vlm is None:
            return (
                [0],
                "sam3",
                [_unsure(f"{said!r} has attributes SAM 3 may misread and no VLM was loaded to check it", said)],
            )
        for i, box in enumerate(boxes):
            answer = self.vlm.ask(_crop(image, box), CHECK_PROMPT.format(phrase=said), constrained=False)
            if answer.strip().lower().startswith("yes"):
                return [i], "sam3+vlm-check", []
        return [0], "sam3", [_unsure(f"the VLM said no to every candidate for {said!r}; SAM 3's best was used", said)]

    @staticmethod
    def phrase_of(edit: Edit, phrase: str) -> str:
        """The whole description, relation included: "cup on the table"."""
        return f"{phrase} {edit.relation}" if edit.relation and phrase == edit.target else phrase


def _unsure(text: str, said: str) -> Notice:
    return Notice(text, "unsure", f"Lasso was not sure which one is {said!r} and used its best guess: check the mask.")


def _crop(image: np.ndarray, box: Box) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) * _CHECK_MARGIN, (y1 - y0) * _CHECK_MARGIN
    a, b = int(max(0, np.floor(x0 - mx))), int(max(0, np.floor(y0 - my)))
    c, d = int(min(w, np.ceil(x1 + mx))), int(min(h, np.ceil(y1 + my)))
    return image[b : max(d, b + 1), a : max(c, a + 1)]
