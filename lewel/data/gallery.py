"""The image gallery: images offered without an upload, with object masks where they are known.

Three sources: the samples in the repository's ``static/samples``, scikit-image's sample photos (installed with
the package, no download) and generated multi-object scenes (Debian's Tux Paint cut-outs, through
``lewel.data.scenes.SceneGenerator``), whose object masks are exact. The service serves these at
``/v1/gallery`` so that the front end needs neither torch nor this library. Everything is encoded once and
cached: the same few images are asked for again and again.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .scenes import Scene, SceneGenerator

STATIC_SAMPLES = Path(__file__).resolve().parents[2] / "static" / "samples"  #: from lewel/data/: the repository root
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
MAX_SCENE = 2**31 - 1  #: the largest scene number offered (the front end's largest seed)
THUMB_SIDE = 96  #: gallery thumbnails: longer side in pixels


@dataclass(frozen=True)
class GalleryItem:
    """One choice of the gallery: ``key`` identifies it, ``label`` is what the person reads and ``short`` a few
    words for the thumbnail grid."""

    key: str
    label: str
    short: str

    @property
    def scenes(self) -> bool:
        """Whether the item is a family of generated scenes, chosen by a scene number."""
        return self.key == SCENE_KEY

    @property
    def has_mask(self) -> bool:
        """Whether the item's object mask is known (generated scenes only)."""
        return self.key == SCENE_KEY


def short_name(key: str) -> str:
    """A few words for the thumbnail grid: ``three objects``, ``coffee``, ``scene``."""
    source, _, name = key.partition(":")
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
def _generator() -> SceneGenerator:
    """The gallery's scene generator (2–4 objects, seed 0); raises when the cut-outs are missing."""
    return SceneGenerator(size=SCENE_SIZE, seed=0, min_objects=2, max_objects=4)


@lru_cache(maxsize=1)
def scenes_available() -> bool:
    """Whether multi-object scenes can be generated (the Tux Paint cut-outs are installed)."""
    try:
        _generator()
    except (OSError, ValueError):
        return False
    return True


def gallery_items(samples_dir: Path = STATIC_SAMPLES) -> list[GalleryItem]:
    """Every image the gallery can offer on this machine, samples first, generated scenes last."""
    keys = [
        (f"static:{path.name}", f"sample · {path.stem.replace('_', ' ')}")
        for path in sorted(Path(samples_dir).glob("*"))
        if path.suffix.lower() in SAMPLE_SUFFIXES and path.is_file()
    ]
    keys += [
        (f"skimage:{name}", f"scikit-image · {label}")
        for name, label in SKIMAGE_PHOTOS.items()
        if _skimage_loader(name) is not None
    ]
    if scenes_available():
        keys.append((SCENE_KEY, "multi-object scene (generated)"))
    return [GalleryItem(key, label, short_name(key)) for key, label in keys]


def _check_scene(scene_index: int) -> None:
    if not 0 <= scene_index <= MAX_SCENE:
        raise ValueError(f"scene number must be between 0 and {MAX_SCENE}, got {scene_index}")


@lru_cache(maxsize=8)
def _scene(index: int) -> Scene:
    """Generated scene ``index`` of the gallery."""
    _check_scene(index)
    return _generator().scene(index)


@lru_cache(maxsize=32)
def load_item(key: str, scene_index: int = 0, samples_dir: Path = STATIC_SAMPLES) -> tuple[bytes, str]:
    """The bytes and a file name of gallery item ``key`` (scene ``scene_index`` for generated scenes; other
    items ignore it). Static samples are their files' bytes; photos and scenes are encoded as PNG here.
    ``KeyError`` for an unknown source, ``FileNotFoundError`` for an item this machine lacks."""
    if key == SCENE_KEY:
        return _png(_scene(scene_index).image), f"scene_{scene_index:04d}.png"
    source, _, name = key.partition(":")
    if source == "static":
        path = Path(samples_dir) / Path(name).name
        if path.suffix.lower() not in SAMPLE_SUFFIXES or not path.is_file():
            raise FileNotFoundError(f"no sample {name!r} in the gallery's samples")
        return path.read_bytes(), path.name
    if source == "skimage":
        loader = _skimage_loader(name) if name in SKIMAGE_PHOTOS else None
        if loader is None:
            raise FileNotFoundError(f"scikit-image has no sample photo {name!r} here")
        return _png(loader()), f"{name}.png"
    raise KeyError(f"unknown gallery item {key!r}")


@lru_cache(maxsize=32)
def load_mask(key: str, scene_index: int = 0) -> bytes | None:
    """The object mask (PNG, 255 = object, 0 elsewhere) of gallery item ``key`` when it has one: generated
    scenes know their objects exactly, so each map's AUROC can be measured on this very image. ``None``
    otherwise."""
    if key != SCENE_KEY:
        return None
    return _png(_scene(scene_index).masks.any(axis=0).astype(np.uint8) * 255)


@lru_cache(maxsize=32)
def load_instances(key: str, scene_index: int = 0) -> bytes | None:
    """The instance mask (grey PNG: 0 background, k + 1 on the visible pixels of the scene's object k, in
    paste order) of gallery item ``key`` when it has one, else ``None``. Objects pasted later hide earlier
    ones, so each pixel carries the value of the object seen there."""
    if key != SCENE_KEY:
        return None
    return _png(_scene(scene_index).instance_map())


@lru_cache(maxsize=64)
def thumbnail_png(key: str, scene_index: int = 0, samples_dir: Path = STATIC_SAMPLES) -> bytes:
    """A small RGB PNG of gallery item ``key`` (longer side at most ``THUMB_SIDE``), for the thumbnail grid."""
    data, _ = load_item(key, scene_index, samples_dir)
    with Image.open(io.BytesIO(data)) as image:
        small = image.convert("RGB")
        small.thumbnail((THUMB_SIDE, THUMB_SIDE))
    return _png(small)


def warm(samples_dir: Path = STATIC_SAMPLES) -> int:
    """List the gallery and draw every thumbnail once, so that they are cached before a page asks: the first
    listing takes seconds (scikit-image's photos, the scene generator's cut-outs). Returns the item count."""
    items = gallery_items(samples_dir)
    for item in items:
        thumbnail_png(item.key, 0, samples_dir)
    return len(items)
