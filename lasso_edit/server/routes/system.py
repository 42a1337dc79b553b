"""GET /healthz (the queue's state) and GET /v1/models (what the editor loads, and what is loaded)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ..service import Service, service

router = APIRouter()


@router.get("/healthz", response_model=None)
def healthz(srv: Service = Depends(service)) -> dict[str, Any]:
    jobs = srv.jobs
    return {"ok": True, "queue": {"size": jobs.size, "waiting": jobs.waiting, "running": jobs.running}}


@router.get("/v1/models", response_model=None)
def models(srv: Service = Depends(service)) -> dict[str, Any]:
    """The preset, each stage's model, what is loaded, and each model's licence and whether the Hub
    gates it (licences.py: null where Lasso does not list the model)."""
    from ...core.licences import licence
    from ...core.presets import PRESETS

    def terms(model: str) -> dict[str, Any] | None:
        known = licence(model)
        return {"licence": known.name, "gated": known.gated} if known else None

    def offered(name: str) -> dict[str, Any]:
        """A preset a request may choose (the page's model picker), with its models' licences."""
        editor = srv.editors.get(name)
        models = editor.models if editor is not None else PRESETS[name].models()
        return {
            "preset": name,
            "description": PRESETS[name].description if name in PRESETS else "",
            "models": {stage: {"model": m, "terms": terms(m)} for stage, m in models.items()},
        }

    return {
        # OpenAI's list shape first (its clients' models.list()): the presets a request may choose
        "object": "list",
        "data": [{"id": n, "object": "model", "created": 0, "owned_by": "lasso"} for n in srv.settings.offered()],
        "preset": srv.settings.preset,
        "models": srv.editor.models,
        "loaded": srv.editor.loaded,
        "licences": {stage: terms(model) for stage, model in srv.editor.models.items()},
        "offered": [offered(name) for name in srv.settings.offered()],
        "max_upload_mb": srv.settings.max_upload_mb,
    }
