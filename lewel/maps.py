"""Where alignment maps look: per-map statistics, the paper's three patterns, and scores against object masks.

Maps are ``...×h×w`` (e.g. ``B×d×h×w`` from ``LewelModel.extract(images).maps``), non-negative, one
distribution over the feature grid each; they are renormalised to sum 1 (guarding float16 rounding).
Masks are at image resolution and are brought to the map grid by exact area pooling (``object_coverage``).
docs/maps.md states every definition and threshold used here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from scipy import ndimage

PATTERNS = ("object", "multi-object", "global")  #: the paper's three kinds of maps, in index order
BLOB_THRESHOLD = 0.5  #: a blob is a connected set of cells above this share of the map's range: >= min + 0.5·(max − min)
MIN_BLOB_MASS = 0.05  #: blobs holding less of the map's mass than this are not counted
GLOBAL_AREA = 0.5  #: a map whose active area (share of cells in the upper half of its range) reaches this is "global"
TOP_FRACTION = 0.1  #: top-mass statistic: the mass of the ceil(10 %) largest pixels
POINTING_COVERAGE = 0.5  #: pointing game: the peak cell is "on an object" when objects cover >= half of it
OBJECT_CELL = 0.5  #: AUROC: a cell is an object cell when objects cover >= this share of it
BACKGROUND_CELL = 0.1  #: ... and a background cell when they cover <= this share (cells in between are ignored)
IGNORED_COVERAGE = (OBJECT_CELL + BACKGROUND_CELL) / 2  #: a cell that ignored pixels leave undecided reads this: neither kind

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
    result = torch.full(p.shape[:2], math.nan, dtype=torch.float64)
    for image in range(p.shape[0]):
        positive, negative = values[image][:, labels[image] == 1], values[image][:, labels[image] == 0]
        if positive.shape[1] == 0 or negative.shape[1] == 0:
            continue
        difference = positive[:, :, None] - negative[:, None, :]  # d × objects × backgrounds
        wins = (difference > 0).to(torch.float64) + 0.5 * (difference == 0).to(torch.float64)
        result[image] = wins.mean(dim=(1, 2))
    return result


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


def _pattern_shares(pattern: torch.Tensor) -> dict[str, float]:
    counts = torch.bincount(pattern.flatten(), minlength=len(PATTERNS)).to(torch.float64)
    return {name: float(c) for name, c in zip(PATTERNS, counts / max(pattern.numel(), 1), strict=True)}


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


# --- Views: maps back in the image frame, and how well views agree -----------------------------------------

Box = Sequence[float]  #: ``(x0, y0, x1, y1)`` in source-image pixel-edge coordinates, as ``lewel.views.View.box``


def _check_box(box: Box, image_size: Sequence[int] | None = None) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"a box needs x0 < x1 and y0 < y1, got {tuple(box)}")
    if image_size is not None:
        width, height = image_size
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ValueError(f"box {tuple(box)} is not inside the {width}×{height} image")
    return x0, y0, x1, y1


def _interval_shares(out_edges: torch.Tensor, in_edges: torch.Tensor) -> torch.Tensor:
    """``R×I``: the share of input interval i (``[in_i, in_{i+1})``) that lies in output interval r."""
    low = torch.maximum(out_edges[:-1, None], in_edges[None, :-1])
    high = torch.minimum(out_edges[1:, None], in_edges[None, 1:])
    return (high - low).clamp(min=0) / (in_edges[1:] - in_edges[:-1])[None]


def _cell_edges(low: float, high: float, cells: int) -> torch.Tensor:
    return torch.linspace(low, high, cells + 1, dtype=torch.float64)


def _resample(
    maps: torch.Tensor, box: Box, flip: bool, row_edges: torch.Tensor, col_edges: torch.Tensor
) -> torch.Tensor:
    """Mass of each map (``...×h×w``, sums 1, view cells spanning ``box``) in the cells of the rectangular
    partition ``row_edges × col_edges`` of the source image. A view cell's mass is spread evenly over its
    rectangle in the source; with ``flip`` the view's column j covers the box's column w − 1 − j."""
    x0, y0, x1, y1 = _check_box(box)
    h, w = maps.shape[-2:]
    if flip:
        maps = maps.flip(-1)
    rows = _interval_shares(row_edges, _cell_edges(y0, y1, h))
    cols = _interval_shares(col_edges, _cell_edges(x0, x1, w))
    return rows @ maps @ cols.T


def frame_grid(image_size: Sequence[int], longest: int) -> tuple[int, int]:
    """``(rows, cols)`` of a grid over a ``(W, H)`` image with ``longest`` cells along its longer side and
    square-ish cells (at least one cell per side)."""
    width, height = (int(v) for v in image_size)
    if longest < 1 or width < 1 or height < 1:
        raise ValueError(f"need longest >= 1 and a non-empty image, got {longest}, {tuple(image_size)}")
    if width >= height:
        return max(1, round(longest * height / width)), longest
    return longest, max(1, round(longest * width / height))


def crop_coverage(box: Box, image_size: Sequence[int], grid: Sequence[int]) -> torch.Tensor:
    """Share of each cell of a ``grid = (rows, cols)`` partition of a ``(W, H)`` image that lies inside the
    crop ``box`` -> ``rows×cols`` float64 in [0, 1]."""
    x0, y0, x1, y1 = _check_box(box, image_size)
    width, height = image_size

    def share(edges: torch.Tensor, low: float, high: float) -> torch.Tensor:
        covered = torch.minimum(edges[1:], torch.tensor(high)) - torch.maximum(edges[:-1], torch.tensor(low))
        return covered.clamp(min=0) / (edges[1:] - edges[:-1])

    rows = share(_cell_edges(0, height, int(grid[0])), y0, y1)
    cols = share(_cell_edges(0, width, int(grid[1])), x0, x1)
    return rows[:, None] * cols[None, :]


def frame_density(frame_maps: ArrayLike, coverage: ArrayLike) -> torch.Tensor:
    """Maps warped into the image frame (``...×rows×cols`` mass per cell, from ``warp_to_image``) as a
    density: each cell's mass divided by the share of it the crop covers (``crop_coverage``, broadcast), so
    that a half-covered cell at the same density reads the same as a full one. NaN where nothing is covered."""
    mass = torch.as_tensor(frame_maps).to(torch.float64)
    cover = torch.as_tensor(coverage).to(torch.float64)
    return torch.where(cover > 0, mass / cover.clamp(min=1e-12), torch.full_like(mass, math.nan))


def warp_to_image(
    maps: ArrayLike,
    box: Box,
    flip: bool,
    image_size: Sequence[int],
    grid: Sequence[int],
    *,
    outside: float = math.nan,
) -> torch.Tensor:
    """A view's maps ``...×h×w`` brought back into the source image's frame: ``...×rows×cols`` float64.

    The view was cropped from ``box`` of a ``(W, H)`` image (then mirrored if ``flip``); its h×w cells tile
    the box. Each cell's mass is spread evenly over its rectangle in the source and pooled by exact area
    onto a ``grid = (rows, cols)`` partition of the whole image, so a value is the **map mass in that cell**
    and the cells sum to 1 (each map is renormalised to 1 first). Cells the crop does not touch at all are set
    to ``outside``: **NaN by default** (unknown: the view never saw them), or e.g. 0.0 for plotting. Cells the
    crop covers partly hold the mass of the covered part (``crop_coverage`` gives the share).
    """
    p = _as_maps(maps)
    width, height = (float(v) for v in image_size)
    _check_box(box, image_size)
    rows, cols = int(grid[0]), int(grid[1])
    warped = _resample(p, box, flip, _cell_edges(0, height, rows), _cell_edges(0, width, cols))
    untouched = crop_coverage(box, image_size, grid) <= 0
    return warped.masked_fill(untouched, outside)


def intersect_boxes(first: Box, second: Box) -> tuple[float, float, float, float] | None:
    """The overlap of two boxes ``(x0, y0, x1, y1)``, or ``None`` when they share no area."""
    a, b = _check_box(first), _check_box(second)
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


AGREEMENT_MIN_MASS = 1e-9  #: a map with less mass than this in the shared region has no agreement (NaN)


def pairwise_agreement(
    maps_a: ArrayLike, box_a: Box, flip_a: bool, maps_b: ArrayLike, box_b: Box, flip_b: bool
) -> torch.Tensor:
    """Cross-view agreement of the same map index in two views of one image: ``...×h×w`` twice -> ``...``.

    Both views' maps are brought into the source frame (as ``warp_to_image``, each view cell's mass spread
    evenly over its rectangle in the source) and **restricted to the region both crops cover**, where both
    views saw the image. There each map is renormalised to a distribution, and the score is their
    **overlap** ``Σ min(p_a, p_b)`` = 1 − total-variation distance, computed exactly on the common refinement
    of the two views' cell grids (no resolution parameter). 1.0: the two views put the same share of this
    map on every part of the shared region (two uniform maps score 1); 0.0: they weight disjoint parts.
    NaN when the crops do not overlap, or a map has (almost) no mass in the shared region.
    """
    p_a, p_b = _as_maps(maps_a), _as_maps(maps_b)
    shared = intersect_boxes(box_a, box_b)
    leading = torch.broadcast_shapes(p_a.shape[:-2], p_b.shape[:-2])
    if shared is None:
        return torch.full(leading, math.nan, dtype=torch.float64)
    x0, y0, x1, y1 = shared

    def edges(low: float, high: float, *views: tuple[float, float, int]) -> torch.Tensor:
        points = [torch.tensor([low, high], dtype=torch.float64)]
        points += [_cell_edges(start, end, cells) for start, end, cells in views]
        merged = torch.unique(torch.cat(points))
        return merged[(merged >= low) & (merged <= high)]

    ba, bb = _check_box(box_a), _check_box(box_b)
    row_edges = edges(y0, y1, (ba[1], ba[3], p_a.shape[-2]), (bb[1], bb[3], p_b.shape[-2]))
    col_edges = edges(x0, x1, (ba[0], ba[2], p_a.shape[-1]), (bb[0], bb[2], p_b.shape[-1]))
    mass_a = _resample(p_a, box_a, flip_a, row_edges, col_edges)
    mass_b = _resample(p_b, box_b, flip_b, row_edges, col_edges)
    total_a = mass_a.sum(dim=(-2, -1))
    total_b = mass_b.sum(dim=(-2, -1))
    share_a = mass_a / total_a.clamp(min=AGREEMENT_MIN_MASS)[..., None, None]
    share_b = mass_b / total_b.clamp(min=AGREEMENT_MIN_MASS)[..., None, None]
    score = torch.minimum(share_a, share_b).sum(dim=(-2, -1))
    valid = (total_a >= AGREEMENT_MIN_MASS) & (total_b >= AGREEMENT_MIN_MASS)
    return torch.where(valid, score, torch.full_like(score, math.nan))


def cross_view_agreement(maps: Sequence[ArrayLike], boxes: Sequence[Box], flips: Sequence[bool]) -> torch.Tensor:
    """Agreement of each map index over several views of one image: the mean of ``pairwise_agreement`` over
    all pairs of views (NaN pairs ignored). ``maps``: one ``d×h×w`` (or ``...×h×w``) per view -> ``d``
    (``...``) float64; NaN where no pair has a score (fewer than two views, or no overlapping pair)."""
    if not len(maps) == len(boxes) == len(flips):
        raise ValueError(f"got {len(maps)} map sets, {len(boxes)} boxes and {len(flips)} flips")
    scores = [
        pairwise_agreement(maps[i], boxes[i], flips[i], maps[j], boxes[j], flips[j])
        for i in range(len(maps))
        for j in range(i + 1, len(maps))
    ]
    if not scores:
        leading = _as_maps(maps[0]).shape[:-2] if maps else torch.Size([])
        return torch.full(leading, math.nan, dtype=torch.float64)
    stacked = torch.stack(scores)
    return stacked.nanmean(dim=0)


# --- Choosing maps to show -----------------------------------------------------------------------------------

ORDERS = ("index",) + PATTERNS  #: ``index``, or by typicality of one pattern


def rank_maps(statistics: MapStatistics, order: str) -> torch.Tensor:
    """Map indices of one image's statistics (fields of shape ``d``) in ``order``: ``index`` (0 … d − 1) or
    a pattern name (most typical of that pattern first, ties by index, whatever each map's own pattern)."""
    if statistics.pattern.dim() != 1:
        raise ValueError(f"rank the maps of one image (statistics of shape d), got {tuple(statistics.pattern.shape)}")
    d = statistics.pattern.shape[0]
    if order == "index":
        return torch.arange(d)
    if order not in PATTERNS:
        raise ValueError(f"unknown order {order!r}; choose one of {list(ORDERS)}")
    return torch.sort(statistics.typicality(order), descending=True, stable=True).indices


def top_per_pattern(statistics: MapStatistics, k: int) -> dict[str, list[int]]:
    """For each pattern, the (up to) ``k`` most typical maps classified as that pattern, most typical first.
    ``statistics``: one image's (fields of shape ``d``)."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    top: dict[str, list[int]] = {}
    for index, pattern in enumerate(PATTERNS):
        ranked = rank_maps(statistics, pattern)
        members = ranked[statistics.pattern[ranked] == index]
        top[pattern] = members[:k].tolist()
    return top


def select_maps(statistics: MapStatistics, *, maps: str = "all", order: str = "index", top_k: int = 4) -> list[int]:
    """Which maps to show, in which order, from one image's statistics (fields of shape ``d``):

    - ``maps="all"``: every map, in ``order`` (see ``rank_maps``);
    - ``maps="top"``: the ``top_k`` most typical maps of each pattern (``top_per_pattern``), the patterns
      in ``PATTERNS`` order when ``order="index"``, or only the pattern named by ``order``.
    """
    if maps == "all":
        return rank_maps(statistics, order).tolist()
    if maps != "top":
        raise ValueError(f"maps must be 'all' or 'top', got {maps!r}")
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; choose one of {list(ORDERS)}")
    top = top_per_pattern(statistics, top_k)
    chosen = PATTERNS if order == "index" else (order,)
    return [index for pattern in chosen for index in top[pattern]]
