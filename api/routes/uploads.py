"""An upload request's path: reading the file, checking the form, pricing the request, decoding the image,
and running its views through the model within the memory budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from PIL import Image

from lewel.files.images import Background, ImageTooLargeError, UnsupportedImageError, decode_image
from lewel.inference import Extraction
from lewel.maps import PATTERNS
from lewel.maps.analysis import extract_views
from lewel.maps.profiles import category_indices, has_patterns, pattern_indices, profile_categories, profile_indices
from lewel.views import View

from ..decode_warnings import collect
from ..errors import ApiError, shown_name
from ..limits import Plan, declared_image, plan_request
from ..registry import LoadedModel
from ..schemas import ViewParams
from ..service import Service
from .dependencies import model_errors

T = TypeVar("T")
ECHOED_NAMES = 5  #: unknown field names an answer repeats


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
    maps = getattr(params, "maps", "all")
    if kind == "maps" and d:
        if getattr(params, "indices", None) is not None:
            shown = len(params.indices.split(","))
        else:
            profile = registry.profile(file, d=d)[0] if maps != "all" or _measured(params) else None
            shown = shown_maps(params, d, profile)
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


def _measured(params: ViewParams) -> bool:
    return getattr(params, "pattern", None) is not None or getattr(params, "category", None) is not None


def shown_maps(params: ViewParams, d: int, profile: dict | None) -> int | None:
    """How many maps a ``/v1/maps`` answer returns (``None``: all d, or not known before the profile is read):
    ``maps=top`` at most 3 × top_k, ``maps=object|background`` the profile's role, ``pattern=`` and ``category=``
    the profile's maps of both (within what ``maps=`` returns), so that a narrow selection is priced as such."""
    maps, top_k = getattr(params, "maps", "all"), getattr(params, "top_k", 1)
    counts = [min(d, len(PATTERNS) * top_k)] if maps == "top" else []
    if maps in ("object", "background") and profile is not None:
        counts.append(len(profile_indices(profile, maps)))
    if _measured(params) and has_patterns(profile):
        chosen = set(range(d))
        if params.pattern is not None:
            chosen &= set(pattern_indices(profile, params.pattern))
        if params.category is not None and params.category in profile_categories(profile):
            chosen &= set(category_indices(profile, params.category))
        counts.append(len(chosen))
    return min(counts) if counts else None


async def run_bounded(service: Service, plan: Plan, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in a worker thread once ``plan.memory`` bytes of the memory budget are free, less a
    figure's drawing, which reserves its share when it is drawn (503 ``busy`` when too many requests wait already)."""
    async with service.budget.reserve(plan.memory - plan.drawing):
        service.trimmer.note(plan.memory)  # a large request: memory is given back once it is answered
        return await run_in_threadpool(work, *args)


def decode(data: bytes, service: Service, background: Background) -> Image.Image:
    """Decode an upload with the service's caps: 413 too large, 415 not a usable image."""
    try:
        with collect("the upload 'image'"):
            return decode_image(data, max_pixels=service.settings.max_pixels, background=background)
    except ImageTooLargeError as error:
        raise ApiError(413, "too_large", f"image too large: {error} (LEWEL_MAX_PIXELS)") from None
    except UnsupportedImageError as error:
        raise ApiError(415, "unsupported_media_type", f"The file is not a usable image: {error}.") from None


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
            f"unknown parameter(s) {', '.join(map(shown_name, unknown[:ECHOED_NAMES]))}"
            f"{f' and {len(unknown) - ECHOED_NAMES} more' if len(unknown) > ECHOED_NAMES else ''}; "
            f"known: {', '.join(sorted(known))}",
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


def run_views(
    service: Service,
    loaded: LoadedModel,
    picture: Image.Image,
    params: ViewParams,
    *,
    aligned_projection: bool = True,
) -> tuple[list[View], Extraction]:
    """View 0 and ``params.views`` augmented views of ``picture`` through the model, as one batch
    (``lewel.maps.analysis.extract_views`` with the request's preset, size and seed), model failures translated."""
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
