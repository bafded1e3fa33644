"""``GET /v1/atlas/{model}``: the map atlas of a model (``lewel atlas``), served from ``LEWEL_ATLAS_DIR/<model>/``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from lewel.atlas import AtlasError, AtlasNotFound, atlas_map, load_atlas, thumbnail_file

from ..errors import ApiError
from .common import ERROR_RESPONSES, ServiceDep, require_token

#: the errors these routes answer (no uploads here: no 413 or 415)
RESPONSES = {status: ERROR_RESPONSES[status] for status in (401, 404, 422, 500)}

router = APIRouter(prefix="/v1/atlas", tags=["atlas"], dependencies=[Depends(require_token)], responses=RESPONSES)


async def _call(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a worker thread, its lookup failures as 404 and unreadable atlases as 500."""
    try:
        return await run_in_threadpool(function, *args)
    except AtlasNotFound as error:
        raise ApiError(404, "not_found", str(error)) from None
    except AtlasError as error:
        raise ApiError(500, "atlas_error", str(error)) from None


@router.get("/{model}", summary="the map atlas of a model: per map index its top images, statistics and AUROC")
async def get_atlas(model: str, service: ServiceDep) -> JSONResponse:
    """``atlas.json`` as ``lewel atlas`` wrote it (docs/atlas.md); thumbnails are relative paths under this URL."""
    return JSONResponse(await _call(load_atlas, service.settings.atlas_dir, model))


@router.get("/{model}/maps/{index}", summary="one map index of a model's atlas")
async def get_atlas_map(model: str, index: int, service: ServiceDep) -> JSONResponse:
    """The atlas's header (model, data, settings) with the record of map ``index`` as ``map``."""
    atlas = await _call(load_atlas, service.settings.atlas_dir, model)
    return JSONResponse(await _call(atlas_map, atlas, index))


@router.get("/{model}/thumbs/{name}", summary="a thumbnail of a model's atlas (PNG)", response_class=FileResponse)
async def get_atlas_thumbnail(model: str, name: str, service: ServiceDep) -> FileResponse:
    path: Path = await _call(thumbnail_file, service.settings.atlas_dir, model, name)
    return FileResponse(path, media_type="image/png")
