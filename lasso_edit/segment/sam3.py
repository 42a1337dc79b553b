"""SAM 3 (`Sam3Model` + `Sam3Processor`): a segmenter that finds concepts. Given the target's
phrase it answers every instance, each with a box, a score and a mask (`find`); the `sam3`
grounder (ground/concept.py) chooses among them and hands their masks on, so one model grounds
and segments. A box from anywhere else (another grounder, a person's correction) is a visual
exemplar: SAM 3 answers the instances like it, and the one that overlaps the box most is taken.

The photo is encoded once and its vision features cached by content, so a second phrase or box
on the same photo runs only the light detector and mask heads.

SAM 3's weights are gated under a custom licence (loading.py says how to accept it, and names the
fallback: SAM 2.1 with MM-Grounding-DINO).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import InvalidInputError
from ..core.loading import load, model_class
from ..core.plan import Box, Correction, Grounding, Notice, Segmentation
from ..ground.select import iou
from ..imaging.arrays import image_key, to_pil

if TYPE_CHECKING:
    import torch

    from ..core.stages import LoadOptions


@dataclass
class Instance:
    box: Box  # XYXY pixels of the photo
    score: float
    mask: np.ndarray  # bool HxW


class Sam3Segmenter:
    name = "sam3"

    def __init__(self, model: Any, processor: Any, model_id: str = "", cache_size: int = 4) -> None:
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[Any, list[list[int]]]] = OrderedDict()
        self.encodes = 0

    @classmethod
    def build(cls, path: str, options: LoadOptions) -> Sam3Segmenter:
        return cls.from_pretrained(path, device=options.device, dtype=options.dtype)

    @classmethod
    def from_pretrained(
        cls, model_id: str, device: str = "cpu", dtype: torch.dtype | None = None, **options: Any
    ) -> Sam3Segmenter:
        import transformers

        _, model_cls = model_class("segmenter", model_id, {"sam3": "Sam3Model"}, "SAM 3")
        model = load("segmenter", model_id, model_cls.from_pretrained, dtype=dtype).to(device).eval()
        processor = load("segmenter", model_id, transformers.Sam3Processor.from_pretrained)
        return cls(model, processor, model_id=model_id)

    def _vision(self, image: np.ndarray) -> tuple[Any, list[list[int]]]:
        """(vision features, the processor's image inputs) of a photo, computed once per photo."""
        import torch

        key = image_key(image)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        inputs = self.processor(images=to_pil(image), return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.model.device, self.model.dtype)
        with torch.inference_mode():
            feats = self.model.get_vision_features(pixel_values=pixel_values)
        self.encodes += 1
        entry = (feats, inputs["original_sizes"].tolist())
        self._cache[key] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    def _instances(self, image: np.ndarray, threshold: float, **prompt: Any) -> list[Instance]:
        import torch

        feats, sizes = self._vision(image)
        inputs = self.processor(images=to_pil(image), return_tensors="pt", **prompt)
        kwargs = {k: v.to(self.model.device) for k, v in inputs.items() if k not in ("pixel_values", "original_sizes")}
        for k in ("input_boxes",):
            if k in kwargs:
                kwargs[k] = kwargs[k].to(self.model.dtype)
        with torch.inference_mode():
            out = self.model(vision_embeds=feats, **kwargs)
        res = self.processor.post_process_instance_segmentation(out, threshold=threshold, target_sizes=sizes)[0]
        found = [
            Instance(tuple(float(v) for v in b), float(s), m.cpu().numpy().astype(bool))  # type: ignore[arg-type]
            for b, s, m in zip(res["boxes"], res["scores"], res["masks"])
        ]
        return sorted(found, key=lambda i: -i.score)

    def find(self, image: np.ndarray, phrase: str, threshold: float = 0.0) -> list[Instance]:
        """Every instance of `phrase` in the photo scoring at least `threshold`, best first."""
        return self._instances(image, threshold, text=phrase)

    def segment(self, image: np.ndarray, grounding: Grounding, correction: Correction | None = None) -> Segmentation:
        """The grounding's own instance masks (the `sam3` grounder's), or for each box the instance
        SAM 3 finds with it as an exemplar that overlaps it most."""
        h, w = image.shape[:2]
        if correction is not None and (correction.points or correction.candidate is not None):
            raise InvalidInputError(
                "SAM 3 takes boxes, not points or candidate picks: correct it with a box, or use SAM 2.1 "
                "(--segmenter facebook/sam2.1-hiera-large) for point corrections"
            )
        if grounding.masks and correction is None:
            mask = np.zeros((h, w), dtype=bool)
            for m in grounding.masks:
                mask |= m
            return Segmentation(mask=mask, score=float(np.mean(grounding.scores)) if grounding.scores else 1.0)
        mask = np.zeros((h, w), dtype=bool)
        scores: list[float] = []
        warnings: list[str] = []
        for i, box in enumerate(grounding.boxes):
            found = self._instances(image, 0.0, input_boxes=[[list(map(float, box))]], input_boxes_labels=[[1]])
            best = max(found, key=lambda inst: (iou(inst.box, box), inst.score), default=None)
            if best is None or not best.mask.any():
                from ..imaging.arrays import box_to_mask

                mask |= box_to_mask(box, (h, w))
                warnings.append(
                    Notice(
                        f"SAM 3 found nothing in box {i}; the box itself was used",
                        "rough_mask",
                        "Lasso could not trace the object's outline, so the mask is the whole box around it.",
                    )
                )
                continue
            mask |= best.mask
            scores.append(best.score)
        return Segmentation(mask=mask, score=float(np.mean(scores)) if scores else 0.0, warnings=warnings)
