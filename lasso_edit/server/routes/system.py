"""GET /healthz (the queue's state) and GET /v1/models (what the editor loads, and what is loaded)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ..service import Service, service

router = APIRouter()


@router.get("/healthz")
def healthz(srv: Service = Depends(service)):
    jobs = srv.jobs
    return {"ok": True, "queue": {"size": jobs.size, "waiting": jobs.waiting, "running": jobs.running}}


@router.get("/v1/models")
def models(srv: Service = Depends(service)):
    return {
        "preset": srv.settings.preset,
        "models": srv.editor.models,
        "loaded": srv.editor.loaded,
        "max_upload_mb": srv.settings.max_upload_mb,
    }
