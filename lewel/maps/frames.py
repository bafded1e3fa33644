"""Frame geometry of views: maps brought back into the source image's frame, the share of each image cell a
crop covers, and how well the maps of several views of one image agree where their crops overlap.

A view's box is ``(x0, y0, x1, y1)`` in source-image pixel-edge coordinates, as ``lewel.views.View.box``.
docs/views.md and docs/maps.md describe the definitions. ``lewel.maps`` re-exports these names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .statistics import ArrayLike, _as_maps

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
