"""``POST /v1/embeddings``: the global embedding and the grouped aligned representations of an image."""

from __future__ import annotations

import json
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from lewel.maps.analysis import grouped_aligned_features

from ..encoding import encode_array, npz_bytes, png_base64
from ..schemas import EmbeddingsParams, EmbeddingsResponse, EmbeddingsViewBody
from ..service import Service
from .dependencies import ERROR_RESPONSES, ServiceDep, get_model, require_token
from .responses import image_info, model_summary
from .uploads import check_view_params, decode, plan_upload, read_upload, run_bounded, run_views

router = APIRouter(prefix="/v1", tags=["embeddings"], dependencies=[Depends(require_token)])

@router.post(
    "/embeddings",
    response_model=EmbeddingsResponse,
    summary="global embedding and grouped aligned representations of an uploaded image",
    responses={**ERROR_RESPONSES, 200: {"content": {"application/x-npz": {}}}},
)
async def embeddings(
    service: ServiceDep,
    request: Request,
    image: Annotated[UploadFile, File(description="the image (PNG, JPEG, WebP, GIF, BMP, TIFF, PPM, TGA)")],
    params: Annotated[EmbeddingsParams, Form()],
) -> Response | EmbeddingsResponse:
    """For view 0 (the whole image) and ``views`` augmented views: the pooled backbone feature (D), the
    global embedding z (d), the aligned embeddings ((d/h)×d) and the aligned representations with their
    channel groups explicit ((d/h)×h×(D/h)); the head outputs are null for models without them."""
    await check_view_params(params, service, request)
    data = await read_upload(image, service)
    plan = await run_in_threadpool(plan_upload, service, params, data, kind="embeddings")
    return await run_bounded(service, plan, _compute, service, data, params)


def _compute(service: Service, data: bytes, params: EmbeddingsParams) -> Response | EmbeddingsResponse:
    picture = decode(data, service, params.background)
    loaded = get_model(service, params.model)
    model = loaded.model
    views, extraction = run_views(service, loaded, picture, params)
    pooled = extraction.feature_map.float().mean(dim=(2, 3))
    global_embedding = extraction.global_embedding.float() if model.d is not None else None
    aligned = extraction.aligned_embeddings.float() if extraction.has_maps else None
    grouped = grouped_aligned_features(extraction).float() if extraction.has_maps else None
    if params.format == "npz":
        arrays = {
            "pooled_feature": pooled.numpy(),
            "boxes": np.array([v.box for v in views], dtype=np.int64),
            "flips": np.array([v.flip for v in views], dtype=bool),
            "meta": np.array(json.dumps({"model": model_summary(loaded).model_dump(), "size": params.size})),
        }
        if global_embedding is not None:
            arrays["global_embedding"] = global_embedding.numpy()
        if aligned is not None and grouped is not None:
            arrays["aligned_embeddings"] = aligned.numpy()
            arrays["aligned_features"] = grouped.numpy()
        return Response(
            npz_bytes(arrays),
            media_type="application/x-npz",
            headers={"Content-Disposition": 'attachment; filename="embeddings.npz"'},
        )
    bodies = [
        EmbeddingsViewBody(
            index=view.index,
            preset=view.preset,
            seed=view.seed,
            box=list(view.box),
            flip=view.flip,
            image_png=png_base64(view.to_pil()),
            pooled_feature=encode_array(pooled[v], "float32"),
            global_embedding=encode_array(global_embedding[v], "float32") if global_embedding is not None else None,
            aligned_embeddings=encode_array(aligned[v], "float32") if aligned is not None else None,
            aligned_features=encode_array(grouped[v], "float32") if grouped is not None else None,
        )
        for v, view in enumerate(views)
    ]
    return EmbeddingsResponse(
        model=model_summary(loaded),
        image=image_info(picture),
        size=params.size,
        d=model.d,
        h=model.h,
        num_aligned=model.num_aligned,
        feature_channels=model.feature_channels,
        views=bodies,
    )
