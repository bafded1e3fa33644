"""``POST /v1/maps``: the alignment maps of an image and its augmented views."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Annotated

import numpy as np
import torch
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from PIL import Image

from lewel.analysis import MapAnalysis, analyze_maps
from lewel.maps import PATTERNS, MapStatistics, select_maps, top_per_pattern
from lewel.render import figure5, figure_png

from ..encoding import encode_array, npz_bytes, png_base64
from ..errors import ApiError
from ..registry import LoadedModel
from ..schemas import (
    MapInfo,
    MapsParams,
    MapsResponse,
    MapStatisticsBody,
    MapsViewBody,
    Selection,
)
from ..service import Service
from .common import (
    ERROR_RESPONSES,
    ServiceDep,
    check_view_params,
    decode,
    get_model,
    image_info,
    model_summary,
    read_upload,
    require_token,
    run_views,
)

router = APIRouter(prefix="/v1", tags=["maps"], dependencies=[Depends(require_token)])

PNG_MAX_MAPS = 16  #: format=png draws at most this many maps (the first of the selection)
PNG_SOURCE_SIDE = 512  #: the input column of the PNG shows the image downscaled to this longer side
AGREEMENT = (
    "cross-view agreement of a map index: for each pair of views, both maps are brought into the original "
    "image frame, restricted to the region both crops cover and renormalised there; the score is their overlap "
    "sum(min(p_a, p_b)) = 1 - total variation, computed exactly on the union of the two cell grids; the mean "
    "over all pairs of views (view 0 = the whole image included). 1 = the same distribution, 0 = disjoint; "
    "null with a single view or when no pair overlaps."
)
#: every per-map statistic of ``lewel.maps.MapStatistics`` (the pattern is reported by name)
STATISTICS = tuple(f.name for f in fields(MapStatistics) if f.name != "pattern")

@router.post(
    "/maps",
    response_model=MapsResponse,
    summary="alignment maps of an uploaded image and its augmented views",
    responses={**ERROR_RESPONSES, 200: {"content": {"image/png": {}, "application/x-npz": {}}}},
)
async def maps(
    service: ServiceDep,
    request: Request,
    image: Annotated[UploadFile, File(description="the image (PNG, JPEG, WebP, GIF, BMP, TIFF, PPM, TGA)")],
    params: Annotated[MapsParams, Form()],
) -> Response | MapsResponse:
    """Views 0 (the whole image) to ``views``, each with its crop box and flip in original-image pixels, its
    maps (float16), their statistics and pattern, the maps warped back into the image frame, and a
    cross-view agreement per map index. ``format=png`` draws Figure 5, ``format=npz`` returns the arrays."""
    await check_view_params(params, service, request)
    data = await read_upload(image, service)
    return await run_in_threadpool(_compute, service, data, params)


def _compute(service: Service, data: bytes, params: MapsParams) -> Response | MapsResponse:
    picture = decode(data, service, params.background)
    loaded = get_model(service, params.model)
    if not loaded.model.has_maps:
        raise ApiError(
            422,
            "model_without_maps",
            f"model {loaded.id!r} ({loaded.model.method}) has no alignment maps: choose a LEWEL model from /v1/models",
        )
    d = loaded.model.d or 0
    if params.top_k > d:
        raise ApiError(422, "invalid_parameters", f"top_k={params.top_k} exceeds the model's d={d} maps")
    views, extraction = run_views(service, loaded, picture, params, aligned_projection=False)
    analysis = analyze_maps(views, extraction, frame_cells=params.frame_cells)
    reference = analysis.view_statistics(0)
    indices = select_maps(reference, maps=params.maps, order=params.order, top_k=params.top_k)
    top = top_per_pattern(reference, params.top_k) if params.maps == "top" else None
    if params.format == "png":
        return _png(analysis, indices, picture)
    if params.format == "npz":
        return _npz(analysis, indices, loaded, params)
    return _json(analysis, indices, top, loaded, picture, params)


def _png(analysis: MapAnalysis, indices: list[int], picture: Image.Image) -> Response:
    shown = indices[:PNG_MAX_MAPS]
    thumbnail = picture.copy()
    thumbnail.thumbnail((PNG_SOURCE_SIDE, PNG_SOURCE_SIDE))
    png = figure_png(figure5(analysis, shown, thumbnail))
    return Response(png, media_type="image/png", headers={"X-Lewel-Maps": ",".join(map(str, shown))})


def _statistics(analysis: MapAnalysis, view: int, indices: list[int]) -> list[MapStatisticsBody]:
    stats = analysis.statistics
    columns = {name: getattr(stats, name)[view].tolist() for name in STATISTICS}
    typical = {pattern: stats.typicality(pattern)[view].tolist() for pattern in PATTERNS}
    patterns = stats.pattern[view].tolist()
    return [
        MapStatisticsBody(
            index=m,
            pattern=PATTERNS[patterns[m]],
            **{name: column[m] for name, column in columns.items()},
            typicality={pattern: typical[pattern][m] for pattern in PATTERNS},
        )
        for m in indices
    ]


def _json(
    analysis: MapAnalysis,
    indices: list[int],
    top: dict[str, list[int]] | None,
    loaded: LoadedModel,
    picture: Image.Image,
    params: MapsParams,
) -> MapsResponse:
    chosen = torch.tensor(indices, dtype=torch.int64)
    groups, aligned, agreement = analysis.groups.tolist(), analysis.aligned.tolist(), analysis.agreement.tolist()
    views = [
        MapsViewBody(
            index=view.index,
            preset=view.preset,
            seed=view.seed,
            box=list(view.box),
            flip=view.flip,
            image_png=png_base64(view.to_pil()),
            maps=encode_array(analysis.maps[v, chosen]),
            frame_maps=encode_array(analysis.frame_maps[v, chosen]),
            coverage=encode_array(analysis.coverage[v]),
            statistics=_statistics(analysis, v, indices),
        )
        for v, view in enumerate(analysis.views)
    ]
    return MapsResponse(
        model=model_summary(loaded),
        image=image_info(picture),
        size=params.size,
        grid=list(analysis.grid),
        frame_grid=list(analysis.frame_grid),
        selection=Selection(maps=params.maps, order=params.order, top_k=params.top_k, indices=indices, top=top),
        maps=[
            MapInfo(
                index=m, group=groups[m], aligned=aligned[m], agreement=None if np.isnan(agreement[m]) else agreement[m]
            )
            for m in indices
        ],
        agreement=AGREEMENT,
        views=views,
    )


def _npz(analysis: MapAnalysis, indices: list[int], loaded: LoadedModel, params: MapsParams) -> Response:
    chosen = torch.tensor(indices, dtype=torch.int64)
    stats = analysis.statistics
    arrays: dict[str, np.ndarray] = {
        "indices": chosen.numpy(),
        "groups": analysis.groups[chosen].numpy(),
        "aligned": analysis.aligned[chosen].numpy(),
        "agreement": analysis.agreement[chosen].numpy(),
        "maps": analysis.maps[:, chosen].numpy(),
        "frame_maps": analysis.frame_maps[:, chosen].numpy(),
        "coverage": analysis.coverage.numpy(),
        "view_images": torch.stack([v.image for v in analysis.views]).permute(0, 2, 3, 1).numpy(),
        "boxes": np.array([v.box for v in analysis.views], dtype=np.int64),
        "flips": np.array([v.flip for v in analysis.views], dtype=bool),
        "patterns": stats.pattern[:, chosen].numpy(),
        "pattern_names": np.array(PATTERNS),
        **{f"statistics_{name}": getattr(stats, name)[:, chosen].numpy() for name in STATISTICS},
        **{f"typicality_{p.replace('-', '_')}": stats.typicality(p)[:, chosen].numpy() for p in PATTERNS},
        "meta": np.array(
            json.dumps(
                {
                    "model": model_summary(loaded).model_dump(),
                    "size": params.size,
                    "preset": params.preset,
                    "seed": params.seed,
                    "views": params.views,
                    "agreement": AGREEMENT,
                }
            )
        ),
    }
    return Response(
        npz_bytes(arrays),
        media_type="application/x-npz",
        headers={"Content-Disposition": 'attachment; filename="maps.npz"'},
    )
