"""Liveness and readiness, and ``/v1/health``: which replica answers (``api.serving``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from lewel import __version__

from ..errors import ApiError
from ..schemas import ErrorBody, Health, Ready, ReplicaHealth
from .dependencies import ServiceDep, require_token

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


@router.get(
    "/v1/health",
    response_model=ReplicaHealth,
    dependencies=[Depends(require_token)],
    summary="the process is alive, and which replica answered",
)
async def replica_health(service: ServiceDep) -> ReplicaHealth:
    """The replica's id (plain uvicorn: ``HOST:PID``; Ray Serve: the Serve replica's id) and engine; behind the
    token like every ``/v1`` route, as it names the host."""
    return ReplicaHealth(
        status="ok", replica=service.serving.replica, engine=service.serving.engine, version=__version__
    )
