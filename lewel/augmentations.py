"""Image transforms (torchvision transforms v2): evaluation preprocessing and the two-view training presets."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_normalized_tensor() -> v2.Compose:
    """PIL image / uint8 tensor -> float tensor ``3×H×W`` normalised with ImageNet's mean and std."""
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def eval_transform(size: int) -> v2.Compose:
    """The whole image resized to ``size×size`` (no crop, so a map covers the full frame), RGB, normalised."""
    return v2.Compose([v2.RGB(), v2.Resize((size, size), antialias=True), to_normalized_tensor()])
