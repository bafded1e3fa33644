"""Scores of alignment maps against object masks: the masks' coverage of the map cells, the object-mass ratio,
the pointing game, the object AUROC, and their per-batch ``MapScores`` and summary.

Masks are at image resolution and are brought to the map grid by exact area pooling (``object_coverage``).
docs/maps.md states every definition and threshold used here. ``lewel.maps`` re-exports these names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from .statistics import (
    BLOB_THRESHOLD,
    GLOBAL_AREA,
    MIN_BLOB_MASS,
    TOP_FRACTION,
    ArrayLike,
    _as_maps,
    _pattern_shares,
    map_statistics,
)

POINTING_COVERAGE = 0.5  #: pointing game: the peak cell is "on an object" when objects cover >= half of it
OBJECT_CELL = 0.5  #: AUROC: a cell is an object cell when objects cover >= this share of it
BACKGROUND_CELL = 0.1  #: ... and a background cell when they cover <= this share (cells in between are ignored)
IGNORED_COVERAGE = (OBJECT_CELL + BACKGROUND_CELL) / 2  #: a cell that ignored pixels leave undecided reads this: neither kind


def _pool_matrix(cells: int, pixels: int) -> torch.Tensor:
    """``cells×pixels``: entry (i, y) is the share of cell i's extent ``[i·P/c, (i+1)·P/c)`` that pixel
    ``[y, y+1)`` covers, so each row sums to 1 and each column to c/P."""
    edges = torch.arange(cells + 1, dtype=torch.float64) * pixels / cells
    start = torch.arange(pixels, dtype=torch.float64)
    overlap = (torch.minimum(start + 1, edges[1:, None]) - torch.maximum(start, edges[:-1, None])).clamp(min=0)
    return overlap * cells / pixels


def as_object_mask(mask: ArrayLike) -> torch.Tensor:
    """An object mask as ``object_coverage`` takes it: int8 labels (1 object, 0 background, -1 ignored) kept,
    anything else as bool (nonzero = object)."""
    tensor = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    return tensor if tensor.dtype == torch.int8 else tensor.to(torch.bool)


def object_coverage(mask: ArrayLike, grid: Sequence[int]) -> torch.Tensor:
    """Share of each cell of a ``grid = (h, w)`` partition of the image covered by objects.

    ``mask``: ``...×H×W`` (bool or [0, 1]; the union of a scene's instance masks) -> ``...×h×w`` float64.
    Exact area pooling: the image is cut into h×w equal rectangles (fractional pixel borders are split
    by area), so the mean of the result is exactly the objects' share of the image, whatever H, W, h, w.

    An int8 mask holds labels, 1 object, 0 background and -1 ignored (COCO's crowd regions, VOC's border
    band: ``lewel.data.sources.Sample.object_mask``). A cell that objects cover by at least ``OBJECT_CELL``
    stays an object cell; one whose objects and ignored pixels together cover at most ``BACKGROUND_CELL``
    stays background; any other cell with ignored pixels could be either and reads ``IGNORED_COVERAGE``, so
    that the AUROC counts it as neither and the pointing game as no object.
    """
    tensor = torch.as_tensor(mask)
    if tensor.dim() < 2:
        raise ValueError(f"mask must be ...×H×W, got {tuple(tensor.shape)}")
    rows = _pool_matrix(int(grid[0]), tensor.shape[-2])
    cols = _pool_matrix(int(grid[1]), tensor.shape[-1])
    if tensor.dtype == torch.int8:
        objects = rows @ (tensor > 0).to(torch.float64) @ cols.T
        ignored = rows @ (tensor < 0).to(torch.float64) @ cols.T
        undecided = (ignored > 0) & (objects < OBJECT_CELL) & (objects + ignored > BACKGROUND_CELL)
        return torch.where(undecided, torch.full_like(objects, IGNORED_COVERAGE), objects)
    return rows @ tensor.to(torch.float64) @ cols.T


def view_coverage(mask: ArrayLike, box: Sequence[int], flip: bool, grid: Sequence[int]) -> torch.Tensor:
    """``object_coverage`` of one view's cells: ``mask`` (``H×W`` in source pixels) cropped to the view's
    ``box = (x0, y0, x1, y1)`` (integer source pixels, as ``lewel.views.View.box``), mirrored when the view
    was flipped, pooled onto the view's map ``grid`` -> ``h×w`` float64."""
    tensor = torch.as_tensor(mask)
    if tensor.dim() != 2:
        raise ValueError(f"mask must be H×W, got {tuple(tensor.shape)}")
    x0, y0, x1, y1 = (int(v) for v in box)
    if not (0 <= x0 < x1 <= tensor.shape[1] and 0 <= y0 < y1 <= tensor.shape[0]):
        raise ValueError(f"box {tuple(box)} does not lie inside the {tensor.shape[1]}×{tensor.shape[0]} mask")
    crop = tensor[y0:y1, x0:x1]
    return object_coverage(crop.flip(-1) if flip else crop, grid)


def object_mass_ratio(maps: ArrayLike, coverage: ArrayLike) -> torch.Tensor:
    """Share of map mass on objects divided by the objects' share of the image (1.0 = a uniform map).

    ``maps``: ``B×d×h×w``; ``coverage``: ``B×h×w`` from ``object_coverage`` -> ``B×d``. The mass on objects
    is ``Σ_cells map × coverage`` (a cell's mass counts in proportion to its covered area); the share is the
    mean coverage. A map equal to a cell-aligned mask of share s scores 1/s; random maps score about 1.
    Images without objects give NaN.
    """
    p, cover = _as_maps(maps), torch.as_tensor(coverage).to(torch.float64)
    mass = (p * cover[:, None]).sum(dim=(-2, -1))
    share = cover.mean(dim=(-2, -1))
    return mass / share[:, None]


def pointing_hits(maps: ArrayLike, coverage: ArrayLike) -> torch.Tensor:
    """Pointing game: whether each map's peak cell (the first on ties) is on an object, i.e. objects cover at
    least ``POINTING_COVERAGE`` of it. ``maps``: ``B×d×h×w``; ``coverage``: ``B×h×w`` -> bool ``B×d``."""
    p, cover = _as_maps(maps), torch.as_tensor(coverage).to(torch.float64)
    peak = p.flatten(2).argmax(dim=2)
    return cover.flatten(1).gather(1, peak) >= POINTING_COVERAGE


def pointing_chance(coverage: ArrayLike) -> torch.Tensor:
    """The pointing-game hit rate of a map whose peak falls on a random cell: ``B×h×w`` -> ``B``."""
    return (torch.as_tensor(coverage) >= POINTING_COVERAGE).to(torch.float64).flatten(1).mean(dim=1)


def cell_labels(coverage: ArrayLike) -> torch.Tensor:
    """Object (1), background (0) or ignored (-1) for each cell of ``coverage`` (``...×h×w``, from
    ``object_coverage``): object at coverage >= ``OBJECT_CELL``, background at <= ``BACKGROUND_CELL``."""
    cover = torch.as_tensor(coverage).to(torch.float64)
    labels = torch.full(cover.shape, -1, dtype=torch.int64)
    labels[cover <= BACKGROUND_CELL] = 0
    labels[cover >= OBJECT_CELL] = 1
    return labels


def cell_auroc(values: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """``values`` (d×n cells), bool ``positive`` and ``negative`` (n) -> d AUROCs of positive cells above
    negative ones, ties half (the Mann–Whitney statistic over all pairs; NaN when either set is empty)."""
    if not bool(positive.any()) or not bool(negative.any()):
        return torch.full(values.shape[:1], math.nan, dtype=torch.float64)
    difference = values[:, positive][:, :, None] - values[:, negative][:, None, :]  # d × positives × negatives
    return ((difference > 0).to(torch.float64) + 0.5 * (difference == 0).to(torch.float64)).mean(dim=(1, 2))


def map_auroc(maps: ArrayLike, coverage: ArrayLike) -> torch.Tensor:
    """How well each map's values rank object cells above background cells: ``B×d×h×w`` maps and ``B×h×w``
    coverage (``object_coverage``) -> ``B×d`` float64 AUROC, NaN for images without both kinds of cells.

    Per (image, map): the probability that a random object cell (coverage >= ``OBJECT_CELL``) holds a
    larger value than a random background cell (coverage <= ``BACKGROUND_CELL``), ties counting half (the
    Mann–Whitney statistic over all object × background pairs). Cells in between are ignored. The score
    depends only on the order of the cells, so it is the same for a map and any increasing function of it:
    it does not care that LEWEL's maps are within a few per cent of uniform. 1.0: every object cell above
    every background cell; 0.5: a constant map, or no relation; 0.0: the map avoids objects.
    """
    p = _as_maps(maps)
    if p.dim() != 4:
        raise ValueError(f"maps must be B×d×h×w, got {tuple(p.shape)}")
    labels = cell_labels(coverage)
    if labels.shape != (p.shape[0], *p.shape[-2:]):
        raise ValueError(f"coverage must be B×h×w = {(p.shape[0], *p.shape[-2:])}, got {tuple(labels.shape)}")
    values, labels = p.flatten(2), labels.flatten(1)
    rows = [cell_auroc(values[image], labels[image] == 1, labels[image] == 0) for image in range(p.shape[0])]
    return torch.stack(rows) if rows else torch.zeros(0, p.shape[1], dtype=torch.float64)


@dataclass(frozen=True)
class MapScores:
    """Per-map scores of a batch (fields ``B×d``, ``object_share`` and ``pointing_chance`` ``B``).
    ``auroc`` is NaN for the images without both object and background cells."""

    object_mass_ratio: torch.Tensor
    auroc: torch.Tensor
    pointing_hit: torch.Tensor
    pattern: torch.Tensor
    entropy: torch.Tensor
    normalized_entropy: torch.Tensor
    effective_area: torch.Tensor
    active_area: torch.Tensor
    peak: torch.Tensor
    peak_ratio: torch.Tensor
    top_mass: torch.Tensor
    blobs: torch.Tensor
    object_share: torch.Tensor
    pointing_chance: torch.Tensor

    @classmethod
    def cat(cls, scores: Sequence[MapScores]) -> MapScores:
        """The scores of several batches as one (concatenated along B)."""
        if not scores:
            raise ValueError("no scores to concatenate")
        return cls(**{f.name: torch.cat([getattr(s, f.name) for s in scores]) for f in fields(cls)})


def score_maps(maps: ArrayLike, masks: ArrayLike | None = None, *, coverage: ArrayLike | None = None) -> MapScores:
    """Score maps ``B×d×h×w`` against object masks ``B×H×W`` (the union of each image's instances, at image
    resolution; the map grid spans the whole image), or against their ``object_coverage`` (``B×h×w``, for
    images of different sizes)."""
    p = _as_maps(maps)
    if p.dim() != 4:
        raise ValueError(f"maps must be B×d×h×w, got {tuple(p.shape)}")
    if coverage is None:
        if masks is None:
            raise ValueError("score_maps needs masks or coverage")
        coverage = object_coverage(masks, p.shape[-2:])
    coverage = torch.as_tensor(coverage, dtype=torch.float64)
    if coverage.shape != (p.shape[0], *p.shape[-2:]):
        raise ValueError(f"masks must be B×H×W with B = {p.shape[0]}, got coverage {tuple(coverage.shape)}")
    stats = map_statistics(p)
    return MapScores(
        object_mass_ratio=object_mass_ratio(p, coverage),
        auroc=map_auroc(p, coverage),
        pointing_hit=pointing_hits(p, coverage),
        pattern=stats.pattern,
        entropy=stats.entropy,
        normalized_entropy=stats.normalized_entropy,
        effective_area=stats.effective_area,
        active_area=stats.active_area,
        peak=stats.peak,
        peak_ratio=stats.peak_ratio,
        top_mass=stats.top_mass,
        blobs=stats.blobs,
        object_share=coverage.mean(dim=(-2, -1)),
        pointing_chance=pointing_chance(coverage),
    )


def summarize_scores(scores: MapScores | Sequence[MapScores], num_groups: int = 1) -> dict[str, Any]:
    """Aggregate per-map scores over all maps of all images into a JSON-friendly dict.

    Means over every (image, map) pair; ``per_map`` holds the mean over images of each of the d maps and
    ``groups`` the same per channel group (map m is in group ``m // (d / num_groups)``, as ``map_group``).
    Images without objects are left out of the object-mass ratio.
    """
    s = scores if isinstance(scores, MapScores) else MapScores.cat(scores)
    images, d = s.object_mass_ratio.shape
    if d % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide the number of maps d={d}")
    valid = s.object_share > 0
    ratio = s.object_mass_ratio[valid]
    hits = s.pointing_hit.to(torch.float64)
    scored = ~s.auroc[:, 0].isnan() if d else torch.zeros(images, dtype=torch.bool)
    auroc = s.auroc[scored]
    per_group = d // num_groups

    def part(columns: slice) -> dict[str, Any]:
        return {
            "auroc": float(auroc[:, columns].mean()) if auroc.numel() else math.nan,
            "object_mass_ratio": float(ratio[:, columns].mean()) if ratio.numel() else math.nan,
            "pointing_game": float(hits[:, columns].mean()),
            "patterns": _pattern_shares(s.pattern[:, columns]),
        }

    return {
        "images": images,
        "maps_per_image": d,
        "object_share": float(s.object_share.mean()),
        **part(slice(None)),
        "auroc_images": int(scored.sum()),
        "auroc_skipped": int(images - scored.sum()),
        "object_mass_ratio_median": float(ratio.median()) if ratio.numel() else math.nan,
        "pointing_chance": float(s.pointing_chance.mean()),
        "statistics": {
            name: float(getattr(s, name).to(torch.float64).mean())
            for name in ("entropy", "normalized_entropy", "effective_area", "active_area", "peak", "peak_ratio", "top_mass", "blobs")
        },
        "per_map": {
            "auroc": auroc.mean(dim=0).tolist() if auroc.numel() else [math.nan] * d,
            "object_mass_ratio": ratio.mean(dim=0).tolist() if ratio.numel() else [math.nan] * d,
            "pointing_game": hits.mean(dim=0).tolist(),
        },
        "groups": [
            {"group": g, "maps": [start, start + per_group], **part(slice(start, start + per_group))}
            for g, start in enumerate(range(0, d, per_group))
        ],
        "thresholds": {
            "blob_threshold": BLOB_THRESHOLD,
            "min_blob_mass": MIN_BLOB_MASS,
            "global_area": GLOBAL_AREA,
            "top_fraction": TOP_FRACTION,
            "pointing_coverage": POINTING_COVERAGE,
            "object_cell": OBJECT_CELL,
            "background_cell": BACKGROUND_CELL,
        },
    }
