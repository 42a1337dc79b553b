"""An open-vocabulary detector through transformers: OWLv2 or Grounding DINO, picked from the config.

Frames (checked in transformers 5's processors): OWLv2 pads the image to a square at the bottom
and right before resizing, so its normalised boxes are fractions of that square; we pass the
square's size as `target_sizes` and clip to the image. Grounding DINO resizes without padding,
so the image's own size is the target size.
"""

from __future__ import annotations

import numpy as np

from ..imaging import clip_box, to_pil
from ..loading import load
from ..plan import Box

DETECTOR_CLASSES = {"owlv2": "Owlv2ForObjectDetection", "owlvit": "OwlViTForObjectDetection",
                    "grounding-dino": "GroundingDinoForObjectDetection",
                    "mm-grounding-dino": "MMGroundingDinoForObjectDetection"}


class Detector:
    """`detect(image, phrase)` -> (boxes XYXY pixels, scores), best first, before any threshold."""

    def __init__(self, model, processor, model_id: str = "", device: str = "cpu"):
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.device = device  # inputs go here (not model.device: a model with a stray CPU parameter misleads it)
        self.kind = getattr(model.config, "model_type", "")

    @classmethod
    def from_pretrained(cls, model_id: str, device: str = "cpu", dtype=None) -> Detector:
        import transformers

        config = load("detector", model_id, transformers.AutoConfig.from_pretrained)
        name = DETECTOR_CLASSES.get(getattr(config, "model_type", ""))
        if name is None or not hasattr(transformers, name):
            from ..errors import ModelUnavailableError

            raise ModelUnavailableError(f"detector {model_id!r} is a {config.model_type!r} model; "
                                        f"Lasso reads {', '.join(DETECTOR_CLASSES)}")
        # Detectors are small; fp32 keeps their scores stable (fp16 sigmoid scores drift near thresholds).
        model = load("detector", model_id, getattr(transformers, name).from_pretrained).to(device).eval()
        processor = load("detector", model_id, transformers.AutoProcessor.from_pretrained)
        return cls(model, processor, model_id=model_id, device=device)

    def detect(self, image: np.ndarray, phrase: str) -> tuple[list[Box], list[float]]:
        """Detect `phrase` in an RGB uint8 HxWx3 image."""
        import torch

        h, w = image.shape[:2]
        pil = to_pil(image)
        if self.kind.startswith("owl"):
            # OWL text towers hold 16 tokens: truncate long phrases instead of failing.
            inputs = self.processor(text=[[f"a photo of a {phrase}"]], images=pil, return_tensors="pt", truncation=True)
            side = max(h, w)
            target = [(side, side)] if self.kind == "owlv2" else [(h, w)]
        else:
            inputs = self.processor(images=pil, text=f"{phrase}.", return_tensors="pt")
            target = [(h, w)]
        inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        with torch.inference_mode():
            outputs = self.model(**inputs)
        if self.kind.startswith("owl"):
            res = self.processor.post_process_grounded_object_detection(outputs, threshold=0.0, target_sizes=target)[0]
        else:
            res = self.processor.post_process_grounded_object_detection(
                outputs, inputs["input_ids"], threshold=0.0, text_threshold=0.0, target_sizes=target)[0]
        scores = res["scores"].float().cpu().tolist()
        boxes = [clip_box(b, (w, h)) for b in res["boxes"].float().cpu().tolist()]
        keep = [i for i, b in enumerate(boxes) if b[2] - b[0] >= 1 and b[3] - b[1] >= 1]
        order = sorted(keep, key=lambda i: -scores[i])
        return [boxes[i] for i in order], [scores[i] for i in order]
