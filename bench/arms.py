"""The two arms of bench/compare.py, on the same model objects, image, instruction and seed.

- baseline: the chain a user writes from the model cards. One LLaVA `generate` at its defaults
  (greedy, dynamic cache); `SamProcessor` + `SamModel` (float32, as the card loads it) +
  `post_process_masks`; `StableDiffusionInpaintPipeline` at its defaults (the checkpoint's PNDM,
  50 steps, guidance 7.5) on the whole frame squashed to 512x512, resized back.
- same-settings: the same chain with Lasso's diffusion settings (its scheduler, steps, guidance
  and guidance cut), still on the whole frame squashed to 512x512, as a user's script that copied
  the settings would run. Against it, Lasso's ratio is what the engineering buys (cropping, bf16
  SAM, in-window post-processing, the constrained VLM answer...), not the configuration.
- lasso: `Editor` with the balanced preset's stages, built by the product's own classes and
  `prepare_pipeline` from the same weights.

Oracles: both arms run every model for its cost, then an oracle replaces what a random model
answers (the plan, the box, the mask), so both paint the same region. Both arms decode the
same fixed number of VLM tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

# A compact one-edit plan is ~20 Llama tokens ([["remove","car",null,[12,40,55,80]]]); a keyed
# JSON object as users prompt for it is ~40-50. Both arms decode this many (issue 10).
VLM_TOKENS = 24

INSTRUCTIONS = {
    "remove": "remove the car",
    "replace": "replace the car with a truck",
    "background": "replace the background with a beach at sunset",
    "recolor": "make the car red",
}
BASELINE_PROMPT = ('Plan this photo edit as JSON {{"action": ..., "target": ..., "value": ..., '
                   '"box": [x0, y0, x1, y1]}}. Instruction: {instruction}')


# --------------------------------------------------------------------------- timing
class Clock:
    """Per-stage device time with CUDA events (host time on the CPU); read after a synchronize."""

    def __init__(self, cuda: bool):
        self.cuda = cuda
        self.marks: list[tuple[str, object, object]] = []

    def stage(self, name: str):
        clock = self

        class _Span:
            def __enter__(self):
                self.start = clock._mark()
                return self

            def __exit__(self, *exc):
                clock.marks.append((name, self.start, clock._mark()))

        return _Span()

    def _mark(self):
        if self.cuda:
            import torch

            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def read(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, a, b in self.marks:
            dt = a.elapsed_time(b) / 1000.0 if self.cuda else b - a
            out[name] = out.get(name, 0.0) + dt
        self.marks = []
        return out


# --------------------------------------------------------------------------- cases
@dataclass
class Case:
    name: str
    size: tuple[int, int]  # (height, width)
    action: str
    fraction: float  # area of the oracle mask (the subject's, for background)
    image: np.ndarray = field(repr=False, default=None)
    mask: np.ndarray = field(repr=False, default=None)
    box: tuple[float, float, float, float] = (0, 0, 0, 0)
    text: str | None = None  # an instruction of its own (bench/matrix.py's blur); else the action's

    @property
    def instruction(self) -> str:
        return self.text or INSTRUCTIONS[self.action]


def make_case(h: int, w: int, action: str, fraction: float, seed: int = 0) -> Case:
    """A photo-like test image (smooth colour fields, edges, a little grain) and an elliptical
    oracle mask of `fraction` of its area, centred a little below the middle."""
    import cv2

    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(0, 8, (min(h, 512), min(w, 512), 3), dtype=np.uint8)
    img[: grain.shape[0], : grain.shape[1]] += grain  # wraps at 255: a few hard edges, as photos have
    a = np.sqrt(fraction * h * w / np.pi * (w / h))
    b = fraction * h * w / (np.pi * a)
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w // 2, int(h * 0.55)), (max(1, int(a)), max(1, int(b))), 0, 0, 360, 1, -1)
    mask = m.astype(bool)
    ys, xs = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    box = (float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1))
    name = f"{w}x{h} {action} {int(round(fraction * 100))}%"
    return Case(name, (h, w), action, fraction, img, mask, box)


# --------------------------------------------------------------------------- baseline
@dataclass
class BaselineModels:
    vlm: object
    vlm_processor: object
    sam: object  # float32, as the model card loads it
    sam_processor: object
    pipe: object  # the checkpoint's scheduler, no Lasso settings
    device: str


@dataclass
class Diffusion:
    """How the chain calls the inpainting pipeline: the checkpoint's defaults unless told."""

    pipe: object
    steps: int = 50
    guidance: float = 7.5
    guidance_end: float = 1.0  # fraction of the steps after which guidance is dropped (Lasso: 0.8)


def _guidance_cut(total: int, end: float):
    """diffusers' step callback that drops classifier-free guidance after `end` of the steps, as
    Lasso's Inpainter does (the batch halves of the guided tensors are dropped)."""
    stop = total if end >= 1.0 else max(1, round(total * end))

    def callback(pipe, i, t, kwargs):
        if i + 1 == stop and stop < total and pipe._guidance_scale > 1.0:
            pipe._guidance_scale = 0.0
            for k in ("prompt_embeds", "mask", "masked_image_latents"):
                if kwargs.get(k) is not None:
                    kwargs[k] = kwargs[k].chunk(2)[-1]
        return kwargs

    return callback


def baseline_edit(m: BaselineModels, case: Case, tokens: int, seed: int, clock: Clock,
                  diffusion: Diffusion | None = None) -> np.ndarray:
    """The model-card chain (or, with `diffusion`, the chain at other diffusion settings). Returns
    the output RGB array at the input's size."""
    import torch
    from PIL import Image

    h, w = case.size
    pil = Image.fromarray(case.image)
    with clock.stage("parse"):
        conv = [{"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": BASELINE_PROMPT.format(instruction=case.instruction)}]}]
        prompt = m.vlm_processor.apply_chat_template(conv, add_generation_prompt=True)
        inputs = m.vlm_processor(images=pil, text=prompt, return_tensors="pt").to(m.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(m.vlm.dtype)
        with torch.inference_mode():
            out = m.vlm.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens)
        m.vlm_processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    with clock.stage("segment"):
        inputs = m.sam_processor(pil, input_boxes=[[list(case.box)]], return_tensors="pt").to(m.device)
        with torch.inference_mode():
            outputs = m.sam(**inputs)
        masks = m.sam_processor.image_processor.post_process_masks(
            outputs.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu())
        best = int(outputs.iou_scores[0, 0].argmax())
        masks[0][0, best].numpy()  # the user's mask; the oracle's is painted instead
    with clock.stage("edit"):
        action = case.action
        prompt = {"remove": "background", "replace": "a truck", "background": "a beach at sunset",
                  "recolor": "a red car"}[action]
        region = ~case.mask if action == "background" else case.mask
        mask_img = Image.fromarray(region.astype(np.uint8) * 255)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        d = diffusion or Diffusion(m.pipe)
        kw = {} if diffusion is None else {
            "num_inference_steps": d.steps, "guidance_scale": d.guidance,
            "callback_on_step_end": _guidance_cut(d.steps, d.guidance_end),
            "callback_on_step_end_tensor_inputs": ["latents", "prompt_embeds", "mask", "masked_image_latents"]}
        result = d.pipe(prompt=prompt, image=pil.resize((512, 512)), mask_image=mask_img.resize((512, 512)),
                        generator=gen, **kw).images[0]
        return np.asarray(result.resize((w, h)))


# --------------------------------------------------------------------------- lasso
class Oracle:
    """What the random models cannot know: set per case."""

    case: Case | None = None


class _Stage:
    """Wraps a product stage: the named methods below are replaced, everything else is the stage's own."""

    def __init__(self, inner, oracle: Oracle | None, clock: Clock):
        self.inner, self.oracle, self.clock = inner, oracle, clock

    def __getattr__(self, name):
        return getattr(self.inner, name)


class OracleParser(_Stage):
    """Runs the VLM parser for its cost; answers the plan the rules parser reads from the instruction."""

    def parse(self, image, instruction):
        from lasso_edit.parse.rules import RulesParser

        with self.clock.stage("parse"):
            self.inner.parse(image, instruction)
        plan = RulesParser().parse(image, instruction)
        plan.source = "vlm"  # as a real VLM's answer would be taken
        return plan


class OracleDetector(_Stage):
    def detect(self, image, phrase):
        with self.clock.stage("ground"):
            self.inner.detect(image, phrase)
        return [self.oracle.case.box], [0.99]


class OracleSegmenter(_Stage):
    def set_image(self, image):
        with self.clock.stage("sam-encode (overlapped)"):
            return self.inner.set_image(image)

    def segment(self, image, grounding):
        from lasso_edit.core.plan import Segmentation

        with self.clock.stage("segment"):
            seg = self.inner.segment(image, grounding)
        return Segmentation(mask=self.oracle.case.mask.copy(), score=seg.score)


class OracleConcept(OracleSegmenter):
    """SAM 3: its concept search runs for its cost (the `sam3` grounder's ground step); the answer
    is the case's own box and mask."""

    def find(self, image, phrase, threshold=0.0):
        from lasso_edit.segment.sam3 import Instance

        with self.clock.stage("ground"):
            self.inner.find(image, phrase, threshold=0.0)
        return [Instance(tuple(map(float, self.oracle.case.box)), 0.99, self.oracle.case.mask.copy())]


class TimedExecutor(_Stage):
    def execute(self, image, region, edit, settings):
        with self.clock.stage("edit"):
            return self.inner.execute(image, region, edit, settings)


def lasso_editor(stages: dict, oracle: Oracle, clock: Clock, preset, overlap: bool, device: str,
                 parser: str = "auto", grounder: str = "auto"):
    """An Editor over product stages (a VLM parser, a detector, a SAM segmenter, an inpainter) with
    oracles; a SAM 3 segmenter (grounder "sam3") is timed for its concept search too."""
    from lasso_edit import Editor

    segmenter = OracleConcept if hasattr(stages["segmenter"], "find") else OracleSegmenter
    wrapped = {
        "vlm": OracleParser(stages["vlm"], oracle, clock),
        "segmenter": segmenter(stages["segmenter"], oracle, clock),
        "inpainter": TimedExecutor(stages["inpainter"], None, clock),
    }
    if "detector" in stages:
        wrapped["detector"] = OracleDetector(stages["detector"], oracle, clock)
    return Editor({k: (lambda v=v: v) for k, v in wrapped.items()}, models={k: "random" for k in wrapped},
                  parser=parser, grounder=grounder, box_threshold=0.0, steps=preset.steps, guidance=preset.guidance,
                  overlap=overlap, device=device)
