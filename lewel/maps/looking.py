"""Which maps look at a point of the image: each map's value at the cell under the point, relative to its
uniform value, on every view whose crop contains the point.

A map sums to 1 over its h×w grid, so its uniform value is 1/(h·w); a map looks at the point on a view when
its value there is above that (``relative`` > 1). The ranking is by the mean of ``relative`` over the views
that contain the point; ``views_above`` is the share of those views on which the map is above uniform there
(1: every view agrees the map looks here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class LookingMap:
    """One map at the point: ``relative`` (mean over the containing views of value ÷ uniform), ``per_view``
    (that ratio on each view, None where the view's crop misses the point) and ``views_above``."""

    index: int
    relative: float
    per_view: list[float | None]
    views_above: float


@dataclass(frozen=True)
class PointCells:
    """The cell under the point on each view: ``(row, col)``, or None where the crop does not contain it."""

    cells: list[tuple[int, int] | None]

    @property
    def views(self) -> list[int]:
        """The views whose crop contains the point."""
        return [v for v, cell in enumerate(self.cells) if cell is not None]


def point_cells(
    point: tuple[float, float], boxes: Sequence[Box], flips: Sequence[bool], grid: tuple[int, int]
) -> PointCells:
    """The map cell under ``point`` (x, y in original-image pixels; the pixel's centre is used) on each view,
    from its crop ``box`` ``(x0, y0, x1, y1)`` (pixel edges) and its ``flip`` (mirrored after cropping)."""
    x, y = float(point[0]) + 0.5, float(point[1]) + 0.5
    rows, cols = grid
    cells: list[tuple[int, int] | None] = []
    for (x0, y0, x1, y1), flip in zip(boxes, flips, strict=True):
        if not (x0 <= x < x1 and y0 <= y < y1):
            cells.append(None)
            continue
        u, v = (x - x0) / (x1 - x0), (y - y0) / (y1 - y0)
        if flip:
            u = 1.0 - u
        cells.append((min(int(v * rows), rows - 1), min(int(u * cols), cols - 1)))
    return PointCells(cells)


def maps_looking_at(
    maps: torch.Tensor,
    point: tuple[float, float],
    boxes: Sequence[Box],
    flips: Sequence[bool],
    *,
    top: int | None = None,
) -> tuple[list[LookingMap], PointCells]:
    """The maps of ``maps`` (``V×d×h×w``, each summing to 1 over its view) ranked by how much they look at
    ``point`` (highest mean ``relative`` first, ties by index), at most ``top`` of them, with the cells used.
    A point no view contains gives an empty ranking."""
    views, d, rows, cols = maps.shape
    cells = point_cells(point, boxes, flips, (rows, cols))
    containing = cells.views
    if not containing:
        return [], cells
    values = torch.stack([maps[v, :, cells.cells[v][0], cells.cells[v][1]] for v in containing]).double()
    relative = values * (rows * cols)  # V'×d, 1 = the uniform value
    mean = relative.mean(dim=0)
    above = (relative > 1.0).double().mean(dim=0)
    order = sorted(range(d), key=lambda m: (-float(mean[m]), m))
    chosen = order if top is None else order[:top]
    ranked = []
    for m in chosen:
        per_view: list[float | None] = [None] * views
        for row, v in enumerate(containing):
            per_view[v] = float(relative[row, m])
        ranked.append(LookingMap(index=m, relative=float(mean[m]), per_view=per_view, views_above=float(above[m])))
    return ranked, cells

