"""The images the app offers without an upload, as the service serves them (``/v1/gallery``): its samples,
scikit-image's sample photos and generated multi-object scenes with their object masks. The front end only
asks; the service (``lewel.data.gallery``) reads and generates them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .client import ApiClient

SCENE_KEY = "scene"  #: the gallery item of generated scenes (``lewel.data.gallery.SCENE_KEY``)
_FILENAME = re.compile(r'filename="([^"]+)"')


@dataclass(frozen=True)
class GalleryItem:
    """One choice of the gallery: ``key`` identifies it, ``label`` is what the person reads, ``short`` a few
    words for the thumbnail grid; ``has_mask`` whether the service knows its objects (generated scenes)."""

    key: str
    label: str
    short: str
    has_mask: bool = False


@lru_cache(maxsize=8)
def _listing(base_url: str) -> dict:
    """``GET /v1/gallery`` of the service at ``base_url``, asked once per address."""
    return ApiClient(base_url).gallery()


def gallery_items(base_url: str) -> tuple[GalleryItem, ...]:
    """Every image the service's gallery offers, samples first."""
    return tuple(
        GalleryItem(item["key"], item["label"], item["short"], bool(item.get("has_mask")))
        for item in _listing(base_url)["items"]
    )


def max_scene(base_url: str) -> int:
    """The largest scene number the service generates."""
    return int(_listing(base_url)["max_scene"])


@lru_cache(maxsize=32)
def load_item(base_url: str, key: str, scene_index: int = 0) -> tuple[bytes, str]:
    """The bytes and file name of gallery item ``key`` (scene ``scene_index`` for generated scenes). Cached:
    the page asks again on every rerun."""
    response = ApiClient(base_url).gallery_file("image", key, scene_index)
    found = _FILENAME.search(response.headers.get("content-disposition", ""))
    return response.content, found.group(1) if found else f"{key.partition(':')[2] or key}.png"


@lru_cache(maxsize=32)
def load_mask(base_url: str, key: str, scene_index: int = 0) -> bytes | None:
    """The object mask (PNG, 255 = object) of gallery item ``key`` when the service has one, so that the page
    shows each map's AUROC on this very image; ``None`` for items without one."""
    if not any(item.key == key and item.has_mask for item in gallery_items(base_url)):
        return None
    return ApiClient(base_url).gallery_file("mask", key, scene_index).content


@lru_cache(maxsize=64)
def thumbnail_png(base_url: str, key: str, scene_index: int = 0) -> bytes:
    """A small PNG of gallery item ``key`` (at most 96 px a side), for the thumbnail grid."""
    return ApiClient(base_url).gallery_file("thumbnail", key, scene_index).content
