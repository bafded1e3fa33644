"""``POST /v1/point``: the maps that look at a point of an uploaded image (``lewel.maps.looking``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool

from lewel.maps.analysis import analyze_maps
from lewel.maps.looking import maps_looking_at

from ..errors import ApiError
from ..schemas_point import LookingMapBody, PointParams, PointResponse
from ..service import Service
from .dependencies import ERROR_RESPONSES, ServiceDep, get_maps_model, require_token
from .responses import finite_or_none, image_info, model_summary, profile_body
from .uploads import check_view_params, decode, plan_upload, read_upload, run_bounded, run_views

router = APIRouter(prefix="/v1", tags=["maps"], dependencies=[Depends(require_token)])

RANKING = (
    "each map's value at the cell under the point, divided by its uniform value 1/(h·w), averaged over the views "
    "whose crop contains the point; highest first (ties by index)"
)


@router.post(
    "/point",
    response_model=PointResponse,
    summary="the maps that look at a point of an uploaded image",
    responses=ERROR_RESPONSES,
)
async def point(
    service: ServiceDep,
    request: Request,
    image: Annotated[UploadFile, File(description="the image (PNG, JPEG, WebP, GIF, BMP, TIFF, PPM, TGA)")],
    params: Annotated[PointParams, Form()],
) -> PointResponse:
    """The same views as ``/v1/maps`` with the same ``views``, ``preset``, ``seed`` and ``size``; the point
    ``x``, ``y`` in original-image pixels. Returns the ``top`` maps ranked by their value at the point
    relative to uniform over the views that contain it, each with its share of views above uniform, its
    cross-view agreement, and its measured role and held-out AUROC when the model has a profile. 422
    ``invalid_parameters`` when the point lies outside the image."""
    await check_view_params(params, service, request)
    data = await read_upload(image, service)
    plan = await run_in_threadpool(plan_upload, service, params, data, kind="maps")
    return await run_bounded(service, plan, _compute, service, data, params)


def _compute(service: Service, data: bytes, params: PointParams) -> PointResponse:
    picture = decode(data, service, params.background)
    if params.x >= picture.width or params.y >= picture.height:
        raise ApiError(
            422,
            "invalid_parameters",
            f"the point ({params.x:g}, {params.y:g}) lies outside the image ({picture.width}×{picture.height} "
            "pixels; x and y count from 0 at the top left)",
        )
    loaded = get_maps_model(service, params.model)
    profile, _ = service.registry.profile(loaded.file, d=loaded.model.d or 0)
    views, extraction = run_views(service, loaded, picture, params, aligned_projection=False)
    analysis = analyze_maps(views, extraction)
    ranked, cells = maps_looking_at(
        analysis.maps, (params.x, params.y), [v.box for v in views], [v.flip for v in views], top=params.top
    )
    records = profile["maps"] if profile is not None else None
    groups, aligned, agreement = analysis.groups.tolist(), analysis.aligned.tolist(), analysis.agreement.tolist()
    return PointResponse(
        model=model_summary(loaded),
        image=image_info(picture),
        size=params.size,
        grid=list(analysis.grid),
        point=[params.x, params.y],
        views=cells.views,
        cells=[list(cell) if cell is not None else None for cell in cells.cells],
        ranking=RANKING,
        maps=[
            LookingMapBody(
                index=m.index,
                relative=m.relative,
                per_view=m.per_view,
                views_above=m.views_above,
                agreement=finite_or_none(agreement[m.index]),
                group=groups[m.index],
                aligned=aligned[m.index],
                role=records[m.index].get("role") if records else None,
                auroc_heldout=finite_or_none(records[m.index].get("auroc_heldout")) if records else None,
                measured_pattern=records[m.index].get("pattern") if records else None,
            )
            for m in ranked
        ],
        profile=profile_body(profile),
    )
