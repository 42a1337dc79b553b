"""Step 4, segment: SAM, SAM 2 or EdgeTAM through transformers, prompted by the grounding's boxes.

EdgeTAM (`EdgeTamModel`, SAM 2's decoder on a RepViT encoder read through timm) is a SAM 2 to this
stage: the same Sam2Processor, the same square frame and prompts; the lightest encoder measured on
a CPU (bench/results/segmenters.md), the `remote` preset's segmenter.

The image is encoded once and its embedding cached by content hash, so a second prompt on the
same image (another edit, a re-run with another box) only runs the light mask decoder.
SAM answers 3 candidate masks per box with predicted IoU scores; we keep the best by score
(docs/models.md: "choose by score, not the first") and the alternatives for the UI.

Speed (docs/decisions.md, "SAM"): the encoder gets a copy pre-shrunk to its 1024-px input, not a
24 MP array; only the chosen candidate is upsampled, on the model's device, and only inside the
window where it can be True (`upsample_window`): the same mask as `post_process_masks` (whose
two bilinear steps it replays) at a fraction of the cost. The alternatives are upsampled
lazily, when something reads `Segmentation.candidates`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from ..core.errors import ModelUnavailableError
from ..core.loading import load, model_class
from ..core.plan import Correction, Grounding, Notice, Segmentation
from ..imaging.arrays import box_to_mask, image_key, to_pil
from ..imaging.geometry import size_field

if TYPE_CHECKING:
    import torch

    from ..core.stages import LoadOptions
    from .sam3 import Sam3Segmenter

    # An encoded photo: (image embeddings, the encoded frame (H, W), the size SAM resized it to (h, w)).
    Encoded = tuple[torch.Tensor, tuple[int, int], tuple[int, int]]

# The model types read as SAM 2 (one processor, one square frame): SAM 2 itself and EdgeTAM.
SAM2_LIKE = ("sam2", "edgetam")
# The fewest pixels the short side of an image may have once SAM has resized it (see _pad_thin).
MIN_MODEL_SIDE = 16


# --------------------------------------------------------------------------- mask upsampling
def segmenter_dtype(device: str, dtype: torch.dtype | None) -> torch.dtype | None:
    """SAM runs in bf16 on CUDA (segment-anything-fast: same masks, far faster than fp32, and no
    fp16 overflow in its large activations) unless fp32 was asked for; elsewhere the editor's dtype."""
    import torch

    if device.startswith("cuda") and dtype != torch.float32 and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return dtype


def _axis(
    n_in: int, n_out: int, lo: int, hi: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weights of torch's bilinear resize (align_corners=False) for outputs lo..hi-1.

    As aten's upsample_bilinear2d: src = max((dst + 0.5) * n_in / n_out - 0.5, 0), i0 = floor(src),
    i1 = min(i0 + 1, n_in - 1), weights (1 - frac, frac).
    """
    import torch

    d = torch.arange(lo, hi, device=device, dtype=torch.float32)
    src = ((d + 0.5) * (float(n_in) / float(n_out)) - 0.5).clamp(min=0.0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    w1 = src - i0.float()
    return i0, i1, 1.0 - w1, w1


def _window(n_in: int, n_out: int, lo_in: int, hi_in: int) -> tuple[int, int]:
    """Output range whose bilinear samples can touch input rows lo_in..hi_in-1 (with a safety margin)."""
    scale = n_in / n_out
    lo = int(np.floor((lo_in - 1 + 0.5) / scale - 0.5)) - 2
    hi = int(np.ceil((hi_in + 0.5) / scale - 0.5)) + 2
    return max(0, lo), min(n_out, hi)


def upsample_window(logits: torch.Tensor, out_size: tuple[int, int]) -> np.ndarray:
    """Bilinear-resize a 2-D logit map (torch, any device) to `out_size` (H, W) and threshold at 0,
    computing only the window where the result can be positive. Returns a bool HxW numpy mask."""
    h_out, w_out = out_size
    mask = np.zeros((h_out, w_out), dtype=bool)
    pos = logits > 0
    if not bool(pos.any()):
        return mask
    rows = pos.any(dim=1).nonzero().flatten()
    cols = pos.any(dim=0).nonzero().flatten()
    h_in, w_in = logits.shape
    y0, y1 = _window(h_in, h_out, int(rows[0]), int(rows[-1]) + 1)
    x0, x1 = _window(w_in, w_out, int(cols[0]), int(cols[-1]) + 1)
    src = logits.float()
    r0, r1, wr0, wr1 = _axis(h_in, h_out, y0, y1, src.device)
    c0, c1, wc0, wc1 = _axis(w_in, w_out, x0, x1, src.device)
    a = src[r0] * wr0[:, None] + src[r1] * wr1[:, None]  # (rows of the window, w_in)
    out = a[:, c0] * wc0[None, :] + a[:, c1] * wc1[None, :]
    mask[y0:y1, x0:x1] = (out > 0).cpu().numpy()
    return mask


class LazyMasks(Sequence[np.ndarray]):
    """Full-size candidate masks, computed when read (the UI wants them; an edit does not)."""

    def __init__(self, fn: Callable[[int], np.ndarray], n: int) -> None:
        self._fn, self._n = fn, n
        self._done: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, k: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, k: slice) -> list[np.ndarray]: ...
    def __getitem__(self, k: int | slice) -> np.ndarray | list[np.ndarray]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self._n))]
        if not -self._n <= k < self._n:
            raise IndexError(k)
        k %= self._n
        if k not in self._done:
            self._done[k] = self._fn(k)
        return self._done[k]


class SamSegmenter:
    name = "sam"

    def __init__(self, model: Any, processor: Any, model_id: str = "", cache_size: int = 4) -> None:
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.is_sam2 = getattr(model.config, "model_type", "") in SAM2_LIKE
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Encoded] = OrderedDict()
        self.encodes = 0  # image encoder runs, for tests and timings

    @classmethod
    def build(cls, path: str, options: LoadOptions) -> SamSegmenter | Sam3Segmenter:
        """SAM or SAM 2 here; a SAM 3 checkpoint is segment/sam3.py's (it finds concepts too)."""
        if _model_type(path) == "sam3":
            from .sam3 import Sam3Segmenter

            return Sam3Segmenter.build(path, options)
        return cls.from_pretrained(
            path, device=options.device, dtype=segmenter_dtype(options.device, options.dtype), compile=options.compile
        )

    @classmethod
    def from_pretrained(
        cls, model_id: str, device: str = "cpu", dtype: torch.dtype | None = None, compile: bool = False
    ) -> SamSegmenter:
        import transformers

        kind, model_cls = model_class(
            "segmenter",
            model_id,
            {"sam": "SamModel", "sam2": "Sam2Model", "edgetam": "EdgeTamModel"},
            "SAM, SAM 2, EdgeTAM and SAM 3 (sam3)",
        )
        if kind == "edgetam":
            _need_timm(model_id)
        try:
            model = load("segmenter", model_id, model_cls.from_pretrained, dtype=dtype, attn_implementation="sdpa")
        except ModelUnavailableError:  # a transformers without SDPA for this model: its default attention
            model = load("segmenter", model_id, model_cls.from_pretrained, dtype=dtype)
        model = model.to(device).eval()
        processor = load("segmenter", model_id, transformers.AutoProcessor.from_pretrained)
        seg = cls(model, processor, model_id=model_id)
        if compile:
            seg.compile()
        return seg

    def compile(self) -> None:
        """torch.compile the image encoder (the first encode of each input size then compiles)."""
        import torch

        self.model.vision_encoder = torch.compile(self.model.vision_encoder)

    def _input_size(self, h: int, w: int) -> tuple[int, int]:
        """(height, width) the processor resizes an HxW image to (SamImageProcessor._get_preprocess_shape)."""
        size = self.processor.image_processor.size
        if self.is_sam2:
            return int(size_field(size, "height", 1024)), int(size_field(size, "width", 1024))
        longest = int(size_field(size, "longest_edge", 1024))
        scale = longest / max(h, w)
        return int(h * scale + 0.5), int(w * scale + 0.5)

    def _pad_thin(self, image: np.ndarray) -> np.ndarray:
        """A strip so thin that SAM's resize to its longest edge would leave the short side under
        MIN_MODEL_SIDE pixels (8x4000 with a 1024 encoder, or a 0-pixel side with a small one) is
        padded on the right or bottom, by repeating its edge, until it is not; masks are computed for
        the padded frame and cropped back. SAM 2 squashes every image to a square, so needs none."""
        h, w = image.shape[:2]
        if self.is_sam2:
            return image
        rh, rw = self._input_size(h, w)
        if min(rh, rw) >= MIN_MODEL_SIDE:
            return image
        longest = max(rh, rw)
        short = -(-max(h, w) * MIN_MODEL_SIDE // longest)  # ceil: the padded short side, in image pixels
        pad = ((0, max(0, short - h)), (0, max(0, short - w)), (0, 0))
        return np.pad(image, pad, mode="edge")

    # ------------------------------------------------------------------ embeddings, cached per image
    def set_image(self, image: np.ndarray) -> Encoded:
        """Encode an RGB uint8 HxWx3 image once; return (embeddings, encoded frame (H, W), resized (h, w)).
        The frame is the image's own size unless `_pad_thin` padded it (then at least as large)."""
        import cv2
        import torch

        key = image_key(image)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        image = self._pad_thin(image)
        h, w = image.shape[:2]
        rh, rw = self._input_size(h, w)
        if self.is_sam2:  # squashed to a square by the processor: shrink no side below its target
            scale = max(rh / h, rw / w)
            small = (
                image
                if scale >= 1
                else cv2.resize(
                    image, (max(rw, round(w * scale)), max(rh, round(h * scale))), interpolation=cv2.INTER_AREA
                )
            )
        else:  # resized to exactly the processor's own target size, so its resize is a no-op
            small = image if rh >= h else cv2.resize(image, (rw, rh), interpolation=cv2.INTER_AREA)
        inputs = self.processor(images=to_pil(small), return_tensors="pt")
        pixel_values = inputs["pixel_values"].to(self.model.device, self.model.dtype)
        with torch.inference_mode():
            emb = self.model.get_image_embeddings(pixel_values)
        self.encodes += 1
        entry = (emb, (h, w), (rh, rw))
        self._cache[key] = entry
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    def _full_size(self, low_res: torch.Tensor, orig: tuple[int, int], resized: tuple[int, int]) -> np.ndarray:
        """One 2-D low-resolution logit map -> bool HxW mask, as post_process_masks computes it."""
        import torch
        import torch.nn.functional as F

        if self.is_sam2:  # Sam2ImageProcessor.post_process_masks: one resize to the original size
            return upsample_window(low_res, orig)
        # SamImageProcessor.post_process_masks: resize to the padded frame, crop the image, resize.
        pad = self.processor.image_processor.pad_size
        pad_hw = (int(size_field(pad, "height", 1024)), int(size_field(pad, "width", 1024)))
        with torch.inference_mode():
            framed = F.interpolate(low_res[None, None].float(), pad_hw, mode="bilinear", align_corners=False)[0, 0]
        return upsample_window(framed[: resized[0], : resized[1]], orig)

    # ------------------------------------------------------------------ the stage
    def segment(self, image: np.ndarray, grounding: Grounding, correction: Correction | None = None) -> Segmentation:
        """Masks for every box of `grounding` (XYXY pixels of `image`), the best candidate each.

        The grounding's own points (attention peaks) and a `correction`'s (a person's fix; label 1
        keep, 0 leave out) join every box's prompt, or prompt SAM alone when there is no box; a
        correction's `candidate` picks that candidate
        mask instead of the best-scored one. Its box, if any, the editor has already made the
        grounding's."""
        import torch

        from ..core.errors import InvalidInputError

        h, w = image.shape[:2]
        boxes = [list(map(float, b)) for b in grounding.boxes]
        points = list(grounding.points) + (list(correction.points) if correction is not None else [])
        labels = list(grounding.labels) + (list(correction.labels) if correction is not None else [])
        if not boxes and not points:
            empty = np.zeros((h, w), dtype=bool)
            return Segmentation(mask=empty, score=0.0)
        emb, orig, resized = self.set_image(image)
        frame_h, frame_w = orig  # prompts are in image pixels, which are the frame's (padding is right/bottom)
        # Both processors scale prompts from original pixels to the model's frame by resized/original
        # size per axis (SamProcessor._normalize_coordinates; Sam2Processor's, to its square).
        sx, sy = resized[1] / frame_w, resized[0] / frame_h
        n = max(len(boxes), 1)  # prompts decoded at once: one per box, or the points alone
        kwargs = {}
        if boxes:
            kwargs["input_boxes"] = (torch.tensor([boxes], dtype=torch.float32) * torch.tensor([sx, sy, sx, sy])).to(
                self.model.device, self.model.dtype
            )
        if points:  # every box's prompt gets the same points (the encoder joins points and box per prompt)
            pts = torch.tensor(points, dtype=torch.float32) * torch.tensor([sx, sy])
            kwargs["input_points"] = (
                pts[None, None].expand(1, n, -1, -1).contiguous().to(self.model.device, self.model.dtype)
            )
            kwargs["input_labels"] = (
                torch.tensor(labels, dtype=torch.long)[None, None].expand(1, n, -1).contiguous().to(self.model.device)
            )
        with torch.inference_mode():
            out = self.model(image_embeddings=emb, multimask_output=True, **kwargs)
        low = out.pred_masks[0].reshape(n, -1, *out.pred_masks.shape[-2:])  # (prompts, candidates, h, w)
        scores = out.iou_scores.float().cpu().numpy().reshape(n, -1)
        pick = correction.candidate if correction is not None else None
        if pick is not None and not 0 <= pick < low.shape[1]:
            raise InvalidInputError(
                f"there are {low.shape[1]} candidate masks (0 to {low.shape[1] - 1}); candidate {pick} is not one"
            )
        best = scores.argmax(axis=1) if pick is None else np.full(n, pick)
        mask = np.zeros((h, w), dtype=bool)
        warnings: list[str] = []
        for i in range(n):
            m = self._full_size(low[i, best[i]], orig, resized)[:h, :w]
            if not m.any() and boxes:  # an empty answer: keep the box rather than paint nothing
                m = box_to_mask(boxes[i], (h, w))
                warnings.append(
                    Notice(
                        f"the segmenter returned an empty mask for box {i}; the box itself was used",
                        "rough_mask",
                        "Lasso could not trace the object's outline, so the mask is the whole box around it.",
                    )
                )
            mask |= m

        def candidate(k: int) -> np.ndarray:  # the low-resolution logits stay where they are until read
            out_k = np.zeros((h, w), dtype=bool)
            for i in range(n):
                out_k |= self._full_size(low[i, k], orig, resized)[:h, :w]
            return out_k

        return Segmentation(
            mask=mask,
            score=float(scores[np.arange(n), best].mean()),
            candidates=LazyMasks(candidate, low.shape[1]),
            candidate_scores=scores.mean(axis=0).tolist(),
            warnings=warnings,
            chosen=int(best[0]),
        )


def _need_timm(model_id: str) -> None:
    """EdgeTAM's encoder is a timm model (RepViT): without timm, say what to install (exit 3)."""
    try:
        import timm  # noqa: F401
    except ImportError:
        raise ModelUnavailableError(
            f"segmenter {model_id!r} is EdgeTAM, whose encoder needs timm: pip install timm"
        ) from None


def _model_type(model_id: str) -> str:
    import transformers

    return str(getattr(load("segmenter", model_id, transformers.AutoConfig.from_pretrained), "model_type", ""))
