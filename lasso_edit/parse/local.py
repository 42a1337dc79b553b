"""A VLM run here through transformers: what LLaVA (llava.py) and Qwen-VL (qwen.py) share.

One ask, not two. The answer schema is compact (a list of `[action, target, value, box]`, the box
in integer percent: about 20 tokens for one edit, where a keyed JSON object with fractional
boxes took about 40), and decoding is constrained to that schema by xgrammar's JSON-schema
logits processor, so the answer always parses and is never re-asked. Without xgrammar the
answer is parsed tolerantly and re-asked once with the error. An unusable plan falls back to
the rules parser with a warning, so the program never crashes on model text.

`static_cache=True` decodes with a static KV cache; on CUDA transformers then compiles the
decoding step with torch.compile (a long first call, faster tokens after it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.loading import load, model_class
from ..imaging.arrays import to_pil
from .loop import ANSWER_SCHEMA, ImageAttention, PlanLoop

if TYPE_CHECKING:
    import torch

    from ..core.stages import LoadOptions


class LocalVLM(PlanLoop):
    """A VLM run here through transformers: one constrained ask per plan, its chat template, its
    attention read by the attention grounder. A family (llava.py, qwen.py) gives its checkpoint
    classes (`CLASSES`: config model_type -> transformers class), how big a copy its processor
    wants (`shrink`), the frame its boxes are fractions of (`frame`) and where each image token
    lies (`token_places`)."""

    CLASSES: dict[str, str] = {}
    family = "a VLM"

    label = "the VLM alone"

    @classmethod
    def build(cls, path: str, options: LoadOptions) -> PlanLoop:
        return cls.from_pretrained(
            path,
            device=options.device,
            dtype=options.dtype,
            quantize_4bit=options.low_vram,
            static_cache=options.compile,
        )

    def __init__(
        self,
        model: Any,
        processor: Any,
        model_id: str = "",
        max_new_tokens: int = 96,
        min_new_tokens: int = 0,
        constrained: bool = True,
        static_cache: bool = False,
    ) -> None:
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.max_new_tokens = max_new_tokens
        self.min_new_tokens = min_new_tokens  # > 0 only for timing random-weight models
        self.static_cache = static_cache
        self._grammar: Any = None
        self.constrained = constrained and self._compile_grammar()
        self.last_new_tokens = 0  # tokens decoded by the last ask, for timings

    @classmethod
    def from_pretrained(
        cls,
        model_id: str,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        quantize_4bit: bool = False,
        **kwargs: Any,
    ) -> LocalVLM:
        import transformers

        _, model_cls = model_class("VLM", model_id, cls.CLASSES, f"{cls.family} checkpoints ({', '.join(cls.CLASSES)})")
        extra = {}
        if quantize_4bit:
            extra["quantization_config"] = bnb_4bit_config(dtype)
        model = load("VLM", model_id, model_cls.from_pretrained, dtype=dtype, device_map=device, **extra)
        processor = load("VLM", model_id, transformers.AutoProcessor.from_pretrained)
        return cls(model.eval(), processor, model_id=model_id, **kwargs)

    def _compile_grammar(self) -> bool:
        """Compile ANSWER_SCHEMA for this tokenizer with xgrammar, once; False when xgrammar is missing."""
        try:
            import xgrammar as xgr
        except ImportError:
            return False
        vocab = self.model.get_output_embeddings().weight.shape[0]
        info = xgr.TokenizerInfo.from_huggingface(self.processor.tokenizer, vocab_size=vocab)
        self._grammar = xgr.GrammarCompiler(info).compile_json_schema(
            json.dumps(ANSWER_SCHEMA), any_whitespace=False, separators=(",", ":")
        )
        return True

    # ------------------------------------------------------------------ one question
    def ask(self, image: np.ndarray, text: str, constrained: bool | None = None) -> str:
        """Ask the VLM one question about an RGB uint8 HxWx3 image; return its answer text.

        `constrained` (default: whether xgrammar is available) holds the answer to ANSWER_SCHEMA.
        """
        import torch

        constrained = self.constrained if constrained is None else constrained
        inputs, _, _ = self.inputs(image, text)
        kwargs: dict[str, Any] = {}
        if constrained and self._grammar is not None:
            import xgrammar as xgr

            kwargs["logits_processor"] = [xgr.contrib.hf.LogitsProcessor(self._grammar)]
        if self.static_cache:
            kwargs["cache_implementation"] = "static"
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                min_new_tokens=self.min_new_tokens,
                do_sample=False,
                pad_token_id=self.processor.tokenizer.pad_token_id or self.processor.tokenizer.eos_token_id,
                **kwargs,
            )
        new_tokens = out[0, inputs["input_ids"].shape[1] :]
        self.last_new_tokens = int(new_tokens.shape[0])
        return self.processor.decode(new_tokens, skip_special_tokens=True).strip()

    def inputs(self, image: np.ndarray, text: str) -> tuple[dict, str, tuple[int, int]]:
        """The model's inputs for one question about an image, on its device: (inputs, the prompt as
        the chat template wrote it, (height, width) of the copy the processor was given)."""
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        prompt = self.processor.apply_chat_template(conversation, add_generation_prompt=True)
        # The processor resizes to a few hundred pixels: hand it a pre-shrunk copy, not 24 MP.
        # Aspect ratio is kept, so the frame of `self.frame(image)` still applies.
        small = self.shrink(image)
        inputs = self.processor(images=to_pil(small), text=prompt, return_tensors="pt")
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs, prompt, small.shape[:2]

    def shrink(self, image: np.ndarray) -> np.ndarray:
        """The copy of the image the processor is given (its own resize is the model's)."""
        raise NotImplementedError  # each family's

    def token_places(
        self, inputs: dict, small_hw: tuple[int, int], orig_hw: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(centres (N, 2), cells (N, 2), groups (N,)) of the image tokens in pixels of the original."""
        raise NotImplementedError  # each family's

    def attention(
        self,
        image: np.ndarray,
        text: str,
        query: str,
        layers_of: Callable[[int], list[int]],
        heads: Sequence[int] | None,
    ) -> ImageAttention:
        """Its attention from `query`'s tokens to the image tokens, with their places (llava_attention.py)."""
        from .llava_attention import image_attention  # the hooks work on any decoder with .layers

        return image_attention(self, image, text, query, layers_of, heads)


def bnb_4bit_config(dtype: torch.dtype | None) -> Any:
    """A 4-bit NF4 bitsandbytes config for --low-vram; a clear error when bitsandbytes is missing."""
    import importlib.util

    from ..core.errors import ModelUnavailableError

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelUnavailableError(
            "--low-vram loads the VLM in 4 bits and needs bitsandbytes: "
            "pip install 'lasso-edit[low-vram]' (or pip install bitsandbytes)"
        )
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype or torch.float16,
    )
