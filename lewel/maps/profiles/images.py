"""The images a profile is measured on: its two splits of a masked source (calibration and held-out), decoded
and resized once so that a model and every control score the same pixels.

Roles are chosen on the calibration split only and every reported score is measured on the held-out split
(docs/maps.md, "Map profiles"): ``profile_data`` makes the two splits, ``PreparedImages`` holds one of them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2

from ...data.folders import DataError
from ...data.sources import Source, UnreadableImage, masked_splits
from ...views.augmentations import IMAGENET_MEAN, IMAGENET_STD
from ..mask_scores import object_coverage
from ..patterns import InstanceCells, instance_cells, instance_labels

DEFAULT_SIZE = 224  #: input side (7×7 maps on a ResNet); images are resized whole, no crop
DEFAULT_IMAGES = 256  #: images per split for generated scenes
CALIBRATION_SEED = 7_000_001  #: generated scenes: calibration split (training uses seeds 0 and 1,000,003)
HELDOUT_SEED = 7_000_002  #: generated scenes: held-out split


def profile_data(data: str, *, images: int | None = None, size: int = DEFAULT_SIZE) -> tuple[Source, Source]:
    """A profile's calibration and held-out splits of ``data`` (``lewel.data.sources.masked_splits``):
    generated scenes with seeds ``CALIBRATION_SEED`` and ``HELDOUT_SEED`` (``images`` or ``DEFAULT_IMAGES``
    each), any masked source split alternately (``images`` caps each split)."""
    return masked_splits(
        data, images=images, size=size, calibration_seed=CALIBRATION_SEED, heldout_seed=HELDOUT_SEED, scenes=DEFAULT_IMAGES
    )


class PreparedImages:
    """The masked images of a source decoded and resized once, so that a model and every control score the
    same pixels: ``pixels`` (N×3×S×S uint8, each image resized whole to S×S, no crop), ``masks`` (N object
    masks H×W at the image's own size, ``Sample.object_mask``: bool, or int8 with ignored pixels), ``ids``,
    ``describe()`` (where they come from, with the images skipped as unreadable). Per-cell object coverage is
    computed once per map grid (``coverage``)."""

    def __init__(self, images: Source, size: int) -> None:
        if not images.has_masks:
            raise DataError(f"{images.describe()} has no object masks to score maps against")
        resize = v2.Compose([v2.RGB(), v2.Resize((size, size), antialias=True), v2.ToImage()])
        pixels, masks, self.ids, self.skipped = [], [], [], []
        self.labels: list[np.ndarray] = []  # H×W int16 instance labels (lewel.maps.patterns.instance_labels)
        self.categories: list[tuple[str, ...]] = []
        self.has_instances = False  # some mask told instances apart (binary masks give only their union)
        for index in range(len(images)):
            try:
                sample = images.load(index)
            except UnreadableImage as error:
                self.skipped.append({"id": images.ids[index], "reason": str(error)})
                continue
            pixels.append(resize(sample.image).as_subclass(torch.Tensor))
            masks.append(sample.object_mask())
            self.labels.append(instance_labels(sample.instances))
            self.categories.append(tuple(sample.categories))
            self.has_instances |= not sample.binary
            self.ids.append(sample.id)
        self.pixels = torch.stack(pixels) if pixels else torch.zeros(0, 3, size, size, dtype=torch.uint8)
        self.masks, self.size = masks, size
        self.description = {**images.describe(), "images": len(masks)}
        if self.skipped:
            self.description["unreadable"] = self.skipped
        self._coverage: dict[tuple[int, int], torch.Tensor] = {}
        self._cells: dict[tuple[int, int], list[InstanceCells]] = {}

    def __len__(self) -> int:
        return len(self.masks)

    def describe(self) -> dict[str, Any]:
        return self.description

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Images ``start .. stop-1`` as the networks take them: float ``B×3×S×S``, normalised."""
        return _NORMALISE(self.pixels[start:stop])

    def coverage(self, grid: tuple[int, int]) -> torch.Tensor:
        """``N×h×w``: each cell's covered share of object, for maps of ``grid``."""
        grid = tuple(int(g) for g in grid)
        if grid not in self._coverage:
            self._coverage[grid] = torch.stack([object_coverage(torch.as_tensor(m), grid) for m in self.masks])
        return self._coverage[grid]

    def category_names(self) -> list[str]:
        """The named categories of these images' instances, sorted."""
        return sorted({c for names in self.categories for c in names if c})

    def cells(self, grid: tuple[int, int]) -> list[InstanceCells]:
        """Each image's cells of ``grid`` by instance (``lewel.maps.patterns.instance_cells``)."""
        grid = tuple(int(g) for g in grid)
        if grid not in self._cells:
            coverage = self.coverage(grid)
            self._cells[grid] = [
                instance_cells(labels, names, coverage[i], grid)
                for i, (labels, names) in enumerate(zip(self.labels, self.categories))
            ]
        return self._cells[grid]


_NORMALISE = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
