"""Tiny random models built from configs (tiny.py), for the tests and the `tiny` preset: real
library classes, saved and loaded back as real checkpoints are. Nothing here is imported until a
`tiny:<stage>` id is resolved, so a user's edit never builds or loads them."""

from __future__ import annotations

from ..errors import InvalidInputError


def resolve_tiny(models: dict[str, str]) -> dict[str, str]:
    """Replace `tiny:<stage>` ids by the local folders of the tiny models, building them once."""
    if not any(v.startswith("tiny:") for v in models.values()):
        return models
    from .tiny import STAGES, ensure_tiny_models

    for v in models.values():
        if v.startswith("tiny:") and v.split(":", 1)[1] not in STAGES:
            raise InvalidInputError(f"unknown tiny model {v!r}; one of: {', '.join('tiny:' + s for s in STAGES)}")
    paths = ensure_tiny_models()
    return {k: paths[v.split(":", 1)[1]] if v.startswith("tiny:") else v for k, v in models.items()}
