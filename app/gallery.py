"""Images the app offers without an upload: the samples in ``static/samples``, scikit-image's sample photos
(installed with the package, no download) and freshly generated multi-object scenes (Debian's Tux Paint
cut-outs, through ``lewel.data.SceneGenerator``)."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from lewel.data.scenes import Scene

STATIC_SAMPLES = Path(__file__).resolve().parent.parent / "static" / "samples"
SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
#: scikit-image sample photos shipped inside the package (no download), with a label
SKIMAGE_PHOTOS = {
    "astronaut": "astronaut (Eileen Collins)",
    "chelsea": "cat (Chelsea)",
    "coffee": "coffee cup",
    "rocket": "rocket on the launch pad",
    "immunohistochemistry": "microscopy (immunohistochemistry)",
    "hubble_deep_field": "Hubble deep field",
    "colorwheel": "colour wheel",
}
#: a few words for the thumbnail grid where the photo's name is long
SKIMAGE_SHORT = {"immunohistochemistry": "microscopy", "hubble_deep_field": "Hubble field", "colorwheel": "colour wheel"}
SCENE_KEY = "scene"
SCENE_SIZE = 256


@dataclass(frozen=True)
class GalleryItem:
    """One choice of the gallery: ``key`` identifies it, ``label`` is what the person reads."""

    key: str
    label: str

    @property
    def short(self) -> str:
        """A few words for the thumbnail grid: ``three objects``, ``coffee``, ``scene``."""
        source, _, name = self.key.partition(":")
        if source == "static":
            return Path(name).stem.replace("_", " ")
        return SKIMAGE_SHORT.get(name, name) or source


def _png(image: Image.Image | np.ndarray) -> bytes:
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _skimage_loader(name: str) -> Callable[[], np.ndarray] | None:
    """scikit-image's loader of a sample photo, or None when this installation lacks it."""
    import skimage.data

    loader = getattr(skimage.data, name, None)
    return loader if callable(loader) else None


@lru_cache(maxsize=1)
def scenes_available() -> bool:
    """Whether multi-object scenes can be generated (the Tux Paint cut-outs are installed)."""
    from lewel.data.scenes import SceneGenerator

    try:
        SceneGenerator(size=SCENE_SIZE)
    except (OSError, ValueError):
        return False
    return True


def gallery_items() -> list[GalleryItem]:
    """Every image the gallery can offer on this machine, samples first."""
    items = [
        GalleryItem(f"static:{path.name}", f"sample · {path.stem.replace('_', ' ')}")
        for path in sorted(STATIC_SAMPLES.glob("*"))
        if path.suffix.lower() in SAMPLE_SUFFIXES
    ]
    items += [
        GalleryItem(f"skimage:{name}", f"scikit-image · {label}")
        for name, label in SKIMAGE_PHOTOS.items()
        if _skimage_loader(name) is not None
    ]
    if scenes_available():
        items.append(GalleryItem(SCENE_KEY, "multi-object scene (generated)"))
    return items


@lru_cache(maxsize=32)
def load_mask(key: str, scene_index: int = 0) -> bytes | None:
    """The object mask (PNG, 255 = object) of gallery item ``key`` when it has one: generated scenes know
    their objects exactly, so the page can show each map's AUROC on this very image. ``None`` otherwise."""
    if key != SCENE_KEY:
        return None
    return _png(_scene(scene_index).masks.any(axis=0).astype(np.uint8) * 255)


@lru_cache(maxsize=8)
def _scene(index: int) -> Scene:
    """Generated scene ``index`` of the gallery (2–4 objects, seed 0)."""
    from lewel.data.scenes import SceneGenerator

    return SceneGenerator(size=SCENE_SIZE, seed=0, min_objects=2, max_objects=4).scene(index)


@lru_cache(maxsize=32)
def load_item(key: str, scene_index: int = 0) -> tuple[bytes, str]:
    """The bytes and a file name of gallery item ``key`` (scene ``scene_index`` for generated scenes).
    Cached: the page asks again on every rerun, and photos and scenes are encoded as PNG here."""
    if key == SCENE_KEY:
        return _png(_scene(scene_index).image), f"scene_{scene_index:04d}.png"
    source, _, name = key.partition(":")
    if source == "static":
        path = STATIC_SAMPLES / Path(name).name
        if not path.is_file():
            raise FileNotFoundError(f"no sample {name!r} in {STATIC_SAMPLES}")
        return path.read_bytes(), path.name
    if source == "skimage":
        loader = _skimage_loader(name) if name in SKIMAGE_PHOTOS else None
        if loader is None:
            raise FileNotFoundError(f"scikit-image has no sample photo {name!r} here")
        return _png(loader()), f"{name}.png"
    raise KeyError(f"unknown gallery item {key!r}")


THUMB_SIDE = 96  #: gallery thumbnails: longer side in pixels


@lru_cache(maxsize=64)
def thumbnail_png(key: str, scene_index: int = 0) -> bytes:
    """A small PNG of gallery item ``key``, for the thumbnail grid."""
    data, _ = load_item(key, scene_index)
    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("RGB")
        small.thumbnail((THUMB_SIDE, THUMB_SIDE))
    return _png(small)
