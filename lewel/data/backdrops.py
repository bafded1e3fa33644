"""Photographic backdrops: scikit-image's bundled photographs and textures, split into pools, cropped and jittered.

Why: on flat generated backgrounds any network with edges finds the pasted objects (random networks reach object
AUROC 0.82), so ``textured`` scenes put the objects on crops of real photographs instead. The photographs come
with scikit-image (no download); which of them load offline depends on the installed version, and the pools
use those that do.

How the pool is split (``POOLS``), so that no backdrop is both learned from and scored on:

- ``train``: whole photographs that no evaluation split ever shows (``TRAIN_PHOTOS``);
- ``calibration`` and ``heldout``: the other photographs (``EVALUATION_PHOTOS``), each cut in two along its
  longer side: the first half calibrates, the second is held out. The two evaluation splits come from the same
  photographs (so an object map chosen on one is scored on like images) but never share a pixel.

``backdrop(rng, size, pool)`` crops a random square of a random photograph of the pool (side 35–100 % of the
region's shorter side), flips and rotates it, tints a grey photograph with two random colours and jitters
brightness, contrast and saturation. ``distractor(rng, size, pool)`` is a blob-shaped patch of another crop:
photographic clutter that belongs to the background.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

TRAIN_PHOTOS = (
    "astronaut", "hubble_deep_field", "immunohistochemistry", "retina",  # colour
    "grass", "moon", "cell", "text", "clock",  # grey
)  # fmt: skip
EVALUATION_PHOTOS = (
    "coffee", "chelsea", "rocket",  # colour
    "brick", "gravel", "camera", "coins", "page",  # grey
)  # fmt: skip
POOLS = ("train", "calibration", "heldout")
CROP_SCALE = (0.35, 1.0)  #: a crop's side, as a share of its region's shorter side
MIN_CROP = 16  #: pixels: a crop is never smaller than this
BRIGHTNESS, CONTRAST, SATURATION = 0.3, 0.3, 0.4  #: jitter: factors drawn in 1 ± these
RESAMPLE = Image.Resampling.BILINEAR


@functools.lru_cache(maxsize=len(TRAIN_PHOTOS) + len(EVALUATION_PHOTOS) + 8)
def photo(name: str) -> np.ndarray | None:
    """A scikit-image sample (bundled with the package, no download) as ``H×W×C`` uint8 (C = 1 or 3), or
    ``None`` where this version lacks it or would download it."""
    from skimage import data

    try:
        image = np.asarray(getattr(data, name)())
    except Exception:  # noqa: BLE001 - samples that need a download or are absent in this version
        return None
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or min(image.shape[:2]) < 2 * MIN_CROP:
        return None
    return image[..., None] if image.ndim == 2 else image[..., :3]


@dataclass(frozen=True)
class Region:
    """Where a pool's crops of one photograph come from: rows ``top:bottom``, columns ``left:right``."""

    name: str
    top: int
    left: int
    bottom: int
    right: int

    @property
    def side(self) -> int:
        return min(self.bottom - self.top, self.right - self.left)


def _half(name: str, second: bool) -> Region:
    height, width = photo(name).shape[:2]
    if width >= height:
        cut = width // 2
        return Region(name, 0, cut if second else 0, height, width if second else cut)
    cut = height // 2
    return Region(name, cut if second else 0, 0, height if second else cut, width)


@functools.lru_cache(maxsize=len(POOLS))
def pool_regions(pool: str) -> tuple[Region, ...]:
    """The regions a pool crops from (only the photographs that load offline): whole training photographs,
    or the first (calibration) or second (held-out) half of each evaluation photograph."""
    if pool not in POOLS:
        raise ValueError(f"unknown backdrop pool {pool!r}: choose one of {', '.join(POOLS)}")
    if pool == "train":
        regions = tuple(Region(n, 0, 0, *photo(n).shape[:2]) for n in TRAIN_PHOTOS if photo(n) is not None)
    else:
        regions = tuple(_half(n, pool == "heldout") for n in EVALUATION_PHOTOS if photo(n) is not None)
    if not regions:
        raise RuntimeError(f"none of the {pool} pool's photographs loads from the installed scikit-image")
    return regions


def describe_pool(pool: str) -> dict[str, object]:
    """What a pool is made of, for a profile's data description."""
    halves = {"train": "whole photographs", "calibration": "first halves", "heldout": "second halves"}[pool]
    return {"pool": pool, "photos": [r.name for r in pool_regions(pool)], "regions": halves}


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def jitter(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Brightness, contrast and saturation drawn in ``1 ± BRIGHTNESS`` etc. (``H×W×3`` float in, uint8 out).

    Written here rather than with torchvision's ColorJitter: the factors must come from the scene's own numpy
    generator, so that a scene depends only on ``(seed, index)``."""
    brightness, contrast, saturation = 1 + rng.uniform(-1, 1, 3) * (BRIGHTNESS, CONTRAST, SATURATION)
    image = image * brightness
    grey = image @ np.array([0.299, 0.587, 0.114])
    image = grey.mean() + (image - grey.mean()) * contrast
    grey = image @ np.array([0.299, 0.587, 0.114])
    return _to_uint8(grey[..., None] + (image - grey[..., None]) * saturation)


def crop_box(rng: np.random.Generator, region: Region) -> tuple[int, int, int]:
    """A random square inside ``region``: its top row and left column in the photograph, and its side."""
    side = max(MIN_CROP, int(rng.uniform(*CROP_SCALE) * region.side))
    top = region.top + int(rng.integers(0, region.bottom - region.top - side + 1))
    left = region.left + int(rng.integers(0, region.right - region.left - side + 1))
    return top, left, side


def backdrop(rng: np.random.Generator, size: int, pool: str, *, regions: Sequence[Region] | None = None) -> tuple[np.ndarray, str]:
    """A ``size×size×3`` uint8 crop (``crop_box``) of a random photograph of ``pool`` (see the module docstring),
    rotated, flipped, tinted when grey and jittered, and the photograph's name."""
    regions = pool_regions(pool) if regions is None else regions
    region = regions[int(rng.integers(len(regions)))]
    top, left, side = crop_box(rng, region)
    crop = np.rot90(photo(region.name)[top : top + side, left : left + side], k=int(rng.integers(4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    grey = crop.shape[2] == 1
    image = Image.fromarray(np.ascontiguousarray(crop[..., 0] if grey else crop))
    resized = np.asarray(image.resize((size, size), RESAMPLE), dtype=np.float64)
    if grey:
        dark, light = rng.uniform(0, 255, (2, 3))
        resized = dark + (light - dark) * resized[..., None] / 255.0
    return jitter(rng, resized), region.name


def blob(rng: np.random.Generator, size: int, scale: tuple[float, float] = (0.15, 0.45)) -> np.ndarray:
    """A ``size×size`` bool blob: thresholded smooth noise inside a random ellipse of ``scale`` of the side."""
    radius = rng.uniform(*scale) * size / 2
    centre = rng.uniform(radius, size - radius, 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    angle, aspect = rng.uniform(0, math.pi), rng.uniform(0.5, 1.0)
    u = (xx - centre[0]) * math.cos(angle) + (yy - centre[1]) * math.sin(angle)
    v = -(xx - centre[0]) * math.sin(angle) + (yy - centre[1]) * math.cos(angle)
    ellipse = 1 - np.hypot(u / radius, v / (radius * aspect))
    wobble = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=max(1.0, radius / 3))
    wobble /= max(float(np.abs(wobble).max()), 1e-9)
    return ellipse + 0.4 * wobble > 0


def distractor(rng: np.random.Generator, canvas: np.ndarray, pool: str, *, flat: float = 0.0) -> None:
    """Paste, in place, a blob-shaped patch onto ``canvas`` (``S×S×3`` uint8): clutter that is background, not
    an object. With probability ``flat`` the blob is cartoon-like, one saturated colour with a dark outline (so
    flat colour and outlines alone do not mean "object"); otherwise it is another crop of ``pool``."""
    size = canvas.shape[0]
    if flat and rng.random() < flat:
        shape = blob(rng, size, (0.1, 0.35))
        colour = _to_uint8(rng.uniform(0, 255, 3) * np.array([1.0, 1.0, 1.0]))
        outline = shape & ~ndimage.binary_erosion(shape, iterations=max(1, size // 96))
        canvas[shape] = colour
        canvas[outline] = _to_uint8(rng.uniform(0, 50, 3))
        return
    patch, _ = backdrop(rng, size, pool)
    shape = blob(rng, size)
    canvas[shape] = patch[shape]
