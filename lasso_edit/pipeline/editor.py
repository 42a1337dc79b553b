"""The Editor: builds the stages from a preset and runs one edit in numbered steps.

    editor = Editor.from_preset("balanced", device="cuda")
    result = editor("photo.jpg", "make the car red", seed=7)
    result.image.save("out.png")

Models are loaded on first use and kept; SAM's image embedding is cached per image.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.actions import RECOLOR_MODES, spec
from ..core.config import EditorConfig
from ..core.errors import InvalidInputError, ModelUnavailableError, TargetNotFoundError
from ..core.loading import dtype_named, ensure_available, resolve_device, resolve_dtype
from ..core.plan import Action, Correction, Edit, EditPlan, Grounding, Notice, Segmentation
from ..core.presets import AUTO, DEFAULT_PRESET, OPENAI_URL, Preset, auto_notice, get_preset
from ..core.registry import EXECUTORS, GROUNDERS, MODELS, PARSERS
from ..core.stages import LoadOptions
from ..edit.base import ExecSettings
from ..ground.select import ANOTHER, apart
from ..imaging import LoadedImage, deep, restore
from ..imaging.arrays import composite, ellipse_mask, mask_bbox, union_max
from ..parse.limits import check_edit_count
from ..testing import resolve_tiny
from .inputs import check_corrections, check_inputs
from .many import BatchItem, BatchOutcome, edit_many
from .pool import ModelPool
from .prefetch import Prefetch
from .refine import RefineSettings, refine, within
from .result import EditResult, EditStep

Progress = Callable[[str], None]

# A mask over this share of the picture for one object is said (the badge of the page, the CLI's warning).
LARGE_MASK = 0.5
# What a preset of random models (`tiny`) says once, in place of the warnings its noise would raise
# every run: these codes read as faults of a real model, and with random weights they are the design.
RANDOM_WEIGHTS = Notice(
    "the tiny preset's models are random by design: its pictures are noise, its plumbing (plan, masks, "
    "compositing, files) is real",
    "random_weights",
    "This runs the tiny test models: they are random, so the pictures are noise; everything around them is real.",
)
MODEL_NOISE = {"plan_from_words", "plan_unchecked", "not_found", "unsure", "rough_mask", "large_mask"}


class Editor:
    """Orchestrates parse -> ground -> segment -> refine -> execute -> composite.

    Stages are passed in (any object with the stage's one method) or built lazily from a preset
    by `from_preset`. `builders` maps a stage name to a zero-argument function that loads it.
    """

    def __init__(
        self,
        builders: dict[str, Callable[[], Any]],
        *,
        models: dict[str, str],
        parser: str = "auto",
        grounder: str = "auto",
        box_threshold: float = 0.15,
        recolor: str = "texture",
        steps: int = 30,
        guidance: float = 7.5,
        refine_settings: RefineSettings = RefineSettings(),
        overlap: bool = False,
        device: str | None = None,
        attention: Any = None,
        random_weights: bool = False,
    ):
        _check_stages(builders, parser, grounder)
        if recolor not in RECOLOR_MODES:
            raise InvalidInputError(f"unknown recolor mode {recolor!r}; use one of: {', '.join(RECOLOR_MODES)}")
        self.pool = ModelPool(builders)  # pool.py: each model-backed stage loaded once, on first use
        self.config: EditorConfig | None = None  # set by from_config
        self.models = models
        self.parser_name = parser
        self.grounder_name = grounder
        self.box_threshold = box_threshold
        self.recolor_mode = recolor
        self.steps = steps
        self.guidance = guidance
        self.refine_settings = refine_settings
        self.device = device  # where the models run; None when the stages were passed in
        # Detect and encode the image for SAM in a thread while the VLM decodes. Off by default:
        # on an H200 it made edits 0.80x as fast, the thread's Python contending with the VLM's
        # token loop for the GIL (bench/results/compare_h200.md, docs/decisions.md "Overlap").
        self.overlap = bool(overlap)
        self.attention = attention  # ground.attention.AttentionSettings: the layers and heads read (None: defaults)
        # Random models (the tiny preset's): one notice says so, in place of the warnings of their noise.
        self.random_weights = bool(random_weights)
        self.chosen: str | None = None  # what `--preset auto` chose and why, said once by a surface (from_config)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_preset(cls, preset: str | Preset = DEFAULT_PRESET, **options: Any) -> Editor:
        """An editor for a named preset: `from_config(EditorConfig(preset=preset, **options))`.

        `options` are EditorConfig's fields (config.py says what each does): any stage overridden
        by a Hub id or a local folder (`vlm`, `segmenter`, `inpainter`, `detector`), `device`,
        `dtype`, `parser`, `grounder`, `compile`, `low_vram`, `lora`, ... An unknown one is an
        InvalidInputError naming the known ones.

        Nothing is loaded yet, but every model the chosen stages need is checked first: a local
        path that does not exist, or (with HF_HUB_OFFLINE=1) a Hub id missing from the cache,
        raises ModelUnavailableError at once, naming every missing id.
        """
        return cls.from_config(EditorConfig.of(preset=preset, **options))

    @classmethod
    def from_config(cls, config: EditorConfig) -> Editor:
        """An editor for `config` (config.py): what every surface builds one with."""
        c = config
        p = get_preset(
            c.preset,
            vlm=c.vlm,
            segmenter=c.segmenter,
            inpainter=c.inpainter,
            detector=c.detector,
            remover=c.remover,
            adapter=c.lora,
            adapter_scale=c.lora_scale,
        )
        if not 0.0 <= p.adapter_scale <= 2.0:
            raise InvalidInputError(f"--lora-scale must be between 0 and 2, got {p.adapter_scale}")
        grounder = c.grounder or p.grounder
        parser = c.parser or p.parser
        if p.vlm.startswith("openai:"):
            from ..parse.remote import parse_spec

            parse_spec(p.vlm)  # a malformed remote id is bad input, said before anything loads
            if grounder == "attention":
                raise InvalidInputError(
                    "--grounder attention reads a local VLM's attention; a remote VLM "
                    f"({p.vlm}) has none to read: use --grounder auto, detector or vlm"
                )
        _need_openai_key(p, c)
        ids = _available_models(c, p.models(), parser, grounder)
        paths = resolve_tiny(ids)
        dev = resolve_device(c.device)
        torch_dtype = resolve_dtype(c.dtype, dev)
        if c.low_vram and not dev.startswith("cuda"):
            raise InvalidInputError("--low-vram is for CUDA GPUs; on this device every model already runs from RAM")
        options = LoadOptions(
            device=dev,
            dtype=torch_dtype,
            dtype_asked=dtype_named(c.dtype),
            compile=c.compile,
            low_vram=c.low_vram,
            deepcache=c.deepcache,
            lora=paths.get("lora"),
            adapter=paths.get("adapter"),
            adapter_scale=p.adapter_scale,
            vlm_api_key=c.vlm_api_key,
            inpainter_api_key=c.inpainter_api_key,
            preset=p,
        )
        builders: dict[str, Callable[[], Any]] = {
            name: functools.partial(MODELS.get(name).build, paths[name], options)
            for name in paths
            if name not in ("lora", "adapter")
        }
        threshold = p.box_threshold if c.box_threshold is None else c.box_threshold
        if not 0.0 <= threshold <= 1.0:
            raise InvalidInputError(f"box threshold must be in [0, 1], got {threshold}")
        editor = cls(
            builders,
            models=ids,
            parser=parser,
            grounder=grounder,
            box_threshold=threshold,
            recolor=c.recolor,
            steps=p.steps,
            guidance=p.guidance,
            overlap=c.overlap,
            device=dev,
            attention=c.attention,
            random_weights=p.random_weights and all(v.startswith("tiny:") for v in ids.values()),
        )
        editor.config = config  # what it was built from (its resolved choices are on the editor)
        # `auto` picked a preset for this machine: what a surface says once (None: nothing to say)
        editor.chosen = auto_notice(p) if c.preset == AUTO and p.name == "lite" else None
        return editor

    def stage(self, name: str) -> Any:
        """The loaded model-backed stage `name` ("vlm", "segmenter", "inpainter", "detector"), loading it once."""
        return self.pool.get(name)

    def unload(self, *names: str) -> None:
        """Drop loaded models (all, or the stages named) and return their GPU memory; they reload on next use."""
        self.pool.unload(*names)

    def preload(self) -> None:
        """Load every stage's model now (by default each loads on first use)."""
        self.pool.preload()

    def use(self, name: str, stage: Any) -> None:
        """Serve `stage` as the model-backed stage `name` from now on (a wrapper around the loaded
        one, a stand-in): what a benchmark's oracle arm or a test's counting stage does."""
        self.pool.put(name, stage)

    def has(self, name: str) -> bool:
        """Whether this editor has a model for the stage `name` (loaded or not)."""
        return name in self.pool.builders

    @property
    def load_seconds(self) -> float:
        """Seconds spent loading models so far (each call subtracts its share from its steps)."""
        return self.pool.load_seconds

    def downloads_needed(self) -> list[str]:
        """The Hub ids this editor will download on first use: neither local folders nor cached."""
        from ..core.loading import is_cached, is_local_file

        return [
            m
            for m in dict.fromkeys(self.models.values())
            if not m.startswith(("tiny:", "openai:")) and not is_cached(m) and not is_local_file(m)
        ]

    @property
    def loaded(self) -> list[str]:
        """The stages whose models are loaded now."""
        return self.pool.loaded

    @property
    def parser(self) -> Any:
        return self._parser()

    def _parser(self, name: str | None = None) -> Any:
        return PARSERS.get(name or self.parser_name).create(self.stage)

    @property
    def grounder(self) -> Any:
        return self._grounder()

    def _grounder(self, detector: Any = None, name: str | None = None) -> Any:
        """The grounder; `detector` (the overlap thread's, answering from its prefetched work) stands in."""
        return GROUNDERS.get(name or self.grounder_name).create(
            _StageAccess(self, detector), threshold=self.box_threshold
        )

    def executor(self, edit: Edit) -> Any:
        """The executor the edit's action names (actions/specs.py), built on this editor's models; a
        remove painted by the preset's remover where it has one (lite: LaMa)."""
        name = spec(edit.action).executor(edit, self.recolor_mode)
        if name == "inpaint" and edit.action == Action.REMOVE and self.has("remover"):
            return self.stage("remover")
        return EXECUTORS.get(name).create(self.stage)

    # ------------------------------------------------------------------ one edit
    def __call__(
        self,
        image: str | Any,
        instruction: str = "",
        *,
        seed: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        strength: float = 0.65,
        plan: EditPlan | None = None,
        corrections: Correction | list[Any] | dict[Any, Any] | None = None,
        parser: str | None = None,
        grounder: str | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
        context: str | None = None,
        skip_unknown: bool = False,
        executor: Any = None,
    ) -> EditResult:
        """Edit `image` (a path, PIL image, RGB uint8 array or LoadedImage) as `instruction` says.

        `plan` skips parsing (e.g. a plan the user reviewed; the instruction may then be left out).
        Its boxes are XYXY pixels of the image; one entirely outside it is an `InvalidInputError`.
        `corrections`: a person's fixes of the masks (`Correction`: points, a box, another SAM
        candidate), one Correction for the first edit or {edit index: Correction}; pass the plan
        the preview showed with them, so that the fix applies to the same edits. A Correction's
        `mask` (bool HxW) is the region itself, as a person drew it: no grounding, no segmentation,
        never grown (a feather stays inside it), so every pixel outside it stays bit-identical.
        `parser` / `grounder`: another registered stage for this call only (its models must be
        among this editor's).
        `context`: what a session's last edit did, for an instruction that may lean on it (a
        VLM parser reads it before the instruction; the rules parser already had it, as the
        session resolved the words: conversation.py).
        `skip_unknown`: a part of the instruction Lasso cannot do (rotate, upscale, "4K"...) is left
        out with a warning and the rest is made; without it, UnsupportedEditError names the part and
        nothing is done (parse/unknown.py).
        `dry_run` stops before painting:
        the result has the plan, groundings and masks, and `image` None.
        `executor`: what repaints every edit of this call, in place of the executor each action
        names (its `execute(image, region, edit, settings)` returns the whole image, as an
        executor's does): `lasso contain`'s hands back another editor's picture, aligned. It is
        composited and restored as any edit is, so the guarantee is the same.
        """
        self.pool.say = progress  # a model loaded during this call says so (stage())
        try:
            run = _Run(self, progress)
            # 1. Check inputs (inputs.py: the same check the CLI makes before building anything)
            checked = check_inputs(
                image, instruction, plan=plan, seed=seed, steps=steps, guidance=guidance, strength=strength
            )
            fixes = check_corrections(corrections, checked.loaded.size)
            if parser is not None or grounder is not None:
                _check_stages(self.pool.builders, parser or self.parser_name, grounder or self.grounder_name)
            # 2. Parse (or take the plan given)
            prefetch = None
            if plan is None:
                plan, prefetch = self._parse(
                    run, checked.loaded.rgb, instruction, parser, grounder, context, skip_unknown
                )
            _check_plan(plan, fixes)
            run.warnings += [Notice.of(w) for w in [*checked.loaded.warnings, *plan.warnings]]
            # 3-6. One edit at a time, each on the image as the previous ones left it
            paint = _Paint(checked.seed, checked.steps, checked.guidance, checked.strength, plan, instruction, executor)
            canvas = _Canvas(checked.loaded.rgb)
            steps_out = [
                self._edit_one(
                    run, canvas, i, edit, fixes.get(i), prefetch if i == 0 else None, grounder, paint, dry_run
                )
                for i, edit in enumerate(plan.edits)
            ]
            # 7. Assemble the result in the input's mode
            return self._assemble(run, checked.loaded, canvas, plan, steps_out, checked.seed, dry_run)
        finally:
            self.pool.say = None

    def _parse(
        self,
        run: _Run,
        rgb: np.ndarray,
        instruction: str,
        parser: str | None,
        grounder: str | None,
        context: str | None,
        skip_unknown: bool,
    ) -> tuple[EditPlan, Prefetch | None]:
        """Step 2: the plan from the words. With `overlap`, a thread meanwhile encodes the image for
        SAM and runs the detector on the target the rules parser reads, so both are ready when the
        VLM answers."""
        run.say("understanding the instruction")
        prefetch = None
        if self.overlap and (parser or self.parser_name) != "rules" and grounder is None:
            prefetch = Prefetch(self, rgb, instruction)
        with run.timed("parse"):
            from ..parse.unknown import parse_with  # the rules' patterns compile on first use

            return parse_with(self._parser(parser), rgb, instruction, context, skip_unknown), prefetch

    def _edit_one(
        self,
        run: _Run,
        canvas: _Canvas,
        i: int,
        edit: Edit,
        fix: Correction | None,
        prefetch: Prefetch | None,
        grounder: str | None,
        paint: _Paint,
        dry_run: bool,
    ) -> EditStep:
        """Steps 3 to 6 for edit `i`: ground, segment and refine its mask on the canvas as the edits
        before it left it, then (unless a dry run) execute and composite it onto the canvas."""
        name = edit.target or edit.value or edit.action.value
        current = canvas.picture()
        # 3. Ground
        run.say(f"finding {name!r}")
        detector = None
        if prefetch is not None:
            with run.timed("ground"):
                detector = prefetch.detector_for(current)
            run.timings["overlap"] = prefetch.seconds
        with run.timed("ground"):
            grounding = self._ground(current, edit, fix, detector, grounder)
        run.warnings += [Notice.of(w, i) for w in grounding.warnings]
        # 4. Segment
        run.say(f"segmenting {name!r}")
        with run.timed("segment"):
            seg = self._segment(current, edit, grounding, fix)
        run.warnings += [Notice.of(w, i) for w in seg.warnings]
        # 5. Refine the mask for the action
        region, alpha = self._refine(run, current, edit, grounding, seg, fix)
        share = float(region.mean())
        if edit.region in ("tight", "grown") and share > LARGE_MASK:  # an object's mask over most of it
            said = f"the mask of {name!r} covers {share:.0%} of the picture"
            run.warnings.append(
                Notice(said, "large_mask", f"The mask of {name!r} covers {share:.0%} of the picture.", i)
            )
        window = mask_bbox(region)
        canvas.add(alpha, window)
        if not dry_run and window is not None:
            # 6. Execute, then composite: pixels where alpha == 0 stay bit-identical.
            edited = self._execute(run, current, region, edit, i, name, paint)
            with run.timed("composite"):
                canvas.rgb = composite(current, edited, alpha, window)
        return EditStep(edit=edit, grounding=grounding, segmentation=seg, region=region, alpha=alpha)

    def _refine(
        self,
        run: _Run,
        current: np.ndarray,
        edit: Edit,
        grounding: Grounding,
        seg: Segmentation,
        fix: Correction | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Step 5: (region, alpha) from the segmentation, for the action."""
        how = edit.mask_action
        if edit.region == "whole" and grounding.source == "user":  # a restyle of the region a person marked
            how = Action.RECOLOR  # refined as an object's own edge
        with run.timed("refine"):
            if fix is not None and fix.mask is not None:  # a person's mask: as drawn, never grown
                return within(fix.mask, self.refine_settings)
            return refine(seg.mask, how, self.refine_settings, current)

    def _execute(
        self, run: _Run, current: np.ndarray, region: np.ndarray, edit: Edit, i: int, name: str, paint: _Paint
    ) -> np.ndarray:
        """Step 6's first half: the edit's executor repaints the region (the full image back)."""
        executor = paint.executor or self.executor(edit)
        # a painter's own steps and guidance (a 4-step distilled model) before the preset's
        own_steps, own_guidance = getattr(executor, "own_settings", (None, None))
        total = paint.steps or own_steps or self.steps
        if spec(edit.action).uses_strength and int(total * (edit.strength or paint.strength)) < 1:
            # diffusers runs int(steps x strength) steps: raise the count so that one runs
            s = edit.strength or paint.strength
            total = math.ceil(1.0 / s)
            run.warnings.append(
                Notice(
                    f"strength {s:g} with {paint.steps or own_steps or self.steps} steps runs no step; ran {total} steps",
                    "steps_raised",
                    f"The strength was too low for any painting step, so Lasso ran {total} steps.",
                    i,
                )
            )

        def on_step(k: int, n: int) -> None:
            run.say(f"painting {name!r}: step {k}/{n}")

        plan, instruction = paint.plan, paint.instruction
        settings = ExecSettings(
            seed=(paint.seed + i) % 2**64,
            steps=total,
            guidance=next(g for g in (paint.guidance, own_guidance, self.guidance) if g is not None),
            strength=paint.strength,
            on_step=on_step,
            # what an instruction-reading painter is told: the user's words for a one-edit
            # plan, this edit's own sentence when the words ask for several things
            instruction=(plan.instruction or instruction or "")
            if len(plan.edits) == 1 and (plan.instruction or instruction)
            else edit.describe(),
        )
        run.say(f"painting {name!r}")
        with run.timed("edit"):
            edited: np.ndarray = executor.execute(current, region, edit, settings)
        return edited

    def _assemble(
        self,
        run: _Run,
        loaded: LoadedImage,
        canvas: _Canvas,
        plan: EditPlan,
        steps_out: list[EditStep],
        seed: int,
        dry_run: bool,
    ) -> EditResult:
        """Step 7: the result in the input's mode (alpha and 16 bits restored outside the mask)."""
        changed = canvas.alpha > 0
        out_image = None
        deep_out = None
        if not dry_run:
            with run.timed("restore"):
                out_image = restore(loaded, canvas.rgb, changed)
            if loaded.deep is not None:  # 16-bit colour: composed again at 16 bits
                with run.timed("restore"):
                    deep_out = deep.compose(loaded.deep, loaded.rgb, canvas.rgb, canvas.alpha)
        warnings = run.warnings
        if self.random_weights:
            warnings = [RANDOM_WEIGHTS, *(w for w in warnings if Notice.of(w).code not in MODEL_NOISE)]
        run.timings["load"] = self.load_seconds - run.load_before
        run.timings["total"] = time.perf_counter() - run.start
        return EditResult(
            image=out_image,
            rgb=None if dry_run else canvas.result(),
            mask=changed,
            alpha=canvas.alpha,
            plan=plan,
            steps=steps_out,
            seed=seed,
            timings=run.timings,
            models=dict(self.models),
            warnings=warnings,
            deep=deep_out,
            source=loaded,
            recolor=self.recolor_mode,  # a recolour repainted by a model is credited as generated
        )

    def batch(self, items: Iterable[Any], *, prefetch: int = 2, **kwargs: Any) -> Iterator[BatchOutcome]:
        """Edit many images with the models loaded once, decoding the next `prefetch` in threads
        meanwhile. `items`: `many.BatchItem`s or (image, instruction) pairs; `kwargs` as for a call
        (seed, steps, ...). Yields a `BatchOutcome(item, result, error, seconds)` per item, in order:
        an item that fails carries its error and the batch goes on.

            for out in editor.batch([("a.jpg", "make the sky blue"), ("b.jpg", "remove the car")]):
                if out.error is None:
                    out.result.save(f"{out.item.id}.png")
        """

        def as_items() -> Iterator[BatchItem]:
            for i, x in enumerate(items):
                yield x if isinstance(x, BatchItem) else BatchItem(x[0], x[1], str(i))

        return edit_many(self, as_items(), prefetch=prefetch, **kwargs)

    def _ground(
        self, image: np.ndarray, edit: Edit, fix: Correction | None, detector: Any, grounder: str | None
    ) -> Grounding:
        """Where the edit's target is. A correction's box is taken as it is; a correction with points
        on a whole-image edit, or on a target the grounder cannot find, lets the points alone say."""
        if fix is not None and fix.mask is not None:  # the person drew the region: nothing to find
            return Grounding([], [], "user")
        if fix is not None and fix.box is not None:
            return Grounding([fix.box], [1.0], "user")
        if fix is not None and fix.points and edit.region == "whole":
            return Grounding([], [], "user")
        try:
            g = self._grounder(detector, grounder).ground(image, edit)
            if edit.avoid is not None and len(apart(g.boxes, edit.avoid)) < len(g.boxes):
                # a grounder with no candidates to set aside (the VLM's own box) landed on it again
                raise TargetNotFoundError(edit.target or "the target", ANOTHER)
            return g
        except TargetNotFoundError as e:
            if fix is None or 1 not in fix.labels:
                raise
            g = Grounding([], [], "user")
            what = edit.target or "the target"
            plain = f"Lasso could not find {what!r}, so it used the points you placed."
            g.warnings.append(Notice(f"{e}; the points you placed were used instead", "points_used", plain))
            return g

    def _segment(
        self, image: np.ndarray, edit: Edit, grounding: Grounding, fix: Correction | None = None
    ) -> Segmentation:
        h, w = image.shape[:2]
        if fix is not None and fix.mask is not None:  # the region a person drew, as it is
            return Segmentation(mask=fix.mask, score=1.0)
        if edit.anchored:  # the new object goes in an ellipse inside the placement box
            if fix is not None and (fix.points or fix.candidate is not None):
                raise InvalidInputError(
                    "an added object is placed by a box, not by points or candidate masks: give the correction a box"
                )
            mask = np.zeros((h, w), dtype=bool)
            for b in grounding.boxes:
                mask |= ellipse_mask(b, (h, w))
            return Segmentation(mask=mask, score=1.0)
        if edit.region == "whole" and (fix is None or grounding.source != "user"):
            if fix is not None:
                raise InvalidInputError(
                    "a whole-image edit has no candidate masks; mark a region with points or a box instead"
                )
            return Segmentation(mask=np.ones((h, w), dtype=bool), score=1.0)
        segmenter = self.stage("segmenter")
        if fix is None:  # a segmenter of the two-argument interface serves every uncorrected edit
            return segmenter.segment(image, grounding)
        return segmenter.segment(image, grounding, fix)


class _StageAccess:
    """What a grounder's `create` is given: called with a model stage's name, that stage (loaded on
    first use); `loaded(name)` whether it is loaded already; `attention` the editor's settings."""

    def __init__(self, editor: Editor, detector: Any = None):
        self._editor, self._detector = editor, detector
        self.attention = editor.attention

    def __call__(self, name: str) -> Any:
        if name == "detector" and self._detector is not None:
            return self._detector  # the overlap thread's, answering from its prefetched work
        return self._editor.stage(name)

    def loaded(self, name: str) -> bool:
        return name in self._editor.loaded or (name == "detector" and self._detector is not None)


class _Run:
    """One call's running state: its progress callback, the seconds per step (less the time spent
    loading models in it) and the warnings gathered so far."""

    def __init__(self, editor: Editor, progress: Progress | None):
        self.editor = editor
        self.say: Progress = progress or (lambda msg: None)
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self.start = time.perf_counter()
        self.load_before = editor.load_seconds

    @contextmanager
    def timed(self, key: str) -> Iterator[None]:
        """Adds the block's seconds to timings[key], less the time spent loading models in it."""
        t0, load0 = time.perf_counter(), self.editor.load_seconds
        try:
            yield
        finally:
            spent = (time.perf_counter() - t0) - (self.editor.load_seconds - load0)
            self.timings[key] = self.timings.get(key, 0.0) + spent


class _Canvas:
    """The picture as the edits so far left it (RGB uint8) and the strongest compositing weight of
    any edit so far (float32 HxW), holding no copy it does not need (a 100 MP edit: 300 MB for the
    picture, 400 MB for the weight): the picture is the input's own array until the first
    composite makes a new one, and the stages see it read-only (`picture()`), so a stage that
    wrote into its input would fail loudly instead of changing the input; the weight is the first
    edit's own until a second edit adds to it."""

    def __init__(self, rgb: np.ndarray):
        self.input = rgb
        self.rgb = rgb
        self._alpha: np.ndarray | None = None
        self._shared = False  # _alpha is an edit's own array: copied before another edit adds to it

    def picture(self) -> np.ndarray:
        """The picture as the stages see it: a read-only view."""
        view = self.rgb.view()
        view.flags.writeable = False
        return view

    def add(self, alpha: np.ndarray, window: tuple[int, int, int, int] | None) -> None:
        """The weight becomes max(weight, `alpha`), inside `window` (where `alpha` may be non-zero)."""
        if window is None:
            return
        if self._alpha is None:
            self._alpha, self._shared = alpha, True
            return
        if self._shared:
            self._alpha, self._shared = self._alpha.copy(), False
        union_max(self._alpha, alpha, window)

    @property
    def alpha(self) -> np.ndarray:
        if self._alpha is None:  # no edit painted anywhere: nothing may change
            self._alpha = np.zeros(self.rgb.shape[:2], dtype=np.float32)
        return self._alpha

    def result(self) -> np.ndarray:
        """The edited picture, the caller's own (a copy where no edit composited one)."""
        return self.rgb.copy() if self.rgb is self.input else self.rgb


@dataclass(frozen=True)
class _Paint:
    """What every edit of one call paints with: the checked settings, the plan and the words."""

    seed: int
    steps: int | None
    guidance: float | None
    strength: float
    plan: EditPlan
    instruction: str
    executor: Any = None  # this call's own executor for every edit (None: each action's)


def _check_plan(plan: EditPlan, fixes: dict[int, Correction]) -> None:
    """The plan has no more edits than allowed, and each correction is for one of them."""
    check_edit_count(len(plan.edits))
    for i in fixes:
        if i >= len(plan.edits):
            raise InvalidInputError(
                f"a correction is for edit {i}, but the plan has {len(plan.edits)} "
                f"edit{'s' if len(plan.edits) != 1 else ''} (0 is the first)"
            )


def _need_openai_key(p: Preset, c: EditorConfig) -> None:
    """A stage on OpenAI's own API with no key to send (its option, or OPENAI_API_KEY) is bad input,
    said before anything loads, rather than a 401 after the photo was sent; a server of one's own
    (any other address) may take no key."""
    keys = {"vlm": (c.vlm_api_key, "--vlm-api-key"), "inpainter": (c.inpainter_api_key, "--inpainter-api-key")}
    for stage, (key, option) in keys.items():
        model = getattr(p, stage)
        on_openai = model.startswith("openai:") and model.endswith("@" + OPENAI_URL)
        if on_openai and not (key or os.environ.get("OPENAI_API_KEY")):
            raise InvalidInputError(
                f"the {stage} {model} is OpenAI's API, which needs a key: set OPENAI_API_KEY or {option} "
                "(or point it at a server of your own: --vlm / --inpainter openai:MODEL@BASE_URL)"
            )


def _available_models(c: EditorConfig, ids: dict[str, str], parser: str, grounder: str) -> dict[str, str]:
    """The preset's models the chosen stages need (each declares them: registry.py; any edit may
    paint), each checked to be there (ModelUnavailableError naming every missing one), and the
    optional ones that can be had."""
    needed = {"segmenter", *PARSERS.get(parser).needs, *GROUNDERS.get(grounder).needs}
    if c.paint:
        needed |= {*EXECUTORS.get("inpaint").needs}
    if "detector" in needed and "detector" not in ids:
        raise InvalidInputError(
            f"--grounder {grounder} needs a detector model; this preset has none "
            "(pass --detector ID, or --grounder vlm)"
        )
    if "inpainter" in needed:
        needed |= {"lora", "adapter", "remover"} & set(ids)
    extra = {k: v for k, v in ids.items() if k in c.optional and k not in needed and k not in ("lora", "adapter")}
    ids = {k: v for k, v in ids.items() if k in needed}
    ensure_available(_checkpoints(ids))
    for k, v in extra.items():  # offered when they can be had; never a reason not to start
        try:
            ensure_available({k: v}, probe=False)
            ids[k] = v
        except ModelUnavailableError:
            pass
    return ids


def _checkpoints(ids: dict[str, str]) -> dict[str, str]:
    """The model ids and folders `ids` load, to check before loading: the inpainter's value may name
    a painter (`flux2-klein`, `sdxl:/models/mine`: edit/painters), whose checkpoint is checked, or
    none for a painter that loads none."""
    from ..edit.painters import checkpoint_of

    out = dict(ids)
    for painter in ("inpainter", "remover"):
        if painter in out:
            checkpoint = checkpoint_of(out.pop(painter))
            if checkpoint is not None:
                out[painter] = checkpoint
    return out


def _check_stages(builders: dict, parser: str, grounder: str) -> None:
    """The parser and grounder exist (InvalidInputError naming the known ones otherwise) and the
    models they need are among `builders`."""
    for name in (*PARSERS.get(parser).needs, *GROUNDERS.get(grounder).needs):
        if name not in builders:
            raise InvalidInputError(
                f"the {parser} parser and the {grounder} grounder need a {name} model; this editor has none"
            )
