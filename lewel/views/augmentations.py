"""Image transforms (torchvision transforms v2): evaluation preprocessing and the two-view training presets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageFilter
from torchvision import tv_tensors
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_normalized_tensor() -> v2.Compose:
    """PIL image / uint8 tensor -> float tensor ``3×H×W`` normalised with ImageNet's mean and std."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def eval_transform(size: int) -> v2.Compose:
    """The whole image resized to ``size×size`` (no crop, so a map covers the full frame), RGB, normalised."""
    return v2.Compose([v2.RGB(), v2.Resize((size, size), antialias=True), to_normalized_tensor()])


class PILGaussianBlur(v2.Transform):
    """PIL's ``ImageFilter.GaussianBlur(radius=σ)`` with σ drawn uniformly from ``sigma`` (BYOL's, MoCo v2's
    and the LEWEL authors' blur), on PIL images and on uint8 tensors ``...×C×H×W`` (each channel through PIL,
    so a tensor is blurred exactly as the same PIL image). The blur reaches as far as σ asks at every image
    size: PIL approximates the Gaussian by three box blurs matched to its variance, with no fixed kernel."""

    def __init__(self, sigma: Sequence[float] = (0.1, 2.0)) -> None:
        super().__init__()
        low, high = (float(value) for value in sigma)
        if not 0.0 < low <= high:
            raise ValueError(f"sigma must be (min, max) with 0 < min <= max, got {tuple(sigma)}")
        self.sigma = (low, high)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        return {"sigma": torch.empty(1).uniform_(self.sigma[0], self.sigma[1]).item()}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, Image.Image):
            return inpt.filter(ImageFilter.GaussianBlur(radius=params["sigma"]))
        if isinstance(inpt, tv_tensors.TVTensor) and not isinstance(inpt, tv_tensors.Image):
            return inpt
        if inpt.dtype != torch.uint8:
            raise TypeError(f"PILGaussianBlur blurs PIL images and uint8 tensors, got a {inpt.dtype} tensor")
        blurred = pil_gaussian_blur(inpt.as_subclass(torch.Tensor), params["sigma"])
        return tv_tensors.wrap(blurred, like=inpt) if isinstance(inpt, tv_tensors.Image) else blurred


def pil_gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """``ImageFilter.GaussianBlur(radius=sigma)`` applied to every channel of a uint8 tensor ``...×H×W``."""
    planes = image.detach().cpu().contiguous().numpy().reshape(-1, *image.shape[-2:])
    blur = ImageFilter.GaussianBlur(radius=sigma)
    out = np.stack([np.asarray(Image.fromarray(plane).filter(blur)) for plane in planes])
    return torch.from_numpy(out.reshape(image.shape)).to(image.device)


def _blur(p: float) -> v2.Transform:
    """``PILGaussianBlur`` with σ in [0.1, 2.0], applied with probability ``p``."""
    return v2.RandomApply([PILGaussianBlur((0.1, 2.0))], p=p)


def byol_photometric(*, blur: float, solarize: float) -> v2.Compose:
    """The colour part of a BYOL view: colour jitter (0.4, 0.4, 0.2, 0.1) with p = 0.8, grayscale p = 0.2,
    blur with probability ``blur``, solarise with probability ``solarize``."""
    return v2.Compose(
        [
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            v2.RandomGrayscale(p=0.2),
            _blur(blur),
            v2.RandomSolarize(threshold=128, p=solarize),
        ]
    )


def byol_view(size: int, *, blur: float, solarize: float, scale: tuple[float, float] = (0.2, 1.0)) -> v2.Compose:
    """One of BYOL's asymmetric views: crop (``scale`` of the area), flip, then ``byol_photometric``."""
    return v2.Compose(
        [
            v2.RGB(),
            v2.RandomResizedCrop(size, scale=scale, antialias=True),
            v2.RandomHorizontalFlip(),
            byol_photometric(blur=blur, solarize=solarize),
            to_normalized_tensor(),
        ]
    )


def mocov2_photometric() -> v2.Compose:
    """The colour part of MoCo v2's view: colour jitter (0.4, 0.4, 0.4, 0.1) p = 0.8, grayscale p = 0.2,
    blur p = 0.5."""
    return v2.Compose(
        [v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8), v2.RandomGrayscale(p=0.2), _blur(0.5)]
    )


def mocov2_view(size: int, *, scale: tuple[float, float] = (0.2, 1.0)) -> v2.Compose:
    """MoCo v2's view: crop, ``mocov2_photometric``, flip."""
    return v2.Compose(
        [
            v2.RGB(),
            v2.RandomResizedCrop(size, scale=scale, antialias=True),
            mocov2_photometric(),
            v2.RandomHorizontalFlip(),
            to_normalized_tensor(),
        ]
    )


class TwoViews:
    """Apply ``first`` and ``second`` to one image: the pair of augmented views of a training sample."""

    def __init__(self, first: v2.Transform, second: v2.Transform) -> None:
        self.first, self.second = first, second

    def __call__(self, image):
        return self.first(image), self.second(image)


TWO_VIEW_PRESETS = ("byol", "mocov2")


def two_view_transform(preset: str, size: int) -> TwoViews:
    """``byol``: view 1 blur p = 1.0 no solarise, view 2 blur p = 0.1 solarise p = 0.2; ``mocov2``: twice
    the same MoCo v2 distribution."""
    if preset == "byol":
        return TwoViews(byol_view(size, blur=1.0, solarize=0.0), byol_view(size, blur=0.1, solarize=0.2))
    if preset == "mocov2":
        return TwoViews(mocov2_view(size), mocov2_view(size))
    raise ValueError(f"unknown augmentation preset {preset!r}; choose one of {list(TWO_VIEW_PRESETS)}")


def linear_train_transform(size: int) -> v2.Compose:
    """Linear-probe training: random resized crop (default scale) and flip."""
    return v2.Compose([v2.RGB(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(), to_normalized_tensor()])


def center_crop_transform(size: int) -> v2.Compose:
    """Evaluation as on ImageNet: resize the short side to size/0.875, centre crop ``size``."""
    return v2.Compose(
        [v2.RGB(), v2.Resize(int(round(size / 0.875)), antialias=True), v2.CenterCrop(size), to_normalized_tensor()]
    )
