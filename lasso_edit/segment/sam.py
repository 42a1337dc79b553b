"""Step 3, segment: SAM (or SAM 2) through transformers, prompted by the grounding's boxes.

The image is encoded once and its embedding cached by content hash, so a second prompt on the
same image (another edit, a re-run with another box) only runs the light mask decoder.
SAM answers 3 candidate masks per box with predicted IoU scores; we keep the best by score
(MODELS.md: "choose by score, not the first") and the alternatives for the UI.
Prompts are given in original pixels with the processor's `original_sizes` /
`reshaped_input_sizes`, and full-size masks come back through `post_process_masks`.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..imaging import box_to_mask, image_key, to_pil
from ..loading import load
from ..plan import Grounding, Segmentation
from ..registry import SEGMENTERS


@SEGMENTERS.register("sam")
class SamSegmenter:
    name = "sam"

    def __init__(self, model, processor, model_id: str = "", cache_size: int = 4):
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.is_sam2 = getattr(model.config, "model_type", "") == "sam2"
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple] = OrderedDict()
        self.encodes = 0  # image encoder runs, for tests and timings

    @classmethod
    def from_pretrained(cls, model_id: str, device: str = "cpu", dtype=None) -> SamSegmenter:
        import transformers

        config = load("segmenter", model_id, transformers.AutoConfig.from_pretrained)
        kind = getattr(config, "model_type", "")
        if kind not in ("sam", "sam2"):
            from ..errors import ModelUnavailableError

            raise ModelUnavailableError(f"segmenter {model_id!r} is a {kind!r} model; Lasso reads SAM and SAM 2")
        if kind == "sam2" and not hasattr(transformers, "Sam2Model"):
            from ..errors import ModelUnavailableError

            raise ModelUnavailableError("SAM 2 needs a newer transformers (with Sam2Model); upgrade it or use a SAM id")
        model_cls = transformers.Sam2Model if kind == "sam2" else transformers.SamModel
        model = load("segmenter", model_id, model_cls.from_pretrained, dtype=dtype).to(device).eval()
        processor = load("segmenter", model_id, transformers.AutoProcessor.from_pretrained)
        return cls(model, processor, model_id=model_id)

    # ------------------------------------------------------------------ embeddings, cached per image
    def set_image(self, image: np.ndarray):
        """Encode an RGB uint8 HxWx3 image once; return (embeddings, processor inputs)."""
        import torch

        key = image_key(image)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        inputs = self.processor(images=to_pil(image), return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.model.device, self.model.dtype)
        with torch.inference_mode():
            emb = self.model.get_image_embeddings(pixel_values)
        self.encodes += 1
        entry = (emb, inputs)
        self._cache[key] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    # ------------------------------------------------------------------ the stage
    def segment(self, image: np.ndarray, grounding: Grounding) -> Segmentation:
        """Masks for every box of `grounding` (XYXY pixels of `image`), the best candidate each."""
        import torch

        h, w = image.shape[:2]
        boxes = [list(map(float, b)) for b in grounding.boxes]
        if not boxes:
            empty = np.zeros((h, w), dtype=bool)
            return Segmentation(mask=empty, score=0.0)
        emb, img_inputs = self.set_image(image)
        if self.is_sam2:
            prompt = self.processor(images=None, input_boxes=[boxes], original_sizes=img_inputs["original_sizes"],
                                    return_tensors="pt")
            input_boxes = prompt["input_boxes"]
        else:
            # SamProcessor scales prompts from original pixels to the resized frame by
            # reshaped/original size per axis (processing_sam._normalize_coordinates); the cached
            # inputs hold both sizes, so the image need not be processed again.
            new_h, new_w = (float(v) for v in img_inputs["reshaped_input_sizes"][0])
            scale = torch.tensor([new_w / w, new_h / h, new_w / w, new_h / h])
            input_boxes = (torch.tensor([boxes], dtype=torch.float32) * scale)
        input_boxes = input_boxes.to(self.model.device, self.model.dtype)
        with torch.inference_mode():
            out = self.model(image_embeddings=emb, input_boxes=input_boxes, multimask_output=True)
        pred = out.pred_masks.float().cpu()
        if self.is_sam2:
            masks = self.processor.post_process_masks(pred, img_inputs["original_sizes"])[0]
        else:
            masks = self.processor.post_process_masks(pred, img_inputs["original_sizes"],
                                                      img_inputs["reshaped_input_sizes"])[0]
        masks = masks.numpy().astype(bool).reshape(len(boxes), -1, h, w)  # (boxes, candidates, H, W)
        scores = out.iou_scores.float().cpu().numpy().reshape(len(boxes), -1)
        best = scores.argmax(axis=1)
        mask = np.zeros((h, w), dtype=bool)
        warnings = []
        for i, box in enumerate(boxes):
            m = masks[i, best[i]]
            if not m.any():  # an empty answer: keep the box rather than paint nothing
                m = box_to_mask(box, (h, w))
                warnings.append(f"the segmenter returned an empty mask for box {i}; the box itself was used")
            mask |= m
        candidates = [masks[:, k].any(axis=0) for k in range(masks.shape[1])]
        seg = Segmentation(mask=mask, score=float(scores[np.arange(len(boxes)), best].mean()),
                           candidates=candidates, candidate_scores=scores.mean(axis=0).tolist(), warnings=warnings)
        return seg
