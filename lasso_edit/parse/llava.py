"""The VLM parser: a LLaVA-family model reads the image and the instruction and answers a JSON plan.

The model class is picked from the checkpoint's config (`llava`, `llava_next`,
`llava_onevision`). The prompt goes through the processor's chat template (MODELS.md: "Use the
processor's chat template"); the answer is parsed tolerantly, re-asked once with the error, and
if still unusable the plan falls back to the rules parser with a warning, so the program never
crashes on model text.
"""

from __future__ import annotations

import numpy as np

from ..geometry import VisionFrame
from ..imaging import to_pil
from ..loading import load
from ..plan import EditPlan
from ..registry import PARSERS
from .answer import PlanParseError, edits_from_answer
from .rules import RulesParser

VLM_CLASSES = {
    "llava": "LlavaForConditionalGeneration",
    "llava_next": "LlavaNextForConditionalGeneration",
    "llava_onevision": "LlavaOnevisionForConditionalGeneration",
}

# Short on purpose: every output token costs ~7 ms on a 7B model (MODELS.md, "Keep the answer short").
PROMPT = (
    "You plan photo edits. Answer with compact JSON only, no prose:\n"
    '{{"edits":[{{"action":"recolor|replace|remove|background|add|style","target":"<object>",'
    '"value":"<new colour, object, scene or style; null for remove>","box":[x0,y0,x1,y1]}}]}}\n'
    "box: the target's bounding box as fractions 0-1 of the image; omit it if you cannot see the target.\n"
    "Instruction: {instruction}"
)
RETRY = "Your answer could not be used: {error}. Answer again with the JSON only."


@PARSERS.register("vlm")
class LlavaParser:
    """LLaVA / LLaVA-NeXT / LLaVA-OneVision through transformers -> EditPlan."""

    name = "vlm"

    def __init__(self, model, processor, model_id: str = "", max_new_tokens: int = 96, min_new_tokens: int = 0):
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.max_new_tokens = max_new_tokens
        self.min_new_tokens = min_new_tokens  # > 0 only for timing random-weight models
        self.fallback = RulesParser()

    @classmethod
    def from_pretrained(cls, model_id: str, device: str = "cpu", dtype=None, **kwargs) -> LlavaParser:
        import transformers

        config = load("VLM", model_id, transformers.AutoConfig.from_pretrained)
        cls_name = VLM_CLASSES.get(getattr(config, "model_type", ""))
        if cls_name is None:
            from ..errors import ModelUnavailableError

            raise ModelUnavailableError(
                f"VLM {model_id!r} is a {config.model_type!r} model; Lasso reads LLaVA-family checkpoints "
                f"({', '.join(VLM_CLASSES)})"
            )
        model_cls = getattr(transformers, cls_name)
        model = load("VLM", model_id, model_cls.from_pretrained, dtype=dtype, device_map=device)
        processor = load("VLM", model_id, transformers.AutoProcessor.from_pretrained)
        return cls(model.eval(), processor, model_id=model_id, **kwargs)

    # ------------------------------------------------------------------ one question
    def ask(self, image: np.ndarray, text: str) -> str:
        """Ask the VLM one question about an RGB uint8 HxWx3 image; return its answer text."""
        import torch

        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
        prompt = self.processor.apply_chat_template(conversation, add_generation_prompt=True)
        inputs = self.processor(images=to_pil(image), text=prompt, return_tensors="pt")
        inputs = {k: v.to(self.model.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            out = self.model.generate(
                **inputs, max_new_tokens=self.max_new_tokens, min_new_tokens=self.min_new_tokens, do_sample=False,
                pad_token_id=self.processor.tokenizer.pad_token_id or self.processor.tokenizer.eos_token_id,
            )
        new_tokens = out[0, inputs["input_ids"].shape[1]:]
        return self.processor.decode(new_tokens, skip_special_tokens=True).strip()

    def frame(self, image: np.ndarray) -> VisionFrame:
        return VisionFrame.from_image_processor(self.processor.image_processor, image.shape[1], image.shape[0])

    # ------------------------------------------------------------------ the stage
    def parse(self, image: np.ndarray, instruction: str) -> EditPlan:
        frame = self.frame(image)
        question = PROMPT.format(instruction=instruction.strip())
        answers: list[str] = []
        error: PlanParseError | None = None
        for attempt in range(2):
            text = self.ask(image, question if attempt == 0 else question + "\n" + RETRY.format(error=error))
            answers.append(text)
            try:
                edits = edits_from_answer(text, frame)
                return EditPlan(edits=edits, instruction=instruction, source="vlm", raw_answer=text)
            except PlanParseError as e:
                error = e
        plan = self.fallback.parse(image, instruction)
        plan.source = "rules (fallback)"
        plan.raw_answer = answers[-1]
        plan.warnings.insert(0, f"the VLM's answer was unusable twice ({error}); the plan comes from the rules parser")
        return plan
