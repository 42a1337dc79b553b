"""Tiny random models built from configs (tiny.py, flow.py), for the tests and the `tiny:` ids:
real library classes, saved and loaded back as real checkpoints are. Nothing here is imported
until a `tiny:<name>` id is resolved, so a user's edit never builds or loads them."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import InvalidInputError

# tiny:<name> -> (the model stage it serves, its builder; None: one of the `tiny` preset's four,
# built together by tiny.ensure_tiny_models)
TINY_IDS: dict[str, tuple[str, str | None]] = {
    "vlm": ("vlm", None),
    "segmenter": ("segmenter", None),
    "inpainter": ("inpainter", None),
    "detector": ("detector", None),
    "qwen2.5-vl": ("vlm", "lasso_edit.testing.qwen:build_tiny_qwen2_5_vl"),
    "qwen3-vl": ("vlm", "lasso_edit.testing.qwen:build_tiny_qwen3_vl"),
    "sam3": ("segmenter", "lasso_edit.testing.sam3:build_tiny_sam3"),
    "owlvit": ("detector", "lasso_edit.testing.tiny:build_tiny_owlvit"),
    "edgetam": ("segmenter", "lasso_edit.testing.tiny:build_tiny_edgetam"),
    "sd-turbo": ("inpainter", "lasso_edit.testing.tiny:build_tiny_sd_turbo"),
    "sd3": ("inpainter", "lasso_edit.testing.flow:build_tiny_sd3_inpaint"),
    "flux-fill": ("inpainter", "lasso_edit.testing.flow:build_tiny_flux_fill"),
    "flux-kontext": ("inpainter", "lasso_edit.testing.flow:build_tiny_flux_kontext"),
    "flux2-klein": ("inpainter", "lasso_edit.testing.flow:build_tiny_flux2_klein"),
    "qwen-image-edit": ("inpainter", "lasso_edit.testing.flow:build_tiny_qwen_image_edit"),
}


def resolve_tiny(models: dict[str, str]) -> dict[str, str]:
    """Replace `tiny:<name>` ids by the local folders of the tiny models, building them once.
    An unknown name, or one given for another stage, is bad input that names the known ones."""
    if not any(v.startswith("tiny:") for v in models.values()):
        return models
    out = dict(models)
    for stage, v in models.items():
        if not v.startswith("tiny:"):
            continue
        name = v.split(":", 1)[1]
        if name not in TINY_IDS:
            raise InvalidInputError(f"unknown tiny model {v!r}; one of: {', '.join('tiny:' + n for n in TINY_IDS)}")
        serves, builder = TINY_IDS[name]
        if serves != stage:
            fits = ", ".join("tiny:" + n for n, (s, _) in TINY_IDS.items() if s == stage) or "none"
            raise InvalidInputError(f"{v} is a tiny {serves}, not a {stage}; for the {stage}: {fits}")
        out[stage] = _folder(name, builder)
    return out


def _folder(name: str, builder: str | None) -> str:
    from .tiny import _build_once, default_tiny_dir, ensure_tiny_models

    if builder is None:
        return ensure_tiny_models()[name]
    import importlib

    module, _, attr = builder.partition(":")
    build = getattr(importlib.import_module(module), attr)
    base = default_tiny_dir()
    root = base.with_name(f"{base.name}-{name}")  # beside the preset's four: never replaced with them
    return _build_once(root, ("model",), lambda tmp: build(Path(tmp) / "model"))["model"]
