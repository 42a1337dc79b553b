"""GET /v1/jobs/{id}: a background job's state, message and denoising step, then its answer or error."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ..service import Service, service

router = APIRouter()


@router.get("/v1/jobs/{jid}", response_model=None)
def get_job(jid: str, srv: Service = Depends(service)) -> dict[str, Any]:
    return srv.job(jid)
