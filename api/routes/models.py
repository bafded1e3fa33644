"""The models that can be served."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from ..limits import FIGURE_MAX_MAPS, FIGURE_SOURCE_SIDE
from ..schemas import Limits, ModelInfo, ModelList
from .dependencies import ServiceDep
from .responses import profile_body

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models", response_model=ModelList, summary="bundled models and the checkpoints in LEWEL_MODELS_DIR")
async def list_models(service: ServiceDep) -> ModelList:
    """Every checkpoint found, with method, backbone, d and h read from the file (without loading it onto
    the device); a file that cannot be opened is listed with ``status: error`` and the reason. ``profile``
    is what ``lewel profile`` measured for the file (its sidecar ``NAME.profile.json``), or null."""
    registry = service.registry
    entries = service.redactor.value(await run_in_threadpool(registry.list))
    default = await run_in_threadpool(registry.default_id)
    models = [
        ModelInfo(**{**entry, "profile": profile_body(entry["profile"])}, default=entry["id"] == default)
        for entry in entries
    ]
    settings = service.settings
    limits = Limits(
        max_upload_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        max_views=settings.max_views,
        max_input_size=settings.max_input_size,
        max_request_pixels=settings.max_request_pixels,
        max_frame_values=settings.max_frame_values,
        max_response_bytes=settings.max_response_bytes,
        figure_max_maps=FIGURE_MAX_MAPS,
        figure_source_side=FIGURE_SOURCE_SIDE,
    )
    return ModelList(
        default=default, device=str(registry.device), limits=limits, searched=registry.searched(), models=models
    )
