"""``/v1/gallery``: the images offered without an upload (``lewel.data.gallery``), so that a front end needs neither
torch nor the library: the list, each image, its object mask (generated scenes) and a thumbnail."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from lewel.data.gallery import (
    MAX_SCENE,
    STATIC_SAMPLES,
    GalleryItem,
    gallery_items,
    load_instances,
    load_item,
    load_mask,
    thumbnail_png,
    warm,
)

from ..errors import ApiError, shown_name
from ..schemas_gallery import GalleryItemBody, GalleryResponse
from .dependencies import ERROR_RESPONSES, require_token

#: the errors these routes answer (no uploads here: no 413 or 415)
RESPONSES = {status: ERROR_RESPONSES[status] for status in (401, 404, 422, 500)}
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
BINARY = {"schema": {"type": "string", "format": "binary"}}
PNG_RESPONSE = {200: {"description": "a PNG image", "content": {"image/png": BINARY}}}
IMAGE_RESPONSE = {
    200: {
        "description": "the image file; Content-Disposition carries its file name",
        "content": {media: BINARY for media in sorted(set(MEDIA_TYPES.values()))},
        "headers": {"Content-Disposition": {"schema": {"type": "string"}, "description": 'inline; filename="…"'}},
    }
}

Key = Annotated[
    str,
    Query(description="the item's key, as listed by GET /v1/gallery", examples=["skimage:coffee", "scene"]),
]
Scene = Annotated[
    int, Query(ge=0, le=MAX_SCENE, description="which generated scene, for the scene item (other items ignore it)")
]
MaskKind = Annotated[
    Literal["binary", "instances"],
    Query(description="binary: 255 on objects, 0 elsewhere; instances: 0 background, k on the k-th object (1..K)"),
]

log = logging.getLogger("api.gallery")
router = APIRouter(prefix="/v1", tags=["gallery"], dependencies=[Depends(require_token)], responses=RESPONSES)


def warm_up() -> None:
    """``lewel.data.gallery.warm`` of the static samples, logged; a failure here only means a slower first
    gallery request, which then says what is wrong."""
    try:
        count = warm(STATIC_SAMPLES)
    except Exception:  # noqa: BLE001 - a background warm-up must not end the service
        log.exception("the gallery could not be prepared")
        return
    log.info("gallery ready: %d items", count)


def samples_dir() -> Path:
    """The folder of the static samples (a dependency, so that a test can point it elsewhere)."""
    return STATIC_SAMPLES


SamplesDir = Annotated[Path, Depends(samples_dir)]


def _find(key: str, folder: Path) -> GalleryItem:
    """The gallery item ``key``; 404 ``not_found`` listing the keys there are."""
    items = gallery_items(folder)
    for item in items:
        if item.key == key:
            return item
    keys = [item.key for item in items]
    raise ApiError(
        404, "not_found", f"no gallery item {shown_name(key)}; there are: {', '.join(keys)}", available=keys
    )


def _load(function: Any, *args: Any) -> Any:
    """``function(*args)`` with an item that vanished since it was listed answered as 404."""
    try:
        return function(*args)
    except (FileNotFoundError, KeyError) as error:
        raise ApiError(404, "not_found", str(error.args[0]) if error.args else str(error)) from None


def _file(function: Callable[[str, int, Path], Any], key: str, scene: int, folder: Path) -> Any:
    """``function`` (``load_item`` or ``thumbnail_png``) of item ``key``: its scene for the scene item, 0 for the others."""
    item = _find(key, folder)
    return _load(function, item.key, scene if item.scenes else 0, folder)


def _mask(key: str, scene: int, kind: str, folder: Path) -> bytes:
    item = _find(key, folder)
    if not item.has_mask:
        raise ApiError(404, "no_mask", f"gallery item {key!r} has no object mask (only generated scenes have one)")
    return _load(load_mask if kind == "binary" else load_instances, item.key, scene)


def _disposition(name: str) -> str:
    """``inline`` with the file name: quoted ASCII, and RFC 6266's ``filename*`` when the name is not plain."""
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    header = f'inline; filename="{plain}"'
    return header if plain == name else f"{header}; filename*=UTF-8''{quote(name, safe='')}"


@router.get("/gallery", summary="the images offered without an upload", response_model=GalleryResponse)
async def get_gallery(folder: SamplesDir) -> GalleryResponse:
    """The static samples, scikit-image's sample photos and, when Debian's Tux Paint cut-outs are installed,
    generated multi-object scenes (chosen by a scene number from 0 to ``max_scene``, with exact object masks)."""
    items = await run_in_threadpool(gallery_items, folder)
    bodies = [
        GalleryItemBody(key=i.key, label=i.label, short=i.short, has_mask=i.has_mask, scenes=i.scenes) for i in items
    ]
    return GalleryResponse(items=bodies, max_scene=MAX_SCENE)


@router.get(
    "/gallery/image", summary="a gallery image", response_class=Response, responses=IMAGE_RESPONSE
)
async def get_gallery_image(key: Key, folder: SamplesDir, scene: Scene = 0) -> Response:
    """The item's file (static samples as they are, photos and scenes as PNG); scenes are 256×256 and depend
    only on their number."""
    data, name = await run_in_threadpool(_file, load_item, key, scene, folder)
    media = MEDIA_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")
    return Response(data, media_type=media, headers={"Content-Disposition": _disposition(name)})


@router.get(
    "/gallery/mask", summary="the object mask of a generated scene (PNG)", response_class=Response,
    responses=PNG_RESPONSE,
)
async def get_gallery_mask(key: Key, folder: SamplesDir, scene: Scene = 0, kind: MaskKind = "binary") -> Response:
    """The mask of the image at the same ``key`` and ``scene``, the same size: ``binary`` (255 on objects) or
    ``instances`` (grey: 0 background, 1..K one value per object in paste order, later objects on top). 404
    ``no_mask`` for items whose objects are not known."""
    return Response(await run_in_threadpool(_mask, key, scene, kind, folder), media_type="image/png")


@router.get(
    "/gallery/thumbnail", summary="a gallery thumbnail (PNG)", response_class=Response, responses=PNG_RESPONSE
)
async def get_gallery_thumbnail(key: Key, folder: SamplesDir, scene: Scene = 0) -> Response:
    """The item as an RGB PNG whose longer side is at most 96 pixels."""
    return Response(await run_in_threadpool(_file, thumbnail_png, key, scene, folder), media_type="image/png")
