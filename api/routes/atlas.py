"""``/v1/atlas/{model}``: the map atlas of a model (``lewel atlas``), served from ``LEWEL_ATLAS_DIR/<model>/``
(or the folder on-demand builds write to, ``api.atlas_builds``), and ``…/build``: build one in the background."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse

from ..atlas_builds import BuildRunning
from ..atlas_files import (
    MODEL_ID,
    NAME_MAX,
    AtlasError,
    AtlasNotFound,
    atlas_map,
    load_atlas,
    served_atlas,
    thumbnail_file,
)
from ..errors import ApiError, echo_prefix, shown_name
from ..schemas import AtlasBuildParams, AtlasBuildStatus, ErrorBody
from ..service import Service
from .builds import RESPONSES, build_answer, check_caps, refuse_other_media
from .dependencies import ERROR_RESPONSES, ServiceDep, maps_file, model_errors, require_token

DEFAULT_SCENES = 200  #: scenes of a build that does not say (fewer when LEWEL_ATLAS_MAX_SCENES is lower)
BUILD_RESPONSES = {
    403: ERROR_RESPONSES[403],
    409: {"model": ErrorBody, "description": "another model's atlas is being built"},
    415: {"model": ErrorBody, "description": "a body that is not a form"},
}

router = APIRouter(prefix="/v1/atlas", tags=["atlas"], dependencies=[Depends(require_token)], responses=RESPONSES)


def _build_hint(model: str) -> str:
    return f"; build one with POST /v1/atlas/{echo_prefix(model)}/build"


async def _call(function: Callable[..., Any], *args: Any, hint: str = "") -> Any:
    """``function(*args)`` in a worker thread, its lookup failures as 404 (``hint`` appended) and unreadable
    atlases as 500."""
    try:
        return await run_in_threadpool(function, *args)
    except AtlasNotFound as error:
        raise ApiError(404, "not_found", str(error) + hint) from None
    except AtlasError as error:
        raise ApiError(500, "atlas_error", str(error)) from None


async def _served(service: Service, model: str) -> dict[str, Any]:
    """The atlas of ``model`` as clients see it (404 when there is none)."""
    atlas = await _call(load_atlas, service.atlas_builds.root, model, hint=_build_hint(model))
    return served_atlas(atlas, model, expose_paths=service.settings.expose_paths)


@router.get("/{model}", summary="the map atlas of a model: per map index its top images, statistics and AUROC")
async def get_atlas(model: str, service: ServiceDep) -> JSONResponse:
    """``atlas.json`` as ``lewel atlas`` wrote it (docs/atlas.md), less the server's paths (``served_atlas``);
    thumbnails are relative paths under this URL."""
    return JSONResponse(await _served(service, model))


@router.get("/{model}/maps/{index}", summary="one map index of a model's atlas")
async def get_atlas_map(model: str, index: int, service: ServiceDep) -> JSONResponse:
    """The atlas's header (model, data, settings) with the record of map ``index`` as ``map``."""
    return JSONResponse(await _call(atlas_map, await _served(service, model), index))


@router.get("/{model}/thumbs/{name}", summary="a thumbnail of a model's atlas (PNG)", response_class=FileResponse)
async def get_atlas_thumbnail(model: str, name: str, service: ServiceDep) -> FileResponse:
    path: Path = await _call(thumbnail_file, service.atlas_builds.root, model, name)
    return FileResponse(path, media_type="image/png")


def _checkpoint(service: Service, model: str) -> Path:
    """The file of ``model`` if an atlas can be built from it (``maps_file``), and 422 for an id that cannot
    name a folder."""
    file = maps_file(service, model)
    if not MODEL_ID.fullmatch(model):
        raise ApiError(
            422, "invalid_parameters",
            f"{shown_name(model)} cannot name an atlas folder (ids of 1 to {NAME_MAX} characters of A-Z a-z 0-9 _ . -)",
        )
    return file.path


def _start(service: Service, model: str, params: AtlasBuildParams) -> dict[str, Any]:
    settings = service.settings
    checkpoint = _checkpoint(service, model)
    scenes = params.scenes if params.scenes is not None else min(DEFAULT_SCENES, settings.atlas_max_scenes)
    check_caps(
        ("scenes", scenes, settings.atlas_max_scenes, "LEWEL_ATLAS_MAX_SCENES"),
        ("size", params.size, settings.max_input_size, "LEWEL_MAX_INPUT_SIZE"),
    )
    try:
        return service.atlas_builds.start(model, checkpoint, scenes=scenes, size=params.size)
    except BuildRunning as error:
        raise ApiError(409, "build_running", str(error), model=error.model) from None


def _status(service: Service, model: str) -> dict[str, Any]:
    with model_errors(service):
        service.registry.resolve(model)
    return service.atlas_builds.status(model)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _form_fields(request: Request) -> None:
    """A body that is not a form is refused (415); so are empty or repeated form fields (422), as on the
    upload endpoints."""
    await refuse_other_media(request, FORM_TYPES, f"scenes and size as form fields ({' or '.join(FORM_TYPES)})")
    items = (await request.form()).multi_items()
    names = [name for name, _ in items]
    wrong = sorted({n for n in names if names.count(n) > 1} | {n for n, v in items if isinstance(v, str) and not v})
    if wrong:
        raise ApiError(422, "invalid_parameters", f"empty or repeated field(s) {', '.join(map(shown_name, wrong))}")


@router.post(
    "/{model}/build", summary="build a model's atlas over generated scenes, in the background",
    response_model=AtlasBuildStatus, responses=BUILD_RESPONSES, openapi_extra={"requestBody": {"required": False}},
)
async def post_atlas_build(
    model: str, service: ServiceDep, request: Request, params: Annotated[AtlasBuildParams, Form()]
) -> JSONResponse:
    """Start the one build the service runs at a time (``lewel.drawing.atlas_folder.make_atlas``: view 0 of ``scenes``
    generated scenes at ``size`` px) and answer its status; while it runs, asking again for the same model
    answers the status, for another model 409 ``build_running``. The finished atlas replaces the model's
    atlas whole (docs/atlas.md)."""
    await _form_fields(request)
    return await build_answer(service, _start, model, params)


@router.get("/{model}/build", summary="the progress of a model's atlas build", response_model=AtlasBuildStatus)
async def get_atlas_build(model: str, service: ServiceDep) -> JSONResponse:
    """``idle`` (none in this process), ``running`` (stage, counts, fraction), ``done`` or ``error`` (the
    message says why), and whether an atlas is served now."""
    return await build_answer(service, _status, model)
