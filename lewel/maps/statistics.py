"""Per-map statistics of alignment maps and the paper's three patterns (object, multi-object, global).

Maps are ``...×h×w`` (e.g. ``B×d×h×w`` from ``LewelModel.extract(images).maps``), non-negative, one
distribution over the feature grid each; they are renormalised to sum 1 (guarding float16 rounding).
docs/maps.md states every definition and threshold used here. ``lewel.maps`` re-exports these names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .pattern_names import PATTERNS

BLOB_THRESHOLD = 0.5  #: a blob is a connected set of cells above this share of the map's range: >= min + 0.5·(max − min)
MIN_BLOB_MASS = 0.05  #: blobs holding less of the map's mass than this are not counted
GLOBAL_AREA = 0.5  #: a map whose active area (share of cells in the upper half of its range) reaches this is "global"
TOP_FRACTION = 0.1  #: top-mass statistic: the mass of the ceil(10 %) largest pixels

ArrayLike = torch.Tensor | np.ndarray


def _as_maps(maps: ArrayLike) -> torch.Tensor:
    """``...×h×w`` maps as float64, each renormalised to sum 1."""
    tensor = torch.as_tensor(maps).to(torch.float64)
    if tensor.dim() < 2 or tensor.shape[-1] * tensor.shape[-2] == 0:
        raise ValueError(f"maps must be ...×h×w with h, w >= 1, got {tuple(tensor.shape)}")
    if (tensor < 0).any():
        raise ValueError("maps must be non-negative")
    total = tensor.sum(dim=(-2, -1), keepdim=True)
    if (total <= 0).any():
        raise ValueError("every map needs a positive sum")
    return tensor / total


def _blobs(maps: torch.Tensor, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per map (``N×h×w`` float64, sums 1): number of blobs, mass of the heaviest, mass of all kept blobs.

    One ``scipy.ndimage.label`` call labels all N maps at once: the structuring element connects the 8
    neighbours within a map and nothing across maps.
    """
    values = maps.numpy()
    above = values >= level.numpy()[:, None, None]
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True
    labels, count = ndimage.label(above, structure=structure)
    mass = np.bincount(labels.ravel(), weights=values.ravel(), minlength=count + 1)[1:]
    owner = np.zeros(count + 1, dtype=np.int64)
    owner[labels.ravel()] = np.repeat(np.arange(len(values)), values[0].size)
    owner = owner[1:]
    kept = mass >= MIN_BLOB_MASS
    number = np.bincount(owner[kept], minlength=len(values))
    total = np.bincount(owner[kept], weights=mass[kept], minlength=len(values))
    heaviest = np.zeros(len(values))
    np.maximum.at(heaviest, owner[kept], mass[kept])
    return torch.from_numpy(number), torch.from_numpy(heaviest), torch.from_numpy(total)


@dataclass(frozen=True)
class MapStatistics:
    """Statistics of maps ``...×h×w``; every field has the leading shape ``...`` (one value per map).

    - ``entropy``: ``-Σ p log p`` in nats;
    - ``normalized_entropy``: entropy / log(h·w), 1.0 for a uniform map (1.0 when h·w = 1);
    - ``effective_area``: exp(entropy) / (h·w), the share of the grid the map effectively spreads over;
    - ``peak``: the largest value; ``peak_ratio``: peak × h·w (1.0 = uniform);
    - ``top_mass``: mass of the ceil(``TOP_FRACTION`` · h·w) largest pixels;
    - ``active_area``: share of the cells in the upper half of the map's range (>= min + ``BLOB_THRESHOLD`` ×
      (max − min)), i.e. what a colour scale stretched from the map's minimum to its maximum shows as high,
      as the maps are drawn. LEWEL's maps are softmaxes of unit-norm projections at temperature 1.0: their
      logits are coordinates of unit vectors (about ±1/√d), so the maps are nearly flat in absolute terms
      and absolute spread measures call every such map global;
    - ``blobs``: number of 8-connected blobs of cells in the upper half of the range holding at least
      ``MIN_BLOB_MASS`` of the mass each (int64);
    - ``main_blob_mass``: mass of the heaviest such blob; ``other_blob_mass``: mass of the other ones;
    - ``pattern``: index into ``PATTERNS`` (int64), see ``classify``.
    """

    entropy: torch.Tensor
    normalized_entropy: torch.Tensor
    effective_area: torch.Tensor
    active_area: torch.Tensor
    peak: torch.Tensor
    peak_ratio: torch.Tensor
    top_mass: torch.Tensor
    blobs: torch.Tensor
    main_blob_mass: torch.Tensor
    other_blob_mass: torch.Tensor
    pattern: torch.Tensor

    def typicality(self, pattern: str) -> torch.Tensor:
        """How typical each map is of ``pattern`` (higher = more typical; orders maps in the app's tabs).

        - object: ``main_blob_mass × (1 − active_area)``, a single concentrated blob;
        - multi-object: ``other_blob_mass``, the mass in blobs besides the heaviest one;
        - global: ``effective_area``, how evenly the map spreads over the image.
        """
        if pattern == "object":
            return self.main_blob_mass * (1 - self.active_area)
        if pattern == "multi-object":
            return self.other_blob_mass
        if pattern == "global":
            return self.effective_area
        raise ValueError(f"unknown pattern {pattern!r}; choose one of {list(PATTERNS)}")

    def pattern_names(self) -> np.ndarray:
        """The pattern of each map as strings, shape ``...``."""
        return np.asarray(PATTERNS, dtype=object)[self.pattern.numpy().reshape(-1)].reshape(tuple(self.pattern.shape))


def classify(active_area: torch.Tensor, blobs: torch.Tensor) -> torch.Tensor:
    """The pattern rule (indices into ``PATTERNS``), applied in this order:

    1. **global** when the active area (share of cells >= min + ``BLOB_THRESHOLD`` (0.5) × (max − min)) is
       >= ``GLOBAL_AREA`` (0.5): the map is high over at least half of the image;
    2. **multi-object** when it has >= 2 blobs (cells in the upper half of the range, 8-connected,
       each holding >= ``MIN_BLOB_MASS`` (5 %) of the mass);
    3. **object** otherwise: one concentrated blob.
    """
    pattern = torch.full(active_area.shape, PATTERNS.index("object"), dtype=torch.int64)
    pattern[blobs >= 2] = PATTERNS.index("multi-object")
    pattern[active_area >= GLOBAL_AREA] = PATTERNS.index("global")
    return pattern


def map_statistics(maps: ArrayLike) -> MapStatistics:
    """Entropy, peak, top-10 % mass, blobs and pattern of each map of ``...×h×w`` (e.g. ``B×d×h×w``)."""
    p = _as_maps(maps)
    leading, (h, w) = p.shape[:-2], p.shape[-2:]
    flat = p.reshape(-1, h * w)
    entropy = -torch.xlogy(flat, flat).sum(dim=1)
    normalized = entropy / math.log(h * w) if h * w > 1 else torch.ones_like(entropy)
    effective_area = torch.exp(entropy) / (h * w)
    peak, low = flat.max(dim=1).values, flat.min(dim=1).values
    level = low + BLOB_THRESHOLD * (peak - low)
    active_area = (flat >= level[:, None]).double().mean(dim=1)
    top = flat.topk(math.ceil(TOP_FRACTION * h * w), dim=1).values.sum(dim=1)
    blobs, main, kept = _blobs(p.reshape(-1, h, w), level)
    values = {
        "entropy": entropy,
        "normalized_entropy": normalized,
        "effective_area": effective_area,
        "active_area": active_area,
        "peak": peak,
        "peak_ratio": peak * h * w,
        "top_mass": top,
        "blobs": blobs,
        "main_blob_mass": main,
        "other_blob_mass": kept - main,
        "pattern": classify(active_area, blobs),
    }
    return MapStatistics(**{name: value.reshape(leading) for name, value in values.items()})


def _pattern_shares(pattern: torch.Tensor) -> dict[str, float]:
    counts = torch.bincount(pattern.flatten(), minlength=len(PATTERNS)).to(torch.float64)
    return {name: float(c) for name, c in zip(PATTERNS, counts / max(pattern.numel(), 1), strict=True)}
