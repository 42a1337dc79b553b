"""The VLM parser: a LLaVA-family model reads the image and the instruction and answers a plan.

The model class is picked from the checkpoint's config (`llava`, `llava_next`,
`llava_onevision`). The prompt goes through the processor's chat template (docs/models.md: "Use the
processor's chat template").

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
import re
from typing import Any

import numpy as np

from ..arrays import shrink, to_pil
from ..errors import InvalidInstructionError
from ..geometry import VisionFrame, size_field
from ..loading import load, model_class
from ..plan import EditPlan
from .answer import PlanParseError, edits_from_answer
from .rules import RulesParser

VLM_CLASSES = {
    "llava": "LlavaForConditionalGeneration",
    "llava_next": "LlavaNextForConditionalGeneration",
    "llava_onevision": "LlavaOnevisionForConditionalGeneration",
}

# Short on purpose: every output token costs ~7 ms on a 7B model (docs/models.md, "Keep the answer short").
PROMPT = (
    "You plan photo edits. Answer with a JSON list only, one item per edit: [action,target,value,box].\n"
    "action: recolor, replace, remove, background, add, style or adjust. target: the object to edit "
    "(null for the whole photo). value: the new colour, object, scene or style; for adjust one of blur, "
    "pixelate, brighter, darker, more contrast, less contrast, black and white; null for remove. "
    "box: the target's [x0,y0,x1,y1] in percent of the image (0-99), or null if you cannot see it.\n"
    'Example: [["recolor","car","red",[10,40,55,80]]]\n'
    "Instruction: {instruction}"
)
RETRY = "Your answer could not be used: {error}. Answer again with the JSON only."

_PHRASE = {"type": "string", "pattern": "^[A-Za-z0-9 ,.'&/-]{1,48}$"}
_PERCENT = {"type": "integer", "minimum": 0, "maximum": 99}
# The JSON schema the constrained decoder follows: 1-4 edits of [action, target, value, box].
ANSWER_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "maxItems": 4,
    "items": {
        "type": "array",
        "prefixItems": [
            {"enum": ["recolor", "replace", "remove", "background", "add", "style", "adjust"]},
            {"anyOf": [_PHRASE, {"type": "null"}]},
            {"anyOf": [_PHRASE, {"type": "null"}]},
            {
                "anyOf": [
                    {"type": "array", "prefixItems": [_PERCENT] * 4, "items": False, "minItems": 4, "maxItems": 4},
                    {"type": "null"},
                ]
            },
        ],
        "items": False,
        "minItems": 4,
        "maxItems": 4,
    },
}


def _longest_target(ip) -> int:
    """The largest side, in pixels, that an image processor resizes to (its size, crop and anyres grid)."""
    sides: list[int] = []
    for attr in ("size", "crop_size"):
        v = getattr(ip, attr, None)
        vals = (size_field(v, k) for k in ("shortest_edge", "longest_edge", "height", "width"))
        sides += [int(x) for x in vals if isinstance(x, (int, float))]
    for pin in getattr(ip, "image_grid_pinpoints", None) or []:
        sides += [int(x) for x in pin]
    return max(sides) if sides else 1024


class PlanLoop:
    """The planning loop every VLM backend shares: ask, parse the answer tolerantly, re-ask once with
    the error (unless the answer was constrained to the schema), fall back to the rules parser.
    A backend gives `ask(image, text)`, `frame(image)` (the frame its boxes are fractions of) and
    `constrained`. It is both the `vlm` parser and the `vlm` model stage (the parser is the model)."""

    name = "vlm"
    needs = ("vlm",)
    constrained = False
    fallback = RulesParser()

    def ask(self, image: np.ndarray, text: str, constrained: bool | None = None) -> str:
        raise NotImplementedError  # each backend's

    def frame(self, image: np.ndarray) -> VisionFrame:
        raise NotImplementedError  # each backend's

    @classmethod
    def create(cls, models) -> PlanLoop:
        return models("vlm")

    # ------------------------------------------------------------------ the stage
    def parse(self, image: np.ndarray, instruction: str) -> EditPlan:
        frame = self.frame(image)
        question = PROMPT.format(instruction=instruction.strip())
        answers: list[str] = []
        error: PlanParseError | None = None
        for attempt in range(2):
            if attempt and self.constrained:  # a constrained answer always parses: asking again cannot help
                break  # (read after the first ask: a server may have refused the schema and answered freely)
            text = self.ask(image, question if attempt == 0 else question + "\n" + RETRY.format(error=error))
            answers.append(text)
            try:
                edits = edits_from_answer(text, frame)
            except PlanParseError as e:
                error = e
                continue
            plan = EditPlan(edits=edits, instruction=instruction, source="vlm", raw_answer=text)
            try:
                check_grounded(edits, instruction)
                return plan
            except PlanParseError as e:
                error = e
                if not reads_as_english(instruction):  # another language: its words can't be matched; warn
                    plan.warnings.append(f"{e}: check the plan before painting")
                    return plan
                break  # English: the rules parser reads it (below), or nobody does and it is refused
        try:
            plan = self.fallback.parse(image, instruction)
        except InvalidInstructionError as refused:  # the VLM's answer unusable and the rules refuse: refuse
            raise InvalidInstructionError(
                f"{refused} (and the VLM's plan was unusable: {str(error).split(';')[0]})"
            ) from None
        plan.source = "rules (fallback)"
        plan.raw_answer = answers[-1]
        how = "unusable" if len(answers) == 1 else "unusable twice"
        plan.warnings.insert(
            0, f"the VLM's answer was {how} ({str(error).split(';')[0]}); the plan comes from the rules parser"
        )
        return plan


class LlavaParser(PlanLoop):
    """LLaVA / LLaVA-NeXT / LLaVA-OneVision through transformers -> EditPlan."""

    label = "the VLM alone"

    @classmethod
    def build(cls, path: str, options) -> PlanLoop:
        return cls.from_pretrained(
            path,
            device=options.device,
            dtype=options.dtype,
            quantize_4bit=options.low_vram,
            static_cache=options.compile,
        )

    def __init__(
        self,
        model,
        processor,
        model_id: str = "",
        max_new_tokens: int = 96,
        min_new_tokens: int = 0,
        constrained: bool = True,
        static_cache: bool = False,
    ):
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
        cls, model_id: str, device: str = "cpu", dtype=None, quantize_4bit: bool = False, **kwargs
    ) -> LlavaParser:
        import transformers

        _, model_cls = model_class("VLM", model_id, VLM_CLASSES, f"LLaVA-family checkpoints ({', '.join(VLM_CLASSES)})")
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
        small = shrink(image, max_short=2 * _longest_target(self.processor.image_processor))
        inputs = self.processor(images=to_pil(small), text=prompt, return_tensors="pt")
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs, prompt, small.shape[:2]

    def frame(self, image: np.ndarray) -> VisionFrame:
        return VisionFrame.from_image_processor(self.processor.image_processor, image.shape[1], image.shape[0])


_WORD = re.compile(r"[a-z0-9]+")
_FILLER = {
    "the",
    "and",
    "with",
    "into",
    "make",
    "turn",
    "change",
    "replace",
    "remove",
    "add",
    "put",
    "style",
    "color",
    "colour",
    "background",
    "image",
    "photo",
    "picture",
    "look",
    "like",
    "from",
    "all",
    "its",
}


def _stems(text: str) -> set[str]:
    words = (w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _FILLER)
    return {
        w[:-2] if w.endswith("es") and len(w) > 4 else w[:-1] if w.endswith("s") and len(w) > 3 else w for w in words
    }


# Words nearly every English instruction holds; an instruction with none is in another language,
# whose words a plan in English cannot share (docs/decisions.md, "An unusable plan is never painted").
_ENGLISH = {
    "the",
    "a",
    "an",
    "make",
    "it",
    "to",
    "of",
    "in",
    "on",
    "with",
    "and",
    "turn",
    "change",
    "remove",
    "add",
    "replace",
    "put",
    "please",
    "this",
    "that",
    "my",
    "its",
    "is",
    "more",
    "less",
    "look",
    "like",
    "into",
    "from",
    "get",
    "rid",
    "want",
    "should",
    "be",
    "photo",
    "picture",
    "image",
    "background",
}


def reads_as_english(text: str) -> bool:
    return bool(set(_WORD.findall(text.lower())) & _ENGLISH)


def check_grounded(edits, instruction: str) -> None:
    """Raise PlanParseError when no target or value of the plan shares a word with the instruction.

    A constrained decoder always answers well-formed JSON, even when the model has not understood
    (or, in tests, is random): a plan that names nothing the user wrote is not trusted.
    """
    said = _stems(instruction)
    named = set().union(*(_stems(" ".join(v for v in (e.target, e.value, e.subject) if v)) for e in edits))
    if said and not (named & said):
        raise PlanParseError("the plan names nothing from the instruction; use the instruction's own words")


def bnb_4bit_config(dtype):
    """A 4-bit NF4 bitsandbytes config for --low-vram; a clear error when bitsandbytes is missing."""
    import importlib.util

    from ..errors import ModelUnavailableError

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
