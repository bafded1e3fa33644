"""Augmented views that remember where they came from: each view carries its crop box and flip.

The presets are the training augmentations (``lewel.views.augmentations``, torchvision transforms v2), split into
their geometric part, applied here with explicit parameters so that they can be reported, and their colour
part, applied as is:

- ``byol1``: BYOL's view 1, crop (20–100 % of the area, aspect 3/4–4/3) + flip + colour jitter, grayscale,
  blur (p = 1), no solarisation;
- ``byol2``: BYOL's view 2, as view 1 with blur p = 0.1 and solarisation p = 0.2;
- ``mocov2``: MoCo v2's view, crop + flip + colour jitter (0.4, 0.4, 0.4, 0.1), grayscale, blur p = 0.5;
- ``cropflip``: the crop and the flip only (no colour change).

View 0 is the whole image resized to ``size×size`` (box = the full image, no flip), as ``eval_transform``
and ``lewel eval-maps`` see it. A view's ``box`` is ``(x0, y0, x1, y1)`` in pixel-edge coordinates of the
source image (the crop covers columns ``[x0, x1)`` and rows ``[y0, y1)``); ``flip`` means the crop was
mirrored left-right after cropping. Augmented view ``i`` of a request is a pure function of
``(image, preset, size, seed, i)``: adding views does not change the earlier ones.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from .augmentations import IMAGENET_MEAN, IMAGENET_STD, byol_photometric, mocov2_photometric

PRESETS: tuple[str, ...] = ("byol1", "byol2", "mocov2", "cropflip")
CROP_SCALE = (0.2, 1.0)  #: share of the image area a crop keeps, as in training (``byol_view``, ``mocov2_view``)
CROP_RATIO = (3 / 4, 4 / 3)  #: aspect ratios of the crops
FLIP_PROBABILITY = 0.5

#: torchvision's random transforms draw from torch's global generator; views are made under this lock with
#: the generator forked and seeded, so concurrent requests cannot interleave their draws.
_RNG_LOCK = threading.Lock()

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class View:
    """One view of a source image.

    ``image``: ``3×S×S`` uint8, the view as the model sees it before normalisation; ``box``: ``(x0, y0, x1,
    y1)`` crop in source pixels; ``flip``: mirrored after cropping; ``source_size``: ``(W, H)`` of the
    source; ``preset`` is ``None`` for view 0 (the whole image); ``seed`` is the seed this view was drawn with.
    """

    index: int
    image: torch.Tensor
    box: Box
    flip: bool
    source_size: tuple[int, int]
    preset: str | None = None
    seed: int | None = None

    @property
    def size(self) -> int:
        return int(self.image.shape[-1])

    def normalized(self) -> torch.Tensor:
        """``3×S×S`` float32 normalised with ImageNet's mean and std, the input ``LewelModel.extract`` expects."""
        return F.normalize(self.image.float() / 255.0, list(IMAGENET_MEAN), list(IMAGENET_STD))

    def to_pil(self) -> Image.Image:
        return F.to_pil_image(self.image)


def _as_image(image: Image.Image | torch.Tensor) -> tv_tensors.Image:
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            image = image.convert("RGB")
        return F.to_image(image)
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3 or image.dtype != torch.uint8:
        raise ValueError("image must be an RGB PIL image or a uint8 tensor 3×H×W")
    return tv_tensors.Image(image)


def _photometric(preset: str) -> v2.Transform | None:
    if preset == "byol1":
        return byol_photometric(blur=1.0, solarize=0.0)
    if preset == "byol2":
        return byol_photometric(blur=0.1, solarize=0.2)
    if preset == "mocov2":
        return mocov2_photometric()
    if preset == "cropflip":
        return None
    raise ValueError(f"unknown view preset {preset!r}; choose one of {list(PRESETS)}")


def view_seed(seed: int, index: int) -> int:
    """The seed of augmented view ``index`` of a request seeded with ``seed`` (independent streams per view;
    below 2**53 so that JSON clients keep it exact)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got {seed}, {index}")
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0] >> 11)


def original_view(image: Image.Image | torch.Tensor, size: int) -> View:
    """View 0: the whole image resized to ``size×size`` (antialiased), no crop, no flip."""
    source = _as_image(image)
    height, width = source.shape[-2:]
    resized = F.resize(source, [size, size], antialias=True)
    return View(0, resized.as_subclass(torch.Tensor), (0, 0, int(width), int(height)), False, (int(width), int(height)))


def augmented_view(image: Image.Image | torch.Tensor, preset: str, size: int, seed: int, index: int = 1) -> View:
    """Augmented view ``index`` (>= 1): a random resized crop and flip (reported), then the preset's colour
    transforms, drawn from ``view_seed(seed, index)``."""
    if index < 1:
        raise ValueError("augmented views are numbered from 1 (view 0 is the whole image)")
    photometric = _photometric(preset)
    source = _as_image(image)
    height, width = source.shape[-2:]
    crop = v2.RandomResizedCrop(size, scale=CROP_SCALE, ratio=CROP_RATIO, antialias=True)
    drawn = view_seed(seed, index)
    with _RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(drawn)
        params = crop.make_params([source])
        flip = bool(torch.rand(1).item() < FLIP_PROBABILITY)
        view = F.resized_crop(source, **params, size=[size, size], antialias=True)
        if flip:
            view = F.horizontal_flip(view)
        if photometric is not None:
            view = photometric(view)
    top, left = int(params["top"]), int(params["left"])
    box = (left, top, left + int(params["width"]), top + int(params["height"]))
    return View(index, view.as_subclass(torch.Tensor).contiguous(), box, flip, (int(width), int(height)), preset, drawn)


def make_views(image: Image.Image | torch.Tensor, *, count: int, preset: str, size: int, seed: int) -> list[View]:
    """View 0 (the whole image) followed by ``count`` augmented views of ``preset``, all ``size×size``."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    _photometric(preset)
    return [original_view(image, size)] + [augmented_view(image, preset, size, seed, i) for i in range(1, count + 1)]


def views_batch(views: Sequence[View]) -> torch.Tensor:
    """The views as one normalised batch ``V×3×S×S`` for ``LewelModel.extract``."""
    return torch.stack([view.normalized() for view in views])
