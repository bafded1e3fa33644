"""What the routes share: the service, the upload, the model, running the views, and error translation."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import torch
from fastapi import Depends, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from PIL import Image

from lewel.analysis import extract_views
from lewel.images import Background, ImageTooLargeError, UnsupportedImageError, decode_image
from lewel.inference import Extraction, MapsUnavailableError
from lewel.maps import PATTERNS
from lewel.profiles import (
    describe_data,
    has_patterns,
    pattern_indices,
    patterns_line,
    patterns_note,
    profile_categories,
    profile_indices,
)
from lewel.views import View

from ..decode_warnings import collect
from ..errors import ApiError
from ..limits import Plan, declared_image, plan_request
from ..middleware import token_matches, unauthorized
from ..registry import LoadedModel, ModelLoadFailed, ModelNotFound, ModelRefused
from ..schemas import ErrorBody, ImageInfo, ModelSummary, ProfileSummary, ViewParams
from ..service import Service

#: the JSON error bodies the upload endpoints document in OpenAPI (401 only with a token: ``api.openapi``)
ERROR_RESPONSES = {status: {"model": ErrorBody} for status in (400, 401, 403, 404, 413, 415, 422, 500, 503)}
T = TypeVar("T")


def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]


def require_token(service: ServiceDep, request: Request) -> None:
    """With ``LEWEL_API_TOKEN`` set, the request must carry ``Authorization: Bearer <token>``
    (``TokenMiddleware`` already refuses others before their body is read; ``api.openapi`` documents it
    only when a token is set)."""
    token = service.settings.api_token
    if token is None:
        return
    if not token_matches(request.headers.get("authorization"), token.get_secret_value()):
        raise unauthorized(request.url.path)


async def read_upload(upload: UploadFile, service: Service) -> bytes:
    """The uploaded file's bytes, at most the upload cap (413 beyond it)."""
    limit = service.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ApiError(
            413, "too_large", f"the uploaded file exceeds the limit of {limit:,} bytes (LEWEL_MAX_UPLOAD_MB)"
        )
    return data


def plan_upload(
    service: Service, params: ViewParams, data: bytes, mask_data: bytes | None = None, *, kind: str
) -> Plan:
    """The cost of an upload request (``api.limits.plan_request``) from the image's header, the model's
    description and profile: 422 ``too_costly`` over a limit, 404 for an unknown model."""
    registry, settings = service.registry, service.settings
    with model_errors(service):
        file = registry.resolve(params.model)
    entry = registry.describe(file)
    d, shown = entry.get("d"), None
    maps, top_k = getattr(params, "maps", "all"), getattr(params, "top_k", 1)
    if kind == "maps" and d:
        if getattr(params, "indices", None) is not None:
            shown = len(params.indices.split(","))
        elif maps == "top":
            shown = min(d, len(PATTERNS) * top_k)
        elif maps in ("object", "background"):
            profile, _ = registry.profile(file, d=d)
            shown = len(profile_indices(profile, maps)) if profile is not None else None
        elif getattr(params, "pattern", None) is not None:
            profile, _ = registry.profile(file, d=d)
            shown = len(pattern_indices(profile, params.pattern)) if has_patterns(profile) else None
    return plan_request(
        kind=kind,
        declared=declared_image(data),
        mask=declared_image(mask_data) if mask_data is not None else None,
        views=params.views,
        size=params.size,
        d=d,
        num_aligned=entry.get("num_aligned"),
        maps=shown,
        frame_cells=getattr(params, "frame_cells", 32),
        output=getattr(params, "format", "json"),
        dpi=getattr(params, "dpi", 100),
        max_request_pixels=settings.max_request_pixels,
        max_frame_values=settings.max_frame_values,
        max_response_bytes=settings.max_response_bytes,
    )


async def run_bounded(service: Service, plan: Plan, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in a worker thread once ``plan.memory`` bytes of the memory budget are free
    (503 ``busy`` when too many requests wait already)."""
    async with service.budget.reserve(plan.memory):
        return await run_in_threadpool(work, *args)


def decode(data: bytes, service: Service, background: Background) -> Image.Image:
    """Decode an upload with the service's caps: 413 too large, 415 not a usable image."""
    try:
        with collect("the upload 'image'"):
            return decode_image(data, max_pixels=service.settings.max_pixels, background=background)
    except ImageTooLargeError as error:
        raise ApiError(413, "too_large", f"image too large: {error} (LEWEL_MAX_PIXELS)") from None
    except UnsupportedImageError as error:
        raise ApiError(415, "unsupported_media_type", f"the upload 'image' is not a usable image: {error}") from None


#: ``ProfileSummary`` fields built from a version-3 profile's measured patterns, not copied from its summary
PATTERN_FIELDS = (
    "patterns", "patterns_note", "patterns_line", "control_patterns", "random_control_patterns", "dissection_line",
    "categories",
)


def profile_body(profile: dict | None) -> ProfileSummary | None:
    """The ``ProfileSummary`` of a profile file's contents (``None`` passes through)."""
    if profile is None:
        return None
    summary, data = profile["summary"], profile["data"]
    measured = has_patterns(profile)
    return ProfileSummary(
        **{k: v for k, v in summary.items() if k in ProfileSummary.model_fields and k not in PATTERN_FIELDS},
        data=describe_data(profile),
        size=data["size"],
        grid=data["grid"],
        patterns=summary["patterns"] if measured else None,
        patterns_note=patterns_note(profile),
        patterns_line=patterns_line(summary) if measured else None,
        control_patterns=summary["control_patterns"]["by_role"] if measured else None,
        random_control_patterns=summary["random_control"].get("patterns") if measured else None,
        dissection_line=summary["dissection"]["line"] if measured else None,
        categories=profile_categories(profile),
    )


def image_info(image: Image.Image) -> ImageInfo:
    return ImageInfo(
        width=image.width,
        height=image.height,
        format=image.info.get("source_format"),
        mode=str(image.info.get("source_mode", image.mode)),
    )


async def check_view_params(
    params: ViewParams, service: Service, request: Request, files: tuple[str, ...] = ("image",)
) -> None:
    """Unknown form fields, and the limits that depend on the settings (422 naming the field or setting).
    ``files``: the names of the route's file fields."""
    known = set(type(params).model_fields) | set(files)
    form = await request.form()
    unknown = sorted(set(form.keys()) - known)
    if unknown:
        raise ApiError(
            422,
            "invalid_parameters",
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}",
        )
    names = [k for k, _ in form.multi_items()]
    repeated = sorted({k for k in names if names.count(k) > 1})
    if repeated:
        raise ApiError(
            422, "invalid_parameters", f"parameter(s) {', '.join(map(repr, repeated))} given more than once"
        )
    empty = sorted({k for k, v in form.multi_items() if isinstance(v, str) and not v and k not in ("model", *files)})
    if empty:  # a form parser would read an empty field as absent: refuse it rather than guess
        raise ApiError(
            422,
            "invalid_parameters",
            f"empty value for {', '.join(map(repr, empty))}: give a value, or leave the field out for its default",
        )
    settings = service.settings
    if params.views > settings.max_views:
        raise ApiError(
            422,
            "invalid_parameters",
            f"views={params.views} is over the limit of {settings.max_views} (LEWEL_MAX_VIEWS)",
        )
    if params.size > settings.max_input_size:
        raise ApiError(
            422,
            "invalid_parameters",
            f"size={params.size} is over the limit of {settings.max_input_size} (LEWEL_MAX_INPUT_SIZE)",
        )


@contextmanager
def model_errors(service: Service) -> Iterator[None]:
    """Translate model-side failures: unknown model 404, unloadable file 500, no maps 422, out of GPU
    memory 503 with Retry-After."""
    try:
        yield
    except ModelNotFound as error:
        raise ApiError(404, "model_not_found", str(error), model=error.model_id) from None
    except ModelRefused as error:
        raise ApiError(403, "model_refused", str(error), model=error.model_id, file=error.file) from None
    except ModelLoadFailed as error:
        raise ApiError(500, "model_load_failed", str(error), model=error.model_id, file=error.file) from None
    except MapsUnavailableError as error:
        raise ApiError(422, "model_without_maps", f"this model has no alignment maps: {error}") from None
    except torch.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise ApiError(
            503,
            "out_of_memory",
            "the GPU ran out of memory; retry later, or ask for fewer views or a smaller size",
            headers={"Retry-After": str(service.settings.retry_after_s)},
        ) from None


def run_views(
    service: Service,
    loaded: LoadedModel,
    picture: Image.Image,
    params: ViewParams,
    *,
    aligned_projection: bool = True,
) -> tuple[list[View], Extraction]:
    """View 0 and ``params.views`` augmented views of ``picture`` through the model, as one batch
    (``lewel.analysis.extract_views`` with the request's preset, size and seed), model failures translated."""
    with model_errors(service):
        return extract_views(
            loaded.model,
            picture,
            views=params.views,
            preset=params.preset,
            size=params.size,
            seed=params.seed,
            aligned_projection=aligned_projection,
            extract=loaded.extract,
        )


def get_model(service: Service, model_id: str | None) -> LoadedModel:
    with model_errors(service):
        return service.registry.get(model_id)


def get_maps_model(service: Service, model_id: str | None) -> LoadedModel:
    """``get_model``, and 422 ``model_without_maps`` for a model without LEWEL's coupled head (the map routes)."""
    loaded = get_model(service, model_id)
    if not loaded.model.has_maps:
        raise ApiError(
            422,
            "model_without_maps",
            f"model {loaded.id!r} ({loaded.model.method}) has no alignment maps: choose a LEWEL model from /v1/models",
        )
    return loaded


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` for a missing, NaN or infinite one (JSON has no NaN)."""
    return float(value) if value is not None and math.isfinite(value) else None


def model_summary(loaded: LoadedModel) -> ModelSummary:
    info = loaded.info()
    return ModelSummary(
        id=loaded.id,
        method=info["method"],
        backbone=info["backbone"],
        d=info["d"],
        h=info["h"],
        device=str(loaded.device),
        source=loaded.file.folder,
    )
