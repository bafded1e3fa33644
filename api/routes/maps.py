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

from lewel.analysis import MapAnalysis, MaskScores, analyze_maps, score_views
from lewel.images import ImageTooLargeError, MaskError, UnsupportedImageError, decode_mask
from lewel.maps import PATTERNS, MapStatistics, select_maps, top_per_pattern
from lewel.profiles import measured_line, profile_indices
from lewel.render import FIGURE_FORMATS, figure5, figure_bytes

from ..decode_warnings import collect
from ..encoding import encode_array, npz_bytes, png_base64
from ..errors import ApiError
from ..limits import FIGURE_MAX_MAPS, FIGURE_SOURCE_SIDE, MEBIBYTE, answer_too_large
from ..registry import LoadedModel
from ..schemas import (
    MapInfo,
    MapsParams,
    MapsResponse,
    MapStatisticsBody,
    MapsViewBody,
    Selection,
    ViewMaskBody,
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
    plan_upload,
    profile_body,
    read_upload,
    require_token,
    run_bounded,
    run_views,
)

router = APIRouter(prefix="/v1", tags=["maps"], dependencies=[Depends(require_token)])

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
    responses={
        **ERROR_RESPONSES,
        200: {"content": {**{media: {} for media in FIGURE_FORMATS.values()}, "application/x-npz": {}}},
    },
)
async def maps(
    service: ServiceDep,
    request: Request,
    image: Annotated[UploadFile, File(description="the image (PNG, JPEG, WebP, GIF, BMP, TIFF, PPM, TGA)")],
    params: Annotated[MapsParams, Form()],
    mask: Annotated[
        UploadFile | None,
        File(
            description="optional object mask of the image: a binary PNG (0 background, 255 or 1 object) of the "
            "image's size, or of its aspect ratio (resized with nearest); adds each map's AUROC and pointing hit "
            "on every view"
        ),
    ] = None,
) -> Response | MapsResponse:
    """Views 0 (the whole image) to ``views``, each with its crop box and flip in original-image pixels, its
    maps (float16), their statistics and pattern, the maps warped back into the image frame, and a
    cross-view agreement per map index; each map's role and AUROC from the model's profile when it has one,
    and with a ``mask`` each map's AUROC and pointing hit on this image. ``format=png`` draws Figure 5,
    ``format=npz`` returns the arrays."""
    await check_view_params(params, service, request, files=("image", "mask"))
    data = await read_upload(image, service)
    mask_data = await read_upload(mask, service) if mask is not None else None
    plan = await run_in_threadpool(plan_upload, service, params, data, mask_data, kind="maps")
    return await run_bounded(service, plan, _compute, service, data, params, mask_data)


def _decode_mask(data: bytes, picture: Image.Image, service: Service) -> torch.Tensor:
    """The uploaded mask for ``picture``: 413 too large, 422 not a usable mask (the message says why)."""
    try:
        with collect("the upload 'mask'"):
            return torch.from_numpy(decode_mask(data, picture.size, max_pixels=service.settings.max_pixels))
    except ImageTooLargeError as error:
        raise ApiError(413, "too_large", f"{error} (LEWEL_MAX_PIXELS)") from None
    except (UnsupportedImageError, MaskError) as error:
        raise ApiError(422, "invalid_mask", f"the upload 'mask' cannot be used: {error}") from None


def _select(analysis: MapAnalysis, params: MapsParams, profile: dict | None, loaded: LoadedModel) -> list[int]:
    """The returned map indices: measured selections from the profile, heuristic ones from view 0."""
    measured = params.maps in ("object", "background") or params.order == "measured"
    if measured and profile is None:
        raise ApiError(
            422,
            "no_profile",
            f"maps={params.maps} order={params.order} need the model's map profile, and {loaded.id!r} has none: "
            f"run `lewel profile --checkpoint {loaded.file.name}` next to the file, or choose maps=all/top with a "
            "heuristic order",
        )
    if params.maps in ("object", "background"):
        return profile_indices(profile, params.maps)
    if params.order == "measured":
        chosen = profile_indices(profile, "all")
        if params.maps == "top":
            keep = set(select_maps(analysis.view_statistics(0), maps="top", order="index", top_k=params.top_k))
            chosen = [m for m in chosen if m in keep]
        return chosen
    return select_maps(analysis.view_statistics(0), maps=params.maps, order=params.order, top_k=params.top_k)


def _compute(service: Service, data: bytes, params: MapsParams, mask_data: bytes | None = None) -> Response | MapsResponse:
    picture = decode(data, service, params.background)
    mask = _decode_mask(mask_data, picture, service) if mask_data is not None else None
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
    profile, _ = service.registry.profile(loaded.file, d=d)
    views, extraction = run_views(service, loaded, picture, params, aligned_projection=False)
    analysis = analyze_maps(views, extraction, frame_cells=params.frame_cells)
    indices = _select(analysis, params, profile, loaded)
    top = top_per_pattern(analysis.view_statistics(0), params.top_k) if params.maps == "top" else None
    scores = score_views(analysis, mask) if mask is not None else None
    if params.format in FIGURE_FORMATS:
        return _figure(analysis, indices, picture, params, profile, loaded, service.settings.max_response_bytes)
    if params.format == "npz":
        return _npz(analysis, indices, loaded, params, profile, scores)
    return _json(analysis, indices, top, loaded, picture, params, profile, scores)


def _profile_columns(profile: dict | None, indices: list[int]) -> dict[str, list]:
    """Role and profile scores of each map in ``indices`` (``None`` for each without a profile)."""
    names = ("role", "auroc_heldout", "auroc_calibration", "pointing_heldout")
    if profile is None:
        return {name: [None] * len(indices) for name in names}
    records = profile["maps"]
    return {name: [records[m].get(name) for m in indices] for name in names}


def _nan_to_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _figure(
    analysis: MapAnalysis,
    indices: list[int],
    picture: Image.Image,
    params: MapsParams,
    profile: dict | None,
    loaded: LoadedModel,
    max_bytes: int,
) -> Response:
    """Figure 5 of the first ``FIGURE_MAX_MAPS`` selected maps as PNG, PDF or SVG (``lewel.render``, the
    renderer of the app's downloads): titles with each map's measured role and held-out AUROC, or its
    heuristic pattern without a profile; colour bars in units of the uniform value."""
    shown = indices[:FIGURE_MAX_MAPS]
    thumbnail = picture.copy()
    thumbnail.thumbnail((FIGURE_SOURCE_SIDE, FIGURE_SOURCE_SIDE))
    patterns = analysis.statistics.pattern
    if profile is not None:
        records = profile["maps"]
        titles = [[f"map {m} · {records[m]['role']}\nAUROC {records[m]['auroc_heldout']:.2f}" for m in shown]] * len(
            analysis.views
        )
        summary = profile["summary"]
        heading = f"{loaded.id}: {measured_line(summary)} (held-out AUROC)"
    else:
        titles = [[f"map {m}\n{PATTERNS[int(patterns[v, m])]} (heuristic)" for m in shown] for v in range(len(analysis.views))]
        heading = f"{loaded.id}: no map profile (maps not measured against objects)"
    figure = figure5(
        analysis, shown, thumbnail, cmap=params.cmap, scale=params.scale, titles=titles, title=heading
    )
    data = figure_bytes(figure, params.format, dpi=params.dpi)
    if len(data) > max_bytes:  # the estimate (api.limits.plan_request) is an upper bound: this is a safety net
        size = f"the {params.format.upper()} figure is {len(data) / MEBIBYTE:,.1f} MiB"
        raise answer_too_large(size, max_bytes, "maps", params.format)
    headers = {
        "X-Lewel-Maps": ",".join(map(str, shown)),
        "Content-Disposition": f'inline; filename="figure5.{params.format}"',
    }
    return Response(data, media_type=FIGURE_FORMATS[params.format], headers=headers)


def _statistics(
    analysis: MapAnalysis, view: int, indices: list[int], scores: MaskScores | None = None
) -> list[MapStatisticsBody]:
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
            auroc=None if scores is None else _nan_to_none(float(scores.auroc[view, m])),
            pointing_hit=None if scores is None else bool(scores.pointing[view, m]),
        )
        for m in indices
    ]


def _view_mask(scores: MaskScores | None, view: int) -> ViewMaskBody | None:
    if scores is None:
        return None
    return ViewMaskBody(
        object_share=float(scores.object_share[view]),
        pointing_chance=float(scores.pointing_chance[view]),
        scored=not bool(np.isnan(float(scores.auroc[view, 0]))),
    )


def _json(
    analysis: MapAnalysis,
    indices: list[int],
    top: dict[str, list[int]] | None,
    loaded: LoadedModel,
    picture: Image.Image,
    params: MapsParams,
    profile: dict | None = None,
    scores: MaskScores | None = None,
) -> MapsResponse:
    chosen = torch.tensor(indices, dtype=torch.int64)
    columns = _profile_columns(profile, indices)
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
            statistics=_statistics(analysis, v, indices, scores),
            mask=_view_mask(scores, v),
        )
        for v, view in enumerate(analysis.views)
    ]
    return MapsResponse(
        model=model_summary(loaded),
        image=image_info(picture),
        size=params.size,
        grid=list(analysis.grid),
        frame_grid=list(analysis.frame_grid),
        selection=Selection(
            maps=params.maps,
            order=params.order,
            top_k=params.top_k,
            indices=indices,
            top=top,
            ranked_on="profile" if params.maps in ("object", "background") or params.order == "measured" else "view 0",
        ),
        maps=[
            MapInfo(
                index=m,
                group=groups[m],
                aligned=aligned[m],
                agreement=None if np.isnan(agreement[m]) else agreement[m],
                **{name: column[i] for name, column in columns.items()},
            )
            for i, m in enumerate(indices)
        ],
        agreement=AGREEMENT,
        profile=profile_body(profile),
        mask=scores is not None,
        views=views,
    )


def _npz(
    analysis: MapAnalysis,
    indices: list[int],
    loaded: LoadedModel,
    params: MapsParams,
    profile: dict | None = None,
    scores: MaskScores | None = None,
) -> Response:
    chosen = torch.tensor(indices, dtype=torch.int64)
    stats = analysis.statistics
    columns = _profile_columns(profile, indices)
    summary = profile_body(profile)
    views = len(analysis.views)

    def floats(values: list) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
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
        "roles": np.array(["" if r is None else r for r in columns["role"]], dtype=str),
        "profile_auroc_heldout": floats(columns["auroc_heldout"]),
        "profile_auroc_calibration": floats(columns["auroc_calibration"]),
        "profile_pointing_heldout": floats(columns["pointing_heldout"]),
        "mask_auroc": scores.auroc[:, chosen].numpy() if scores is not None else np.full((views, len(indices)), np.nan),
        "mask_pointing": scores.pointing[:, chosen].numpy() if scores is not None else np.zeros((views, len(indices)), bool),
        "mask_object_share": scores.object_share.numpy() if scores is not None else np.full(views, np.nan),
        "mask_pointing_chance": scores.pointing_chance.numpy() if scores is not None else np.full(views, np.nan),
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
                    "mask": scores is not None,
                    "profile": None if summary is None else summary.model_dump(),
                }
            )
        ),
    }
    return Response(
        npz_bytes(arrays),
        media_type="application/x-npz",
        headers={"Content-Disposition": 'attachment; filename="maps.npz"'},
    )
