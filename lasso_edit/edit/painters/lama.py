"""LaMa (Large Mask inpainting, Samsung Research; Apache-2.0) through ONNX Runtime: the `lama`
painter, the `lite` preset's remover. One pass of a feed-forward network fills the hole from its
surroundings, in about a second or three on a CPU where a diffusion step takes five; it paints no
new object, so it serves remove alone (the editor routes only remove to a preset's `remover`).

    --inpainter lama                                  # Carve/LaMa-ONNX's lama_fp32.onnx from the Hub
    --inpainter lama:/models/lama.onnx                # an exported graph of your own (or its folder)

LaMa's exports differ in their inputs, so the graph's own are read: `image` [1,3,H,W] and `mask`
[1,1,H,W] (Carve/LaMa-ONNX), or one [1,4,H,W] input (the masked image and the mask: other
exports); the answer is in [0, 1] or [0, 255], told by its range. A graph with a fixed size
(512x512) is fed the crop resized to it, and its answer resized back; one with free sizes gets the
crop padded to a multiple of 8. The editor composites the crop as every painter's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import InvalidInputError, ModelUnavailableError
from ...core.loading import load
from .base import Painter, PaintRequest

ONNX_FILE = "lama_fp32.onnx"  # the fp32 export in Carve/LaMa-ONNX (its model card)


class LamaPainter(Painter):
    name = "lama"
    checkpoint = "Carve/LaMa-ONNX"
    prompting = "caption"  # it reads no prompt
    guidance = "distilled"  # no guidance either: one forward pass
    native = 512
    default_steps = 1
    default_guidance = 0.0

    def __init__(self, session: Any) -> None:
        self.session = session
        inputs = session.get_inputs()
        self.inputs = [i.name for i in inputs]
        shape = list(inputs[0].shape)
        self.fixed = (shape[2], shape[3]) if all(isinstance(d, int) for d in shape[2:4]) else None
        if len(inputs) not in (1, 2):
            raise ModelUnavailableError(f"a LaMa graph takes an image and a mask; this one takes {len(inputs)} inputs")

    @classmethod
    def tiny_checkpoint(cls, folder: Path) -> Path:
        from ...testing.tiny import build_tiny_lama

        return build_tiny_lama(folder)

    @classmethod
    def from_pretrained(cls, model_id: str, device: str = "cpu", dtype: Any = None, **options: Any) -> LamaPainter:
        """The graph at `model_id` (a .onnx file, a folder holding one, or a Hub repo with ONNX_FILE),
        on ONNX Runtime's CPU provider. A preset's diffusion options do not apply; a LoRA of your
        own cannot be fused into a graph."""
        if options.get("adapter"):
            raise InvalidInputError("--lora: a LoRA of your own cannot be applied to LaMa (an ONNX graph)")
        try:
            import onnxruntime
        except ImportError:
            raise ModelUnavailableError("the lama painter needs onnxruntime: pip install onnxruntime") from None
        path = _onnx_path(model_id)
        session = load(
            "inpainting", path, lambda p: onnxruntime.InferenceSession(p, providers=["CPUExecutionProvider"])
        )
        return cls(session)

    def max_steps(self) -> int:
        return 1  # one forward pass, whatever the steps asked for

    def paint(self, image: np.ndarray, mask: np.ndarray, request: PaintRequest) -> np.ndarray:
        import cv2

        h, w = mask.shape
        if self.fixed is not None:
            fh, fw = self.fixed
            x = cv2.resize(image, (fw, fh), interpolation=cv2.INTER_AREA)
            m = cv2.resize(mask.astype(np.uint8), (fw, fh), interpolation=cv2.INTER_NEAREST) > 0
        else:
            ph, pw = -h % 8, -w % 8
            x = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect")
            m = np.pad(mask, ((0, ph), (0, pw)), mode="constant")
        if request.on_step is not None:
            request.on_step(0, 1)
        out = self._run(x, m)
        if self.fixed is not None:
            out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
        if request.on_step is not None:
            request.on_step(1, 1)
        return np.ascontiguousarray(out[:h, :w])

    def _run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One pass: RGB uint8 and bool mask in, RGB uint8 out, at the graph's input size."""
        rgb = image.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        hole = mask.astype(np.float32)[None, None]
        if len(self.inputs) == 2:
            feed = {self.inputs[0]: rgb, self.inputs[1]: hole}
        else:  # one input: the image with its hole zeroed, then the mask
            feed = {self.inputs[0]: np.concatenate([rgb * (1.0 - hole), hole], axis=1)}
        out = np.asarray(self.session.run(None, feed)[0])[0].transpose(1, 2, 0)
        if float(np.nanmax(out)) <= 1.5:  # an answer in [0, 1]
            out = out * 255.0
        return np.clip(np.nan_to_num(out), 0, 255).round().astype(np.uint8)


def _onnx_path(model_id: str) -> str:
    """A local .onnx file, the one .onnx in a local folder, or ONNX_FILE from the Hub repo `model_id`
    (downloaded once into the Hugging Face cache)."""
    local = Path(model_id).expanduser()
    if local.is_file():
        return str(local)
    if local.is_dir():
        found = sorted(local.glob("*.onnx"))
        if len(found) != 1:
            raise ModelUnavailableError(f"{model_id}: expected one .onnx graph in the folder, found {len(found)}")
        return str(found[0])
    from huggingface_hub import hf_hub_download

    return str(load("inpainting", model_id, lambda repo: hf_hub_download(repo, ONNX_FILE)))
