"""An open-vocabulary detector through transformers: OWLv2 or Grounding DINO, picked from the config.

Frames (checked in transformers 5's processors): OWLv2 pads the image to a square at the bottom
and right before resizing, so its normalised boxes are fractions of that square; we pass the
square's size as `target_sizes` and clip to the image. Grounding DINO resizes without padding,
so the image's own size is the target size.

Speed (docs/decisions.md, "Detector"): the processor gets a copy pre-shrunk to the size it
resizes to anyway, never a 24 MP array (normalised boxes are the same, so target sizes stay the
original's). On CUDA the model runs under bf16 autocast while its score and box heads run in
float32 (`_keep_fp32`), so scores near the threshold do not drift with the backbone's precision.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.loading import converted_key, int8_cached, int8_linears, load, model_class, source_files
from ..core.plan import Box
from ..imaging.arrays import clip_box, shrink, to_pil
from ..imaging.geometry import size_field

if TYPE_CHECKING:
    import torch

    from ..core.stages import LoadOptions

_HEADS = ("class_embed", "bbox_embed", "class_head", "box_head", "objectness_head")
DETECTOR_CLASSES = {
    "owlv2": "Owlv2ForObjectDetection",
    "owlvit": "OwlViTForObjectDetection",
    "grounding-dino": "GroundingDinoForObjectDetection",
    "mm-grounding-dino": "MMGroundingDinoForObjectDetection",
}


class Detector:
    """`detect(image, phrase)` -> (boxes XYXY pixels, scores), best first, before any threshold."""

    def __init__(
        self, model: Any, processor: Any, model_id: str = "", device: str = "cpu", autocast: bool | None = None
    ) -> None:
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.device = device  # inputs go here (not model.device: a model with a stray CPU parameter misleads it)
        self.kind = getattr(model.config, "model_type", "")
        # bf16 autocast with float32 heads on CUDA (None: on where the device is CUDA).
        self.autocast = str(device).startswith("cuda") if autocast is None else autocast
        if self.autocast:
            _keep_fp32(model)

    @classmethod
    def build(cls, path: str, options: LoadOptions) -> Detector:
        if options.preset is not None and options.preset.cpu_int8 and str(options.device) == "cpu":
            return cls.int8(path)
        return cls.from_pretrained(path, device=options.device)

    @classmethod
    def int8(cls, model_id: str) -> Detector:
        """The detector on the CPU with its linear layers in dynamic int8 (loading.int8_linears),
        kept so in the converted-weights cache, from which the next process builds it
        (loading.int8_cached: OWL-ViT B/32's checkpoint is then not read, nor its layers converted)."""
        import torch
        import transformers

        def convert(kept: dict[str, torch.Tensor] | None) -> Any:
            return int8_linears(load("detector", model_id, model_cls.from_pretrained).eval(), kept)

        def skeleton() -> Any:
            config = load("detector", model_id, transformers.AutoConfig.from_pretrained)
            with torch.device("meta"):
                return model_cls(config)

        _, model_cls = model_class("detector", model_id, DETECTOR_CLASSES, ", ".join(DETECTOR_CLASSES))
        version = f"transformers {transformers.__version__}"
        key = converted_key(f"{model_cls.__name__}-int8", source_files(model_id), torch.float32, version)
        model = int8_cached(key, skeleton, convert)
        processor = load("detector", model_id, transformers.AutoProcessor.from_pretrained)
        return cls(model, processor, model_id=model_id, device="cpu")

    @classmethod
    def from_pretrained(
        cls, model_id: str, device: str = "cpu", dtype: torch.dtype | None = None, autocast: bool | None = None
    ) -> Detector:
        import transformers

        _, model_cls = model_class("detector", model_id, DETECTOR_CLASSES, ", ".join(DETECTOR_CLASSES))
        # Detectors are small; fp32 keeps their scores stable (fp16 sigmoid scores drift near thresholds).
        model = load("detector", model_id, model_cls.from_pretrained).to(device).eval()
        processor = load("detector", model_id, transformers.AutoProcessor.from_pretrained)
        return cls(model, processor, model_id=model_id, device=device, autocast=autocast)

    def _shrink(self, image: np.ndarray) -> np.ndarray:
        """The image at most the size the processor resizes it to (OWLv2: 960 square; DINO: 800/1333)."""
        size = getattr(self.processor.image_processor, "size", None)
        short, long = size_field(size, "shortest_edge"), size_field(size, "longest_edge")
        if not short and not long:
            hw = [v for v in (size_field(size, "height"), size_field(size, "width")) if v]
            long = max(hw) if hw else None
        return shrink(image, max_long=long, max_short=short)

    def detect(self, image: np.ndarray, phrase: str) -> tuple[list[Box], list[float]]:
        """Detect `phrase` in an RGB uint8 HxWx3 image."""
        import torch

        h, w = image.shape[:2]
        pil = to_pil(self._shrink(image))
        if self.kind.startswith("owl"):
            # OWL text towers hold 16 tokens: truncate long phrases instead of failing.
            inputs = self.processor(text=[[f"a photo of a {phrase}"]], images=pil, return_tensors="pt", truncation=True)
            side = max(h, w)
            target = [(side, side)] if self.kind == "owlv2" else [(h, w)]
        else:
            inputs = self.processor(images=pil, text=f"{phrase}.", return_tensors="pt")
            target = [(h, w)]
        inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            outputs = self.model(**inputs)
        if self.kind.startswith("owl"):
            res = self.processor.post_process_grounded_object_detection(outputs, threshold=0.0, target_sizes=target)[0]
        else:
            res = self.processor.post_process_grounded_object_detection(
                outputs, inputs["input_ids"], threshold=0.0, text_threshold=0.0, target_sizes=target
            )[0]
        scores = res["scores"].float().cpu().tolist()
        boxes = [clip_box(b, (w, h)) for b in res["boxes"].float().cpu().tolist()]
        keep = [i for i, b in enumerate(boxes) if b[2] - b[0] >= 1 and b[3] - b[1] >= 1]
        order = sorted(keep, key=lambda i: -scores[i])
        return [boxes[i] for i in order], [scores[i] for i in order]


def _keep_fp32(model: torch.nn.Module) -> None:
    """Run the detector's score and box heads in float32, with autocast off, whatever the backbone runs in."""
    import torch

    heads: dict[int, torch.nn.Module] = {}
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] in _HEADS:  # a head, or a ModuleList of per-layer heads
            for m in module if isinstance(module, torch.nn.ModuleList) else [module]:
                heads[id(m)] = m

    def up(v: Any) -> Any:
        return v.float() if torch.is_tensor(v) and v.is_floating_point() else v

    for m in heads.values():

        def fp32_forward(*args: Any, _forward: Callable[..., Any] = m.forward, **kwargs: Any) -> Any:
            with torch.autocast("cuda", enabled=False):
                return _forward(*[up(a) for a in args], **{k: up(v) for k, v in kwargs.items()})

        m.forward = fp32_forward
