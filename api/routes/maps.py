"""``POST /v1/maps``: the alignment maps of an image and its augmented views."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Annotated, get_args

import numpy as np
import torch
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from PIL import Image

from lewel.drawing.render import FIGURE_FORMATS
from lewel.files.images import ImageTooLargeError, MaskError, UnsupportedImageError, UploadedMask, read_mask
from lewel.maps import PATTERNS, MapStatistics, frame_density, select_maps, top_per_pattern
from lewel.maps.analysis import InstanceScores, MapAnalysis, MaskScores, analyze_maps, score_instances, score_views
from lewel.maps.pattern_names import role_text
from lewel.maps.profiles import (
    category_indices,
    has_patterns,
    measured_line,
    pattern_indices,
    patterns_note,
    profile_categories,
    profile_indices,
)

from ..decode_warnings import collect
from ..encoding import encode_array, npz_bytes, png_base64
from ..errors import ApiError, shown_name
from ..figure_jobs import FigureJob
from ..limits import FIGURE_MAX_MAPS, FIGURE_SOURCE_SIDE, MEBIBYTE, NPZ_SOURCE_SIDE, answer_too_large
from ..registry import LoadedModel
from ..schemas import (
    CategoryScoreBody,
    MapInfo,
    MapsParams,
    MapsResponse,
    MapStatisticsBody,
    MapsViewBody,
    MeasuredPattern,
    PreferredCategoryBody,
    Selection,
    ViewInstanceBody,
    ViewMaskBody,
)
from ..service import Service
from .dependencies import ERROR_RESPONSES, ServiceDep, get_maps_model, require_token
from .responses import finite_or_none, image_info, model_summary, profile_body
from .uploads import check_view_params, decode, plan_upload, read_upload, run_bounded, run_views

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
SHOWN_CATEGORIES = 3  #: categories per map in ``MapInfo.top_categories``

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
            description="optional object mask of the image: a binary PNG (0 background, 255 or 1 object) or an "
            "instance-coded one (0 background, 1 .. 64 one value per instance, 255 ignored; grey or palette PNG; a "
            "16-bit grey PNG keeps its own values: any id but 0, 65535 ignored, at most 64 instances) of "
            "the image's size, or of its aspect ratio (resized with nearest); adds each map's AUROC and pointing "
            "hit on every view, and with instances each instance's AUROC per map"
        ),
    ] = None,
) -> Response | MapsResponse:
    """Views 0 (the whole image) to ``views``, each with its crop box and flip in original-image pixels, its
    maps (float16), their statistics and pattern, the maps warped back into the image frame, and a
    cross-view agreement per map index; each map's role and AUROC from the model's profile when it has one,
    with its measured pattern and categories when the profile measured them (``pattern=`` and ``category=``
    select by them), and with a ``mask`` each map's AUROC and pointing hit on this image (an instance-coded
    mask: also per instance). ``format=png`` draws Figure 5, ``format=npz`` returns the arrays."""
    await check_view_params(params, service, request, files=("image", "mask"))
    data = await read_upload(image, service)
    mask_data = await read_upload(mask, service) if mask is not None else None
    plan = await run_in_threadpool(plan_upload, service, params, data, mask_data, kind="maps")
    answer = await run_bounded(service, plan, _compute, service, data, params, mask_data)
    if isinstance(answer, FigureJob):  # drawn by the drawing pool, apart from the model passes
        drawn = await service.drawing.draw(answer, memory=plan.drawing)
        return _figure_response(answer, drawn, service.settings.max_response_bytes)
    return answer


def _decode_mask(data: bytes, picture: Image.Image, service: Service) -> UploadedMask:
    """The uploaded mask for ``picture``, binary or instance-coded: 413 too large, 422 not a usable mask (the
    message says why)."""
    try:
        with collect("the upload 'mask'"):
            return read_mask(data, picture.size, max_pixels=service.settings.max_pixels)
    except ImageTooLargeError as error:
        raise ApiError(413, "too_large", f"{error} (LEWEL_MAX_PIXELS)") from None
    except (UnsupportedImageError, MaskError) as error:
        raise ApiError(422, "invalid_mask", f"the upload 'mask' cannot be used: {error}") from None


def _measured_selection(params: MapsParams, profile: dict | None, loaded: LoadedModel) -> list[int] | None:
    """The maps of ``pattern=`` and / or ``category=`` in the profile's order (``None``: neither asked), before
    ``maps=`` narrows them (``_within_maps``): 422 ``no_patterns`` without measured patterns, 422
    ``unknown_category`` for a name the profile lacks, 422 ``invalid_parameters`` for an order of its own."""
    if params.pattern is None and params.category is None:
        return None
    if params.order not in ("index", "measured"):
        raise ApiError(
            422,
            "invalid_parameters",
            f"pattern= and category= order the maps as the profile measured them: use them with order=index or "
            f"measured (any maps=), not order={params.order}",
        )
    if not has_patterns(profile):
        why = (
            f"{loaded.id!r} has no map profile: run `lewel profile --checkpoint {loaded.file.name}` on data with "
            "instance masks (scenes, coco:, voc:, or instance-coded masks/)"
            if profile is None
            else f"the profile of {loaded.id!r} has none: {patterns_note(profile)}"
        )
        raise ApiError(422, "no_patterns", f"pattern= and category= need the profile's measured patterns; {why}")
    chosen = pattern_indices(profile, params.pattern) if params.pattern is not None else None
    if params.category is not None:
        names = profile_categories(profile)
        if params.category not in names:
            raise ApiError(
                422,
                "unknown_category",
                f"category={shown_name(params.category)} is not a category of the profile of {loaded.id!r}; its categories: "
                f"{', '.join(names) if names else 'none'}",
            )
        looking = category_indices(profile, params.category)
        chosen = looking if chosen is None else [m for m in looking if m in set(chosen)]
    return chosen


def _within_maps(
    chosen: list[int], analysis: MapAnalysis, params: MapsParams, profile: dict | None, loaded: LoadedModel
) -> list[int]:
    """``pattern=`` / ``category=``'s maps that ``maps=`` (top, object or background) also returns, in the
    profile's order for the pattern or category: e.g. ``maps=object&pattern=multi-object`` is the profile's
    object maps whose measured pattern is multi-object."""
    keep = set(_select(analysis, params.model_copy(update={"order": "index"}), profile, loaded))
    return [m for m in chosen if m in keep]


def _listed(values: list[int], most: int = 10) -> str:
    """``values`` for a message: the first ``most`` and how many more."""
    shown = ", ".join(map(str, values[:most]))
    return shown if len(values) <= most else f"{shown} and {len(values) - most} more"


def parse_indices(params: MapsParams, d: int) -> list[int] | None:
    """The maps of ``indices=`` (``None``: not given): 422 ``invalid_parameters`` for an index of d or more, an
    index given twice, or with another selection (``maps``, ``order``, ``pattern``, ``category``)."""
    if params.indices is None:
        return None
    if params.maps != "all" or params.order != "index" or params.pattern is not None or params.category is not None:
        raise ApiError(
            422,
            "invalid_parameters",
            "indices= chooses the maps and their order itself: use it with maps=all and order=index, without "
            f"pattern= or category= (got maps={params.maps} order={params.order})",
        )
    chosen = [int(value) for value in params.indices.split(",")]
    beyond = sorted({m for m in chosen if m >= d})
    if beyond:
        raise ApiError(
            422, "invalid_parameters", f"indices= {_listed(beyond)}: the model has d={d} maps (0 to {d - 1})"
        )
    twice = sorted({m for m in chosen if chosen.count(m) > 1})
    if twice:
        raise ApiError(422, "invalid_parameters", f"indices= gives {_listed(twice)} more than once")
    return chosen


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


def _compute(
    service: Service, data: bytes, params: MapsParams, mask_data: bytes | None = None
) -> Response | MapsResponse | FigureJob:
    """The answer, or for a figure the drawing still to do (``api.drawing_pool`` draws it)."""
    picture = decode(data, service, params.background)
    mask = _decode_mask(mask_data, picture, service) if mask_data is not None else None
    loaded = get_maps_model(service, params.model)
    d = loaded.model.d or 0
    if params.top_k > d:
        raise ApiError(422, "invalid_parameters", f"top_k={params.top_k} exceeds the model's d={d} maps")
    profile, _ = service.registry.profile(loaded.file, d=d)
    measured = parse_indices(params, d)
    if measured is None:
        measured = _measured_selection(params, profile, loaded)
    views, extraction = run_views(service, loaded, picture, params, aligned_projection=False)
    analysis = analyze_maps(views, extraction, frame_cells=params.frame_cells)
    if measured is not None and params.indices is None and params.maps != "all":
        measured = _within_maps(measured, analysis, params, profile, loaded)
    indices = measured if measured is not None else _select(analysis, params, profile, loaded)
    top = top_per_pattern(analysis.view_statistics(0), params.top_k) if params.maps == "top" else None
    scores = score_views(analysis, torch.from_numpy(mask.objects)) if mask is not None else None
    instances = (
        score_instances(analysis, mask.objects, mask.instances, mask.ids)
        if mask is not None and mask.instances is not None
        else None
    )
    if params.format in FIGURE_FORMATS:
        return _figure_job(analysis, indices, picture, params, profile, loaded)
    if params.format == "npz":
        return _npz(analysis, indices, loaded, params, profile, scores, instances, picture)
    return _json(analysis, indices, top, loaded, picture, params, profile, scores, instances)


def _profile_columns(profile: dict | None, indices: list[int]) -> dict[str, list]:
    """Role, profile scores, measured pattern and categories of each map in ``indices`` (``None`` and no
    categories for each without a profile or without measured patterns)."""
    names = ("role", "auroc_heldout", "auroc_calibration", "pointing_heldout")
    if profile is None:
        columns: dict[str, list] = {name: [None] * len(indices) for name in names}
    else:
        columns = {name: [profile["maps"][m].get(name) for m in indices] for name in names}
    records = [profile["maps"][m] for m in indices] if has_patterns(profile) else [{} for _ in indices]
    columns["measured_pattern"] = [r.get("pattern") for r in records]
    columns["measured_pattern_leaning"] = [r.get("pattern_leaning") for r in records]
    columns["measured_pattern_confidence"] = [r.get("pattern_confidence") for r in records]
    columns["top_categories"] = [
        [
            CategoryScoreBody(name=c["name"], auroc_heldout=c.get("auroc_heldout"), images=c.get("images", 0))
            for c in (r.get("categories") or [])[:SHOWN_CATEGORIES]
        ]
        for r in records
    ]
    columns["category"] = [
        None
        if not r.get("category")
        else PreferredCategoryBody(
            name=r["category"]["name"],
            preference_heldout=r["category"].get("preference_heldout"),
            significant=bool(r["category"].get("significant")),
        )
        for r in records
    ]
    return columns


def _by_profile(params: MapsParams) -> bool:
    """Whether the selection follows the profile's measured patterns or categories."""
    return params.pattern is not None or params.category is not None


def _figure_job(
    analysis: MapAnalysis,
    indices: list[int],
    picture: Image.Image,
    params: MapsParams,
    profile: dict | None,
    loaded: LoadedModel,
) -> FigureJob:
    """Figure 5 of the first ``FIGURE_MAX_MAPS`` selected maps, as the plain arrays a drawing process draws
    (``api.drawing_pool``; ``lewel.drawing.render``, the renderer of the app's downloads): titles with each map's
    measured pattern (or, in a profile without patterns, its role) and held-out AUROC, or its heuristic pattern
    without a profile; colour bars in units of the uniform value."""
    shown = indices[:FIGURE_MAX_MAPS]
    thumbnail = picture.convert("RGB")
    thumbnail.thumbnail((FIGURE_SOURCE_SIDE, FIGURE_SOURCE_SIDE))
    patterns = analysis.statistics.pattern
    if profile is not None:
        records = profile["maps"]
        measured = has_patterns(profile)

        def role(record: dict) -> str:
            if not measured:
                return record.get("role") or "not measured"
            return role_text(record.get("pattern"), record.get("pattern_leaning"), record.get("pattern_confidence"))

        titles = [[f"map {m} · {role(records[m])}\nAUROC {records[m]['auroc_heldout']:.2f}" for m in shown]] * len(analysis.views)
        heading = f"{loaded.id}: {measured_line(profile['summary'])} (held-out AUROC)"
    else:
        titles = [[f"map {m}\n{PATTERNS[int(patterns[v, m])]} (heuristic)" for m in shown] for v in range(len(analysis.views))]
        heading = f"{loaded.id}: no map profile (maps not measured against objects)"
    views = analysis.views
    return FigureJob(
        shown=shown,
        source=np.asarray(thumbnail, dtype=np.uint8),
        source_size=tuple(views[0].source_size),
        view_images=[view.image.permute(1, 2, 0).numpy().astype(np.uint8) for view in views],
        boxes=[tuple(view.box) for view in views],
        flips=[bool(view.flip) for view in views],
        presets=[view.preset for view in views],
        maps=analysis.maps[:, shown].float().numpy(),
        titles=[list(row) for row in titles],
        title=heading,
        cmap=params.cmap,
        alpha=params.alpha,
        scale=params.scale,
        format=params.format,
        dpi=params.dpi,
    )


def _figure_response(job: FigureJob, data: bytes, max_bytes: int) -> Response:
    """The drawn figure, refused when over the answer cap (the estimate, ``api.limits.plan_request``, is an upper
    bound: this is a safety net); ``X-Lewel-Maps`` lists the maps drawn."""
    if len(data) > max_bytes:
        size = f"the {job.format.upper()} figure is {len(data) / MEBIBYTE:,.1f} MiB"
        raise answer_too_large(size, max_bytes, "maps", job.format)
    headers = {
        "X-Lewel-Maps": ",".join(map(str, job.shown)),
        "Content-Disposition": f'inline; filename="figure5.{job.format}"',
    }
    return Response(data, media_type=FIGURE_FORMATS[job.format], headers=headers)


def _statistics(
    analysis: MapAnalysis,
    view: int,
    indices: list[int],
    scores: MaskScores | None = None,
    instances: InstanceScores | None = None,
) -> list[MapStatisticsBody]:
    stats = analysis.statistics
    per_instance = None if instances is None else instances.auroc[view].T.tolist()  # d×K
    columns = {name: getattr(stats, name)[view].tolist() for name in STATISTICS}
    typical = {pattern: stats.typicality(pattern)[view].tolist() for pattern in PATTERNS}
    patterns = stats.pattern[view].tolist()
    return [
        MapStatisticsBody(
            index=m,
            pattern=PATTERNS[patterns[m]],
            **{name: column[m] for name, column in columns.items()},
            typicality={pattern: typical[pattern][m] for pattern in PATTERNS},
            auroc=None if scores is None else finite_or_none(float(scores.auroc[view, m])),
            pointing_hit=None if scores is None else bool(scores.pointing[view, m]),
            instance_auroc=None if per_instance is None else [finite_or_none(v) for v in per_instance[m]],
        )
        for m in indices
    ]


def _view_mask(scores: MaskScores | None, view: int, instances: InstanceScores | None = None) -> ViewMaskBody | None:
    if scores is None:
        return None
    return ViewMaskBody(
        object_share=float(scores.object_share[view]),
        pointing_chance=float(scores.pointing_chance[view]),
        scored=not bool(np.isnan(float(scores.auroc[view, 0]))),
        instances=None
        if instances is None
        else [
            ViewInstanceBody(id=i, share=float(instances.share[view, k]), cells=int(instances.cells[view, k]))
            for k, i in enumerate(instances.ids)
        ],
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
    instances: InstanceScores | None = None,
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
            statistics=_statistics(analysis, v, indices, scores, instances),
            mask=_view_mask(scores, v, instances),
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
            ranked_on="profile"
            if params.maps in ("object", "background") or params.order == "measured" or _by_profile(params)
            else "view 0",
            pattern=params.pattern,
            category=params.category,
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
        mask_instances=None if instances is None else list(instances.ids),
        views=views,
    )


def npz_name(pattern: str) -> str:
    """A pattern's name as it appears in the NPZ answer's array names (identifiers: ``multi-object`` ->
    ``multi_object``)."""
    return pattern.replace("-", "_")


def _orders(analysis: MapAnalysis, profile: dict | None) -> dict[str, np.ndarray]:
    """Every ordering of the maps a client shows, so that it needs no second request and no library of its own
    (map indices, best first; empty where there is nothing to order):

    - ``order_heuristic_{object,multi_object,global}``: the maps of view 0 classified as that shape pattern,
      most typical first (``lewel.maps.top_per_pattern``);
    - ``order_profile_{object,background}``: the profile's measured object / background maps
      (``lewel.maps.profiles.profile_indices``);
    - ``order_pattern_{object,multi_object,global,background,mixed,undecided}``: the maps of each decided
      Figure-5 pattern, and the undecided ones (``lewel.maps.profiles.pattern_indices``);
    - ``category_names`` ``C`` and ``category_order`` ``C×d`` (-1 padded): the maps that look at each
      category of the profile's dissection (``lewel.maps.profiles.category_indices``)."""
    d = int(analysis.maps.shape[1])
    heuristic = top_per_pattern(analysis.view_statistics(0), d)
    orders = {f"order_heuristic_{npz_name(p)}": np.array(heuristic[p], dtype=np.int64) for p in PATTERNS}
    for role in ("object", "background"):
        chosen = profile_indices(profile, role) if profile is not None else []
        orders[f"order_profile_{role}"] = np.array(chosen, dtype=np.int64)
    measured = has_patterns(profile)
    for pattern in get_args(MeasuredPattern):
        chosen = pattern_indices(profile, pattern) if measured else []
        orders[f"order_pattern_{npz_name(pattern)}"] = np.array(chosen, dtype=np.int64)
    names = profile_categories(profile) if measured else []
    table = np.full((len(names), d), -1, dtype=np.int64)
    for row, name in enumerate(names):
        looking = category_indices(profile, name)
        table[row, : len(looking)] = looking
    orders["category_names"] = np.array(names, dtype=str)
    orders["category_order"] = table
    return orders


def _source_image(picture: Image.Image) -> np.ndarray:
    """The decoded upload as the service read it (orientation, background), downscaled to ``NPZ_SOURCE_SIDE``:
    ``H×W×3`` uint8, for a client to draw crops and warped maps on without decoding the file itself."""
    small = picture.convert("RGB")
    small.thumbnail((NPZ_SOURCE_SIDE, NPZ_SOURCE_SIDE))
    return np.asarray(small, dtype=np.uint8)


def _npz(
    analysis: MapAnalysis,
    indices: list[int],
    loaded: LoadedModel,
    params: MapsParams,
    profile: dict | None = None,
    scores: MaskScores | None = None,
    instances: InstanceScores | None = None,
    picture: Image.Image | None = None,
) -> Response:
    """The answer as NPZ arrays: the selected maps of every view with their statistics, profile columns and
    mask scores, each map's frame density (mass ÷ covered share, NaN outside the crop), every ordering a
    client shows (``_orders``) and the decoded upload (``source_image``, ``source_size`` W, H)."""
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
        "frame_density": frame_density(analysis.frame_maps[:, chosen], analysis.coverage[:, None]).float().numpy(),
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
        "mask_instance_ids": np.array([] if instances is None else instances.ids, dtype=np.int64),
        "mask_instance_auroc": instances.auroc[:, :, chosen].numpy()
        if instances is not None
        else np.zeros((views, 0, len(indices))),
        "mask_instance_cells": instances.cells.numpy() if instances is not None else np.zeros((views, 0), np.int64),
        "measured_patterns": np.array(["" if p is None else p for p in columns["measured_pattern"]], dtype=str),
        "measured_pattern_leaning": np.array(["" if p is None else p for p in columns["measured_pattern_leaning"]], dtype=str),
        "measured_pattern_confidence": floats(columns["measured_pattern_confidence"]),
        "top_categories": np.array(
            [[c.name for c in cats] + [""] * (SHOWN_CATEGORIES - len(cats)) for cats in columns["top_categories"]],
            dtype=str,
        ).reshape(len(indices), SHOWN_CATEGORIES),
        "preferred_category": np.array(["" if c is None else c.name for c in columns["category"]], dtype=str),
        "preferred_category_significant": np.array([c is not None and c.significant for c in columns["category"]], dtype=bool),
        **_orders(analysis, profile),
        **(
            {"source_image": _source_image(picture), "source_size": np.array(picture.size, dtype=np.int64)}
            if picture is not None
            else {}
        ),
        **{f"statistics_{name}": getattr(stats, name)[:, chosen].numpy() for name in STATISTICS},
        **{f"typicality_{npz_name(p)}": stats.typicality(p)[:, chosen].numpy() for p in PATTERNS},
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
                    "mask_instances": None if instances is None else list(instances.ids),
                    "pattern": params.pattern,
                    "category": params.category,
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
