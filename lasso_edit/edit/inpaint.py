"""The `inpaint` executor: a painter (edit/painters/) repaints a crop around the mask.

docs/models.md: "never stretch a non-square photo to 512x512. Crop a region around the mask (with
context margin), resize it to the model's native size, inpaint, resize back, paste through the
mask." That part is here, the same for every painter: the crop keeps its aspect ratio
(arrays.model_size) at the painter's native size, the caption prompt is written from the edit,
the user's instruction goes along for painters that read instructions, the step count is
checked, and the painted crop is resized back and pasted; the editor composites it onto the
original through the feathered mask, so every pixel outside it is bit-identical whatever the
painter. The painter is picked from the checkpoint's model_index.json (edit/painters/__init__.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.actions import spec
from ..core.errors import InvalidInputError, ModelUnavailableError
from ..core.loading import load
from ..core.plan import Action, Edit
from ..imaging.arrays import paste, resize_rgb
from .base import ExecSettings
from .painters import PAINTERS, Painter, PaintRequest, checkpoint_of, painter_class, painter_spec
from .prepare import prepare_crop

if TYPE_CHECKING:
    import torch

    from ..core.stages import LoadOptions, Models
    from .deepcache import DeepCache


def prompts(edit: Edit) -> tuple[str, str]:
    """(prompt, negative prompt) for an edit: its action's caption (actions/specs.py), unless the
    plan gives its own."""
    prompt, negative = spec(edit.action).caption(edit)
    return edit.prompt or prompt, edit.negative_prompt or negative


class Inpainter:
    """The `inpaint` executor and the `inpainter` model stage: a painter behind the shared crop,
    prompt and paste."""

    name = "inpaint"
    example = Edit(Action.REPLACE, "ball", "cat")  # an edit it makes, for the contract test (tests/test_contracts.py)
    needs = ("inpainter",)

    @classmethod
    def create(cls, models: Models) -> Inpainter:
        return models("inpainter")

    @classmethod
    def build(cls, path: str, options: LoadOptions) -> Inpainter:
        p = options.preset
        return cls.from_pretrained(
            path,
            device=options.device,
            dtype=_painter_dtype(options),
            scheduler=p.scheduler,
            lora=options.lora,
            adapter=options.adapter,
            adapter_scale=options.adapter_scale,
            compile=options.compile,
            offload=options.low_vram,
            default_steps=p.steps,
            default_guidance=p.guidance,
            guidance_end=p.guidance_end,
            eta=p.eta,
            deepcache=options.deepcache,
            # a painter that loads no checkpoint (a hosted one: painters/openai.py) is given the key
            **({"api_key": options.inpainter_api_key} if checkpoint_of(path) is None else {}),
        )

    def __init__(
        self,
        painter: Painter | Any,
        model_id: str = "",
        default_steps: int = 30,
        default_guidance: float = 7.5,
        guidance_end: float = 1.0,
        eta: float | None = None,
        deepcache: int = 0,
    ) -> None:
        """`painter`: a Painter, or a loaded diffusers SD / SDXL inpainting pipeline (wrapped in its
        painter with `guidance_end`, `eta` and `deepcache`)."""
        if not isinstance(painter, Painter):
            wrap: Any = painter_class(type(painter).__name__)  # a pipeline's painter takes these
            painter = wrap(painter, guidance_end=guidance_end, eta=eta, deepcache=deepcache)
        self.painter = painter
        self.model_id = model_id
        self.default_steps = default_steps
        self.default_guidance = default_guidance

    # the painter's own, read through the executor by the trainer, the benchmarks and the tests
    @property
    def pipe(self) -> Any:
        return getattr(self.painter, "pipe", None)

    @property
    def deepcache(self) -> DeepCache | None:
        return getattr(self.painter, "deepcache", None)

    @property
    def kind(self) -> str:
        return self.painter.name

    @property
    def native(self) -> int:
        return self.painter.native

    @native.setter
    def native(self, value: int) -> None:
        self.painter.native = value

    @classmethod
    def from_pretrained(
        cls,
        model_id: str,
        device: str = "cpu",
        dtype: torch.dtype | None = None,
        *,
        compile: bool = False,
        default_steps: int = 30,
        default_guidance: float = 7.5,
        **painter_options: Any,
    ) -> Inpainter:
        """Load the painter `model_id` names (an `--inpainter` value: a painter's name, NAME:CHECKPOINT,
        or a checkpoint, whose model_index.json names its painter: painters/__init__.py).
        `painter_options` go to the painter's own `from_pretrained` (SD's: scheduler, lora, adapter,
        adapter_scale, offload, fast_kernels, guidance_end, eta, deepcache: edit/painters/sd.py)."""
        import os

        named, checkpoint = painter_spec(model_id)
        chosen: Any = PAINTERS.get(named) if named else None
        # None: a painter that loads none; a painter named that loads no diffusers pipeline (lama's
        # ONNX graph) reads its checkpoint itself
        diffusers_checkpoint = chosen is None or bool(chosen.pipeline)
        if checkpoint is not None and checkpoint_of(model_id) is not None and diffusers_checkpoint:
            import diffusers

            if os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS"):
                diffusers.utils.logging.disable_progress_bar()
            config = load("inpainting", checkpoint, diffusers.DiffusionPipeline.load_config)
            try:
                found = painter_class(str(config.get("_class_name", "")))
            except ModelUnavailableError:
                if chosen is None:
                    raise
                found = chosen  # a pipeline class Lasso does not know, with the painter the user named
            named_reads = chosen is not None and str(config.get("_class_name", "")) in chosen.reads
            if chosen is not None and found.name != chosen.name and not named_reads:
                raise InvalidInputError(
                    f"--inpainter {model_id}: {checkpoint} is a {found.name} checkpoint "
                    f"({config.get('_class_name')}), not {chosen.name}'s; say --inpainter {found.name}:{checkpoint}"
                )
            chosen = chosen if named_reads else found
        painter = chosen.from_pretrained(checkpoint, device, dtype, **painter_options)
        inpainter = cls(painter, model_id=model_id, default_steps=default_steps, default_guidance=default_guidance)
        if compile:
            inpainter.compile()
        return inpainter

    def compile(self) -> None:
        self.painter.compile()

    def max_steps(self) -> int:
        return self.painter.max_steps()

    @property
    def own_settings(self) -> tuple[int | None, float | None]:
        """The painter's own (steps, guidance), which the editor puts before the preset's: a
        4-step distilled model is not run for a preset's 30 steps at CFG 7.5. (None, None) for SD."""
        return self.painter.default_steps, self.painter.default_guidance

    def guidance(self, settings: ExecSettings) -> float:
        """The guidance scale: the user's, else the painter's own, else the preset's."""
        if settings.guidance is not None:
            return settings.guidance
        own = self.painter.default_guidance
        return self.default_guidance if own is None else own

    def execute(self, image: np.ndarray, region: np.ndarray, edit: Edit, settings: ExecSettings) -> np.ndarray:
        """Repaint `region` (bool HxW) of an RGB uint8 HxWx3 image; return the full image with the
        painted crop pasted in (the editor composites it through the alpha)."""
        action = spec(edit.action)
        crop = prepare_crop(image, region, self.native, whole=action.whole_crop)
        x0, y0, x1, y1 = crop.window
        prompt, negative = prompts(edit)
        steps = settings.steps or self.painter.default_steps or self.default_steps
        limit = self.max_steps()
        if steps > limit:  # diffusers would fail part-way (DDIM indexes past its 1000 training steps)
            raise InvalidInputError(
                f"--steps {steps} is more than this model's scheduler "
                f"({type(getattr(self.pipe, 'scheduler', self.painter)).__name__}) runs: at most {limit}"
            )
        request = PaintRequest(
            prompt=prompt,
            negative=negative,
            instruction=settings.instruction,
            action=edit.action.value,
            steps=steps,
            guidance=self.guidance(settings),
            strength=(edit.strength or settings.strength) if action.uses_strength else 1.0,
            seed=settings.seed,
            on_step=settings.on_step,
        )
        patch = resize_rgb(self.painter.paint(crop.image, crop.mask, request), (x1 - x0, y1 - y0))
        return paste(image, patch, crop.window)


def _painter_dtype(options: LoadOptions) -> Any:
    """The dtype the painter loads in: the options' (fp32 on a CPU unless --dtype says), or bf16 on
    a CPU with bf16 instructions where the preset asks for it (`cpu_bf16`) and no dtype was named."""
    import torch

    from ..core.loading import cpu_bf16

    p = options.preset
    wanted = p is not None and p.cpu_bf16 and str(options.device) == "cpu"
    if wanted and not options.dtype_asked and options.dtype in (None, torch.float32) and cpu_bf16():
        return torch.bfloat16
    return options.dtype
