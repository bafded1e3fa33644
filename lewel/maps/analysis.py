"""One image, several views, one model: the alignment maps of every view with their statistics, the maps
warped back into the image frame, and how well the views agree, map index by map index.

This is what the API's ``/v1/maps`` and ``/v1/embeddings``, the app and notebooks compute; they differ only
in how they show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..inference import Extraction, LewelModel
from ..models.heads import map_aligned_index, map_group
from ..views.crops import View, make_views, views_batch
from .frames import crop_coverage, cross_view_agreement, frame_grid, warp_to_image
from .mask_scores import map_auroc, pointing_chance, pointing_hits, view_coverage
from .patterns import instance_aurocs, instance_cells
from .statistics import MapStatistics, map_statistics

Extractor = Callable[..., Extraction]  #: ``(images, *, aligned_projection) -> Extraction``


@dataclass(frozen=True)
class MapAnalysis:
    """Maps of V views of one image (d maps on an h×w grid, a rows×cols frame grid over the image).

    - ``views``: the V ``View``s (view 0 = the whole image);
    - ``maps``: ``V×d×h×w`` float32, each map sums to 1 over its view;
    - ``statistics``: ``map_statistics(maps)``, fields ``V×d``;
    - ``frame_maps``: ``V×d×rows×cols`` float32, ``warp_to_image`` of each view (mass per frame cell, NaN
      where the view's crop does not reach); ``coverage``: ``V×rows×cols`` share of each cell inside the crop;
    - ``agreement``: ``d`` float64, ``cross_view_agreement`` over all pairs of views (NaN with one view);
    - ``groups``, ``aligned``: ``d`` int64, the channel group and aligned representation of each map.
    """

    views: list[View]
    maps: torch.Tensor
    statistics: MapStatistics
    frame_maps: torch.Tensor
    coverage: torch.Tensor
    agreement: torch.Tensor
    groups: torch.Tensor
    aligned: torch.Tensor

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.maps.shape[-2]), int(self.maps.shape[-1])

    @property
    def frame_grid(self) -> tuple[int, int]:
        return int(self.frame_maps.shape[-2]), int(self.frame_maps.shape[-1])

    def view_statistics(self, view: int) -> MapStatistics:
        """The statistics of one view's maps (fields of shape ``d``)."""
        return MapStatistics(**{name: value[view] for name, value in vars(self.statistics).items()})


def extract_views(
    model: LewelModel,
    image: Image.Image | torch.Tensor,
    *,
    views: int = 0,
    preset: str = "byol1",
    size: int = 224,
    seed: int = 0,
    aligned_projection: bool = True,
    extract: Extractor | None = None,
) -> tuple[list[View], Extraction]:
    """Make view 0 and ``views`` augmented views (``lewel.views.make_views``) and run them through the model
    as one batch; outputs are on the CPU. ``aligned_projection=False`` skips the aligned embeddings (maps
    only: cheaper). ``extract(images, aligned_projection=...)`` replaces ``model.extract`` (e.g. a
    micro-batching queue)."""
    made = make_views(image, count=views, preset=preset, size=size, seed=seed)
    run = extract if extract is not None else model.extract
    return made, run(views_batch(made), aligned_projection=aligned_projection).to("cpu")


def analyze_maps(views: list[View], extraction: Extraction, *, frame_cells: int = 32) -> MapAnalysis:
    """Statistics, frame-warped maps and cross-view agreement of ``extraction.maps`` (``V×d×h×w`` for the
    V ``views``). ``frame_cells`` is the number of frame-grid cells along the image's longer side. Raises
    ``MapsUnavailableError`` for a model without LEWEL's coupled head."""
    maps = extraction.maps.float()
    source_size = views[0].source_size
    grid = frame_grid(source_size, frame_cells)
    frame = torch.stack([warp_to_image(maps[i], v.box, v.flip, source_size, grid) for i, v in enumerate(views)])
    coverage = torch.stack([crop_coverage(v.box, source_size, grid) for v in views])
    agreement = cross_view_agreement(list(maps), [v.box for v in views], [v.flip for v in views])
    d, h = int(maps.shape[1]), int(extraction.h)
    return MapAnalysis(
        views=views,
        maps=maps,
        statistics=map_statistics(maps),
        frame_maps=frame.float(),
        coverage=coverage.float(),
        agreement=agreement,
        groups=torch.tensor([map_group(m, d, h) for m in range(d)], dtype=torch.int64),
        aligned=torch.tensor([map_aligned_index(m, d, h) for m in range(d)], dtype=torch.int64),
    )


@dataclass(frozen=True)
class MaskScores:
    """Every view's maps scored against one object mask of the source image (V views, d maps):
    ``auroc`` ``V×d`` (NaN for a view whose cells are not both object and background), ``pointing`` ``V×d``
    bool, and per view ``object_share`` (mean cell coverage) and ``pointing_chance``."""

    auroc: torch.Tensor
    pointing: torch.Tensor
    object_share: torch.Tensor
    pointing_chance: torch.Tensor


def score_views(analysis: MapAnalysis, mask: torch.Tensor) -> MaskScores:
    """Score ``analysis``'s maps against ``mask`` (``H×W`` bool in source pixels, e.g. from
    ``lewel.files.images.decode_mask``): each view's cells get the share of its crop of the mask
    (``lewel.maps.view_coverage``), then ``map_auroc`` and ``pointing_hits`` as in a profile."""
    width, height = analysis.views[0].source_size
    if tuple(mask.shape) != (height, width):
        raise ValueError(f"the mask is {tuple(mask.shape)} (H×W), the image {height}×{width}")
    coverage = torch.stack([view_coverage(mask, v.box, v.flip, analysis.grid) for v in analysis.views])
    return MaskScores(
        auroc=map_auroc(analysis.maps, coverage),
        pointing=pointing_hits(analysis.maps, coverage),
        object_share=coverage.mean(dim=(-2, -1)),
        pointing_chance=pointing_chance(coverage),
    )


@dataclass(frozen=True)
class InstanceScores:
    """Every view's maps scored against each instance of an instance-coded mask (V views, K instances, d
    maps): ``ids`` (K, the mask's value of each instance), ``auroc`` ``V×K×d`` (instance k's cells against
    the view's background cells, ``lewel.maps.patterns.instance_aurocs``; NaN where the view has no cell of the
    instance or no background cell), ``cells`` ``V×K`` (cells of the view's grid the instance owns) and
    ``share`` ``V×K`` (the instance's share of the view's pixels)."""

    ids: tuple[int, ...]
    auroc: torch.Tensor
    cells: torch.Tensor
    share: torch.Tensor


def score_instances(
    analysis: MapAnalysis, objects: np.ndarray | torch.Tensor, instances: np.ndarray, ids: tuple[int, ...]
) -> InstanceScores:
    """Score ``analysis``'s maps against each instance of one image: ``objects`` (``H×W`` object mask,
    bool or int8 with ignored pixels) and ``instances`` (``H×W`` int16, 0 none, k + 1 instance k; e.g.
    ``lewel.files.images.read_mask``). Each view's cells are labelled as a profile labels them
    (``lewel.maps.patterns.instance_cells`` on the view's crop): background where the objects cover at most
    ``BACKGROUND_CELL`` of the cell, instance k where instance k covers at least ``OBJECT_CELL``."""
    width, height = analysis.views[0].source_size
    if tuple(instances.shape) != (height, width):
        raise ValueError(f"the instances are {tuple(instances.shape)} (H×W), the image {height}×{width}")
    count, grid = len(ids), analysis.grid
    aurocs, cells, shares = [], [], []
    for v, view in enumerate(analysis.views):
        x0, y0, x1, y1 = (int(c) for c in view.box)
        crop = instances[y0:y1, x0:x1]
        crop = np.ascontiguousarray(crop[:, ::-1] if view.flip else crop)
        labelled = instance_cells(crop, ("",) * count, view_coverage(objects, view.box, view.flip, grid), grid).labels
        values = analysis.maps[v].reshape(analysis.maps.shape[1], -1).to(torch.float64)
        aurocs.append(instance_aurocs(values, labelled.flatten(), count))
        cells.append(torch.stack([(labelled == k + 1).sum() for k in range(count)]) if count else torch.zeros(0, dtype=torch.int64))
        shares.append(torch.tensor([float((crop == k + 1).mean()) for k in range(count)], dtype=torch.float64))
    return InstanceScores(ids=tuple(ids), auroc=torch.stack(aurocs), cells=torch.stack(cells), share=torch.stack(shares))


def grouped_aligned_features(extraction: Extraction) -> torch.Tensor:
    """The aligned representations ``B×(d/h)×D`` with their channel groups made explicit:
    ``B×(d/h)×h×(D/h)``, where ``[b, n, g]`` is channel group g of the feature map pooled with map
    ``g·(d/h) + n`` (the contiguous grouping of ``lewel.models.heads.group_aggregate``)."""
    aligned = extraction.aligned_features
    if extraction.h is None:
        raise ValueError("the extraction has no channel groups")
    batch, count, channels = aligned.shape
    return aligned.reshape(batch, count, extraction.h, channels // extraction.h)
