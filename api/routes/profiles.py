"""``/v1/models/{model}/profile``: measure a model's map profile in the background (``POST``, ``api.profile_builds``)
and follow the build (``GET``), with the profile the service reads for the model now."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse

from lewel.maps.profiles import DEFAULT_IMAGES

from ..errors import ApiError
from ..profile_builds import ProfileBuildRunning
from ..schemas import ErrorBody
from ..schemas_profile import ProfileBuildParams, ProfileBuildRunningBody, ProfileBuildStatus
from ..service import Service
from .builds import RESPONSES, build_answer, check_caps, refuse_other_media
from .dependencies import ERROR_RESPONSES, ServiceDep, maps_file, model_errors, require_token
from .responses import profile_body
BUILD_RESPONSES = {
    400: {"model": ErrorBody, "description": "a body that is not valid JSON"},
    403: ERROR_RESPONSES[403],
    409: {"model": ProfileBuildRunningBody, "description": "a profile build runs already (its status as build)"},
    415: {"model": ErrorBody, "description": "a body that is not JSON"},
}

router = APIRouter(prefix="/v1/models", tags=["profiles"], dependencies=[Depends(require_token)], responses=RESPONSES)


def _status(service: Service, model: str) -> dict[str, Any]:
    """The build's status of ``model`` with the profile the registry reads for it now."""
    with model_errors(service):
        file = service.registry.resolve(model)
    body = service.profile_builds.status(model)
    entry = service.registry.describe_with_profile(file)
    summary = profile_body(entry["profile"])
    # pydantic's JSON writes NaN as null (its dict would keep NaN, which JSONResponse refuses)
    body["profile"] = json.loads(summary.model_dump_json()) if summary is not None else None
    body["profile_error"] = entry["profile_error"]
    if body["status"] == "idle":
        body["message"] = (
            "the model has a profile" if summary is not None else "no profile yet: POST to this URL to measure one"
        )
    return body


def _start(service: Service, model: str, params: ProfileBuildParams) -> dict[str, Any]:
    settings = service.settings
    file = maps_file(service, model)
    images = params.images if params.images is not None else min(DEFAULT_IMAGES, settings.profile_max_images)
    check_caps(
        ("images", images, settings.profile_max_images, "LEWEL_PROFILE_MAX_IMAGES"),
        ("size", params.size, settings.max_input_size, "LEWEL_MAX_INPUT_SIZE"),
    )
    try:
        service.profile_builds.start(model, file.path, file.folder, data=params.data, images=images, size=params.size)
    except ProfileBuildRunning as error:
        running = _status(service, error.status["model"])
        raise ApiError(409, "build_running", str(error), build=service.redactor.value(running)) from None
    return _status(service, model)


async def json_body(request: Request) -> None:
    """A body that is not JSON is refused (415) before it is read as one."""
    await refuse_other_media(request, ("application/json",), "the build's settings as a JSON object (application/json)")


@router.post(
    "/{model}/profile", summary="measure a model's map profile in the background", status_code=202,
    response_model=ProfileBuildStatus, responses=BUILD_RESPONSES, dependencies=[Depends(json_body)],
)
async def post_profile_build(
    model: str, service: ServiceDep, params: Annotated[ProfileBuildParams | None, Body()] = None
) -> JSONResponse:
    """Start the one profile build the service runs at a time (``lewel.maps.profiles.build_profile``: the model
    and its family of random controls on ``images`` per split of ``data`` at ``size`` px) and answer its status
    (202). While a build runs, any POST answers 409 ``build_running`` with that build's status as ``build``. The
    profile replaces the model's profile file whole when the build is done (docs/api.md)."""
    params = params if params is not None else ProfileBuildParams()
    return await build_answer(service, _start, model, params, status_code=202)


@router.get("/{model}/profile", summary="the progress of a model's profile build, and its profile", response_model=ProfileBuildStatus)
async def get_profile_build(model: str, service: ServiceDep) -> JSONResponse:
    """``idle`` (no build in this process), ``running`` (stage, counts, fraction), ``done`` or ``failed`` (``error``
    says why), and the model's profile as ``/v1/models`` lists it now."""
    return await build_answer(service, _status, model)
