"""Scores of every (image, map) of a profile: AUROC against the object mask, pointing, pattern and peak ratio
per image and map index (``ImageScores``), how a model's maps on ``PreparedImages`` get them, and their means
per map index or over a chosen set of indices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from ...data.sources import Source
from ...inference import LewelModel, MapsUnavailableError
from ..mask_scores import (
    BACKGROUND_CELL,
    OBJECT_CELL,
    as_object_mask,
    map_auroc,
    object_coverage,
    pointing_chance,
    pointing_hits,
)
from ..patterns import PatternScores, score_patterns
from ..statistics import PATTERNS, map_statistics
from .images import DEFAULT_SIZE, PreparedImages


@dataclass(frozen=True)
class ImageScores:
    """Scores of N images' d maps: ``auroc`` (N×d, NaN where ``scored`` is False: the image lacks object or
    background cells), ``pointing`` (N×d bool), ``pattern`` (N×d, indices into ``PATTERNS``), ``peak_ratio``
    (N×d, peak ÷ uniform value), ``pointing_chance`` (N) and ``scored`` (N bool)."""

    auroc: torch.Tensor
    pointing: torch.Tensor
    pattern: torch.Tensor
    peak_ratio: torch.Tensor
    pointing_chance: torch.Tensor
    scored: torch.Tensor

    @classmethod
    def cat(cls, parts: Sequence[ImageScores]) -> ImageScores:
        return cls(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def valid(self) -> ImageScores:
        """Only the scored images."""
        return ImageScores(**{f.name: getattr(self, f.name)[self.scored] for f in fields(self)})


def score_masked_maps(
    maps: torch.Tensor, masks: Sequence[np.ndarray | torch.Tensor] | None = None, *, coverage: torch.Tensor | None = None
) -> ImageScores:
    """Scores of maps ``B×d×h×w`` against B object masks (each ``H×W``, any size: the map grid spans the
    whole image, cells get their exact covered share), or against their precomputed ``coverage`` (B×h×w)."""
    if coverage is None:
        if masks is None:
            raise ValueError("score_masked_maps needs masks or coverage")
        coverage = torch.stack([object_coverage(as_object_mask(m), maps.shape[-2:]) for m in masks])
    auroc = map_auroc(maps, coverage)
    stats = map_statistics(maps)
    return ImageScores(
        auroc=auroc,
        pointing=pointing_hits(maps, coverage),
        pattern=stats.pattern,
        peak_ratio=stats.peak_ratio,
        pointing_chance=pointing_chance(coverage),
        scored=~auroc[:, 0].isnan(),
    )


def score_prepared(
    model: LewelModel,
    images: PreparedImages,
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> ImageScores:
    """Extract the maps of ``images`` with ``model`` (channels-last, in batches) and score them against their
    masks. ``progress(n)`` is called with the number of images done after each batch."""
    return measure_prepared(model, images, batch_size=batch_size, progress=progress)[0]


def measure_prepared(
    model: LewelModel,
    images: PreparedImages,
    *,
    categories: Sequence[str] | None = None,
    patterns: bool = False,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> tuple[ImageScores, PatternScores | None]:
    """``score_prepared``, and with ``patterns`` (and images whose masks tell instances apart) the pattern and
    dissection scores of the same maps (``lewel.maps.patterns.score_patterns``) for ``categories`` (default: the
    images' own)."""
    if not model.has_maps:
        raise MapsUnavailableError(f"{model.source or 'this model'} ({model.method}) has no alignment maps to profile")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts, kept = [], []
    for start in range(0, len(images), batch_size):
        stop = min(start + batch_size, len(images))
        batch = images.batch(start, stop).contiguous(memory_format=torch.channels_last)
        maps = model.extract(batch, aligned_projection=False).maps.float().cpu()
        parts.append(score_masked_maps(maps, coverage=images.coverage(maps.shape[-2:])[start:stop]))
        if patterns:
            kept.append(maps)
        if progress is not None:
            progress(stop - start)
    scores = ImageScores.cat(parts)
    if not (patterns and images.has_instances and kept):
        return scores, None
    maps = torch.cat(kept)
    names = images.category_names() if categories is None else list(categories)
    return scores, score_patterns(maps, images.cells(maps.shape[-2:]), names)


def score_images(
    model: LewelModel,
    images: Source | PreparedImages,
    *,
    size: int = DEFAULT_SIZE,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> ImageScores:
    """Resize each image whole to ``size×size``, extract its maps with ``model`` and score them against its
    mask (``score_prepared``; ``PreparedImages`` are used as they are)."""
    if not model.has_maps:
        raise MapsUnavailableError(f"{model.source or 'this model'} ({model.method}) has no alignment maps to profile")
    prepared = images if isinstance(images, PreparedImages) else PreparedImages(images, size)
    return score_prepared(model, prepared, batch_size=batch_size, progress=progress)


def index_means(scores: ImageScores) -> dict[str, torch.Tensor]:
    """Per map index (tensors of length d), over the scored images: mean ``auroc``, ``pointing`` rate,
    ``peak_ratio``, and ``patterns`` (d×3 shares of ``PATTERNS``)."""
    valid = scores.valid()
    if not len(valid.auroc):
        raise ValueError(
            f"none of the {len(scores.auroc)} images has both object cells (coverage >= {OBJECT_CELL}) and background "
            f"cells (<= {BACKGROUND_CELL}) on the map grid: nothing to score (a larger --size gives a finer grid)"
        )
    shares = torch.stack([(valid.pattern == k).to(torch.float64).mean(dim=0) for k in range(len(PATTERNS))], dim=1)
    return {
        "auroc": valid.auroc.mean(dim=0),
        "pointing": valid.pointing.to(torch.float64).mean(dim=0),
        "peak_ratio": valid.peak_ratio.mean(dim=0),
        "patterns": shares,
    }


def selected_mean(scores: ImageScores, indices: Sequence[int], field: str = "auroc") -> torch.Tensor:
    """Per scored image, the mean of ``field`` over the maps ``indices``: length N_scored float64."""
    valid = scores.valid()
    return getattr(valid, field)[:, list(indices)].to(torch.float64).mean(dim=1)
