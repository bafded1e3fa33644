"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from ..errors import ApiError
from ..schemas import ErrorBody, Health, Ready
from .dependencies import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="the process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"model": ErrorBody}},
    summary="ready once the default model is loaded and has run once",
)
async def readyz(service: ServiceDep) -> Ready:
    ready, message = await run_in_threadpool(service.readiness.check)
    if not ready:
        raise ApiError(503, "not_ready", message, headers={"Retry-After": str(service.settings.retry_after_s)})
    return Ready(
        status="ready", model=service.readiness.model_id or "", device=str(service.registry.device), message=message
    )
