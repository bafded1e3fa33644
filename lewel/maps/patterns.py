"""Figure 5 measured: which maps look at one object, at several, at the whole image, and at which category.

The paper sorts LEWEL's maps into three patterns by eye. Here they are measured from instance masks, per map
index, on a profile's splits (``lewel.maps.profiles``):

- **object AUROC**: object cells against background cells (``lewel.maps.mask_scores.map_auroc``; every AUROC here
  is ``lewel.maps.mask_scores.cell_auroc`` of two sets of cells);
- **instance selectivity**: on images with two or more instances that own cells, the AUROC of one instance's
  cells against the other instances' cells, for the instance that scores highest (1: the map singles out one
  instance; 0.5: it treats the instances alike);
- **spread**: the spatial standard deviation of the map's mass above its minimum, relative to a uniform map's
  (1: as spread as the grid; 0: one cell). It only depends on the map's shape, not on its scale;
- per **category**: the AUROC of the category's cells against background and against the other categories'
  object cells, and Network Dissection's IoU (the map's top ``DISSECTION_QUANTILE`` of cells over the data
  set against the category's cells).

Roles (``PATTERN_ROLES``) are given on the calibration split by thresholds taken from the random control
family of the same shape (``pattern_thresholds``), the same rule gives the controls their roles, and every
score is reported on the held-out split. docs/maps.md, "Measured patterns", states the rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .mask_scores import OBJECT_CELL, cell_auroc, cell_labels, object_coverage
from .pattern_names import UNDECIDED

PATTERN_ROLES = ("object", "multi-object", "global", "background", "mixed")  #: measured roles, Figure 5's first
CONTROL_QUANTILE = 0.95  #: "above random": above this quantile of the control family's per-index values
DISSECTION_QUANTILE = 0.005  #: Network Dissection's top quantile of a unit's activations over the data set
MIN_CATEGORY_IMAGES = 5  #: a category needs this many calibration images to be a map's preferred category
TOP_CATEGORIES = 5  #: categories kept per map index in a profile, best first


def instance_labels(instances: np.ndarray) -> np.ndarray:
    """``K×H×W`` bool instance masks -> ``H×W`` int16 labels: 0 none, k + 1 for instance k. Where instances
    overlap (COCO allows it) the smaller instance keeps the pixel, as COCO's own renderings do."""
    count = len(instances)
    labels = np.zeros(instances.shape[-2:], dtype=np.int16)
    if count == 0:
        return labels
    areas = instances.reshape(count, -1).sum(axis=1)
    for k in np.argsort(-areas, kind="stable"):  # largest first, so smaller instances overwrite it
        labels[instances[k]] = k + 1
    return labels


@dataclass(frozen=True)
class InstanceCells:
    """One image's map grid in terms of its instances: ``labels`` (h×w int64: -1 ignored or undecided, 0
    background, k + 1 a cell that instance k covers by at least ``OBJECT_CELL``), ``categories`` (one name
    per instance, ``""`` where unknown) and ``category_coverage`` (name -> h×w covered share, for the IoU)."""

    labels: torch.Tensor
    categories: tuple[str, ...]
    category_coverage: dict[str, torch.Tensor] = field(default_factory=dict)


def instance_cells(
    labels: np.ndarray, categories: Sequence[str], object_coverage_grid: torch.Tensor, grid: Sequence[int]
) -> InstanceCells:
    """``labels`` (H×W from ``instance_labels``), each instance's category, and the image's object coverage on
    the map grid (``lewel.maps.object_coverage`` of its object mask, ignored pixels included) -> its cells.

    A background cell is one the object coverage calls background; an instance cell one that instance covers
    by at least ``OBJECT_CELL`` (cells that objects cover but no single instance does count for no instance)."""
    count = len(categories)
    grid = (int(grid[0]), int(grid[1]))
    kinds = cell_labels(object_coverage_grid)
    cells = torch.where(kinds == 0, 0, -1).to(torch.int64)
    coverage: dict[str, torch.Tensor] = {}
    if count:
        onehot = torch.from_numpy(labels)[None] == torch.arange(1, count + 1, dtype=torch.int16)[:, None, None]
        shares = object_coverage(onehot, grid)  # K×h×w
        best, owner = shares.max(dim=0)
        cells = torch.where((kinds == 1) & (best >= OBJECT_CELL), owner + 1, cells)
        for name in dict.fromkeys(c for c in categories if c):
            members = [k for k, c in enumerate(categories) if c == name]
            coverage[name] = shares[members].sum(dim=0).clamp(max=1.0)
    return InstanceCells(labels=cells, categories=tuple(categories), category_coverage=coverage)


def instance_aurocs(values: torch.Tensor, cells: torch.Tensor, count: int) -> torch.Tensor:
    """Per instance, its cells against background cells: ``values`` d×n, ``cells`` n labels
    (``InstanceCells.labels`` flattened) -> ``count×d`` (NaN for an instance without cells)."""
    background = cells == 0
    return torch.stack([cell_auroc(values, cells == k + 1, background) for k in range(count)]) if count else torch.zeros(0, len(values), dtype=torch.float64)


def selectivity(values: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
    """Instance selectivity of d maps on one image: the highest, over the instances that own cells, of the
    AUROC of that instance's cells against the other instances' cells (d; NaN with fewer than two such
    instances). The maximum is taken per map; the controls take it the same way, so its upward bias cancels
    in the comparison with them."""
    owners = [int(k) for k in torch.unique(cells) if k > 0]
    if len(owners) < 2:
        return torch.full(values.shape[:1], math.nan, dtype=torch.float64)
    scores = torch.stack([cell_auroc(values, cells == k, (cells > 0) & (cells != k)) for k in owners])
    return scores.max(dim=0).values


def spread(maps: torch.Tensor) -> torch.Tensor:
    """``...×h×w`` maps -> ``...`` spread: the root-mean-square distance of the mass above each map's minimum
    from its centre of mass, divided by a uniform map's (cell centres in units of the grid's side). Scale- and
    shift-free, like the AUROC: 1 for a constant map or one whose excess is spread evenly, 0 for one cell."""
    h, w = maps.shape[-2:]
    ys = (torch.arange(h, dtype=torch.float64) + 0.5) / max(h, w)
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) / max(h, w)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    uniform = math.sqrt(float(y.var(unbiased=False) + x.var(unbiased=False)))
    excess = maps.to(torch.float64).flatten(-2)
    excess = excess - excess.min(dim=-1, keepdim=True).values
    total = excess.sum(dim=-1, keepdim=True)
    flat = excess.sum(dim=-1, keepdim=True) == 0
    weights = torch.where(flat, torch.full_like(excess, 1.0 / excess.shape[-1]), excess / total.clamp(min=1e-300))
    cy, cx = (weights * y.flatten()).sum(-1, keepdim=True), (weights * x.flatten()).sum(-1, keepdim=True)
    radius = (weights * ((y.flatten() - cy) ** 2 + (x.flatten() - cx) ** 2)).sum(-1).sqrt()
    return radius / uniform


@dataclass
class PatternScores:
    """Per map index means over one split (``d`` tensors, float64): ``selectivity`` (over the
    ``selectivity_images`` images with two or more instances owning cells), ``spread`` (all images); per
    category (``categories``, C names): ``category_auroc`` (C×d, its cells against background, over
    ``category_images`` images), ``category_vs_others`` (C×d, against the other categories' object cells, over
    ``versus_images``) and ``iou`` (C×d, Network Dissection's IoU at ``DISSECTION_QUANTILE``). Per image, for
    resampling (``lewel.maps.role_confidence``): ``selectivity_each`` (N×d, NaN rows for images with fewer than two
    instances owning cells) and ``spread_each`` (N×d); the means above are their means."""

    selectivity: torch.Tensor
    selectivity_images: int
    spread: torch.Tensor
    categories: tuple[str, ...]
    category_auroc: torch.Tensor
    category_images: torch.Tensor
    category_vs_others: torch.Tensor
    versus_images: torch.Tensor
    iou: torch.Tensor
    selectivity_each: torch.Tensor
    spread_each: torch.Tensor


def _nanmean(stack: list[torch.Tensor], d: int) -> tuple[torch.Tensor, int]:
    if not stack:
        return torch.full((d,), math.nan, dtype=torch.float64), 0
    values = torch.stack(stack)
    return values.nanmean(dim=0), len(stack)


def score_patterns(maps: torch.Tensor, images: Sequence[InstanceCells], categories: Sequence[str]) -> PatternScores:
    """The pattern and dissection scores of N images' maps (``N×d×h×w``) with their ``InstanceCells``, per map
    index, for the data set's ``categories`` (fixed across splits and networks, so that indices line up)."""
    n, d = maps.shape[:2]
    if len(images) != n:
        raise ValueError(f"{n} images of maps but {len(images)} instance cell records")
    values = maps.to(torch.float64).flatten(2)  # N×d×cells
    chosen: list[torch.Tensor] = []
    each = torch.full((n, d), math.nan, dtype=torch.float64)
    names = tuple(categories)
    versus: dict[str, list[torch.Tensor]] = {c: [] for c in names}
    against_background: dict[str, list[torch.Tensor]] = {c: [] for c in names}
    for i, image in enumerate(images):
        cells = image.labels.flatten()
        score = selectivity(values[i], cells)
        if not bool(score.isnan().all()):
            chosen.append(score)
            each[i] = score
        present: dict[str, torch.Tensor] = {}
        for k, name in enumerate(image.categories):
            if name:
                own = cells == k + 1
                if bool(own.any()):
                    present[name] = present.get(name, torch.zeros_like(own)) | own
        for name, own in present.items():
            against_background[name].append(cell_auroc(values[i], own, cells == 0))
            others = torch.zeros_like(own)
            for other, mask in present.items():
                if other != name:
                    others |= mask
            if bool(others.any()):
                versus[name].append(cell_auroc(values[i], own, others))
    sel, sel_images = _nanmean(chosen, d)
    auroc_pairs = [_nanmean(against_background[c], d) for c in names]
    versus_pairs = [_nanmean(versus[c], d) for c in names]
    empty = torch.zeros(0, d, dtype=torch.float64)
    spreads = spread(maps)
    return PatternScores(
        selectivity=sel,
        selectivity_images=sel_images,
        spread=spreads.mean(dim=0),
        categories=names,
        category_auroc=torch.stack([m for m, _ in auroc_pairs]) if names else empty,
        category_images=torch.tensor([c for _, c in auroc_pairs], dtype=torch.int64),
        category_vs_others=torch.stack([m for m, _ in versus_pairs]) if names else empty,
        versus_images=torch.tensor([c for _, c in versus_pairs], dtype=torch.int64),
        iou=dissection_iou(maps, images, names),
        selectivity_each=each,
        spread_each=spreads,
    )


def dissection_iou(maps: torch.Tensor, images: Sequence[InstanceCells], categories: Sequence[str]) -> torch.Tensor:
    """Network Dissection's IoU of every (category, map index): each map index is thresholded at the top
    ``DISSECTION_QUANTILE`` of its cell values over all N images, and the selected cells are compared with the
    category's cells over the data set, ``Σ |M ∩ L| / Σ |M ∪ L|``, with a cell's category share as its
    coverage (exact at the grid's resolution) -> C×d. On an h×w grid the selected cells are whole cells, so the
    values are smaller than pixel-level ones for small objects."""
    n, d = maps.shape[:2]
    if not categories:
        return torch.zeros(0, d, dtype=torch.float64)
    values = maps.to(torch.float64).flatten(2)  # N×d×cells
    threshold = torch.quantile(values.transpose(0, 1).reshape(d, -1), 1 - DISSECTION_QUANTILE, dim=1)
    selected = (values >= threshold[None, :, None]).to(torch.float64)  # N×d×cells (ties at the top all kept)
    cover = torch.stack(
        [
            torch.stack([image.category_coverage.get(c, torch.zeros(image.labels.shape, dtype=torch.float64)).flatten() for c in categories])
            for image in images
        ]
    )  # N×C×cells
    intersection = torch.einsum("ndx,ncx->cd", selected, cover)
    union = selected.sum(dim=(0, 2))[None, :] + cover.sum(dim=(0, 2))[:, None] - intersection
    return torch.where(union > 0, intersection / union.clamp(min=1e-300), torch.zeros_like(union))


# --- Roles against the control family ------------------------------------------------------------------------


def pooled_quantile(values: Sequence[torch.Tensor], q: float) -> float:
    """The ``q`` quantile of all non-NaN entries of ``values`` pooled (NaN when there are none)."""
    pooled = torch.cat([v.flatten().to(torch.float64) for v in values])
    pooled = pooled[~pooled.isnan()]
    return float(torch.quantile(pooled, q)) if pooled.numel() else math.nan


def pattern_thresholds(
    control_auroc: Sequence[torch.Tensor], control_selectivity: Sequence[torch.Tensor], control_spread: Sequence[torch.Tensor]
) -> dict[str, float]:
    """Thresholds of the roles from the control family's per-index values on one split (every control's d
    values pooled): ``on_objects`` and ``on_background`` (the ``CONTROL_QUANTILE`` and 1 − it of the object
    AUROC), ``selective`` (the ``CONTROL_QUANTILE`` of the instance selectivity) and ``spread`` (the median
    spread)."""
    return {
        "on_objects": pooled_quantile(control_auroc, CONTROL_QUANTILE),
        "on_background": pooled_quantile(control_auroc, 1 - CONTROL_QUANTILE),
        "selective": pooled_quantile(control_selectivity, CONTROL_QUANTILE),
        "spread": pooled_quantile(control_spread, 0.5),
    }


def assign_patterns(
    auroc: torch.Tensor, selectivity_: torch.Tensor, spread_: torch.Tensor, thresholds: dict[str, float]
) -> list[str]:
    """Each map index's role from its per-index means on one split and that split's ``thresholds``:
    ``object`` (object AUROC above random and instance selectivity above random), ``multi-object`` (above
    random on objects, not selective: it covers several instances), ``background`` (object AUROC below
    random), ``global`` (neither, and spread at least as much as a typical random map), else ``mixed``. A map
    without a selectivity score (no image with two instances) that is above random on objects is ``mixed``."""
    roles = []
    for a, s, p in zip(auroc.tolist(), selectivity_.tolist(), spread_.tolist()):
        if a > thresholds["on_objects"]:
            roles.append("mixed" if math.isnan(s) else "object" if s > thresholds["selective"] else "multi-object")
        elif a < thresholds["on_background"]:
            roles.append("background")
        elif p >= thresholds["spread"]:
            roles.append("global")
        else:
            roles.append("mixed")
    return roles


def count_patterns(roles: Sequence[str]) -> dict[str, int]:
    """``{role: count}`` for every role of ``PATTERN_ROLES`` and ``UNDECIDED`` (zeros included)."""
    return {role: sum(r == role for r in roles) for role in (*PATTERN_ROLES, UNDECIDED)}


def preferred_categories(calibration: PatternScores, heldout: PatternScores) -> tuple[list[str | None], torch.Tensor]:
    """Per map index, the category it prefers over the other categories, chosen on calibration (highest mean
    AUROC against the other categories' cells among categories with at least ``MIN_CATEGORY_IMAGES``
    calibration images), and that preference measured on held-out (d; NaN where no category qualifies)."""
    d = calibration.spread.numel()
    if not calibration.categories:
        return [None] * d, torch.full((d,), math.nan, dtype=torch.float64)
    usable = calibration.versus_images >= MIN_CATEGORY_IMAGES
    scores = calibration.category_vs_others.clone()
    scores[~usable] = math.nan
    names: list[str | None] = []
    values = torch.full((d,), math.nan, dtype=torch.float64)
    for m in range(d):
        column = scores[:, m]
        if bool(column.isnan().all()):
            names.append(None)
            continue
        best = int(torch.nan_to_num(column, nan=-math.inf).argmax())
        names.append(calibration.categories[best])
        values[m] = heldout.category_vs_others[best, m]
    return names, values


def category_records(heldout: PatternScores, m: int, top: int = TOP_CATEGORIES) -> list[dict[str, Any]]:
    """Map index ``m``'s categories on held-out, best first by AUROC against background: ``name``,
    ``auroc_heldout``, ``auroc_vs_others``, ``iou`` and ``images`` (at most ``top``; none without images)."""
    records = []
    for c, name in enumerate(heldout.categories):
        if int(heldout.category_images[c]) == 0:
            continue
        records.append(
            {
                "name": name,
                "auroc_heldout": float(heldout.category_auroc[c, m]),
                "auroc_vs_others": float(heldout.category_vs_others[c, m]),
                "iou": float(heldout.iou[c, m]),
                "images": int(heldout.category_images[c]),
            }
        )
    records.sort(key=lambda r: -r["auroc_heldout"] if not math.isnan(r["auroc_heldout"]) else math.inf)
    return records[:top]
