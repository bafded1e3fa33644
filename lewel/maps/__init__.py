"""The alignment maps and their measurement: what a map looks like, where it looks, and what a model's maps do.

- ``pattern_names``: the names of the paper's three patterns (torch-free); ``statistics``: per-map statistics
  and the patterns; ``selection``: choosing and ordering the maps to show;
- ``mask_scores``: scores against object masks; ``frames``: the frame geometry of views (maps warped into the
  image, cross-view agreement); ``analysis``: one image's views through a model; ``looking``: which maps look at
  a point; ``patterns``: Figure 5's measured patterns and the per-category dissection;
- ``controls``: random networks of the same shape; ``profiles``: a model's map profile against them;
  ``evaluation``: ``lewel eval-maps``; ``extraction``: ``lewel maps``, a data set's maps in shards (``shards``:
  their format); ``atlas``: the record of ``lewel atlas``, the images where each map index concentrates most
  (``lewel.drawing.atlas_folder`` draws and writes it).

The statistics, mask scores, frame geometry and map selection are offered here too (``lewel.maps.map_statistics``,
``from lewel.maps import select_maps``), imported on first use (module ``__getattr__``), so that importing
``lewel.maps`` (or one of its torch-free modules, as the drawing does) does not load torch. docs/maps.md states
every definition and threshold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .frames import (
        AGREEMENT_MIN_MASS,
        Box,
        crop_coverage,
        cross_view_agreement,
        frame_density,
        frame_grid,
        intersect_boxes,
        pairwise_agreement,
        warp_to_image,
    )
    from .mask_scores import (
        BACKGROUND_CELL,
        IGNORED_COVERAGE,
        OBJECT_CELL,
        POINTING_COVERAGE,
        MapScores,
        as_object_mask,
        cell_labels,
        map_auroc,
        object_coverage,
        object_mass_ratio,
        pointing_chance,
        pointing_hits,
        score_maps,
        summarize_scores,
        view_coverage,
    )
    from .pattern_names import PATTERNS
    from .selection import ORDERS, rank_maps, select_maps, top_per_pattern
    from .statistics import (
        BLOB_THRESHOLD,
        GLOBAL_AREA,
        MIN_BLOB_MASS,
        TOP_FRACTION,
        ArrayLike,
        MapStatistics,
        classify,
        map_statistics,
    )


def _from(module: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, module)


#: public name -> the submodule that defines it
_SOURCES: dict[str, str] = {
    # statistics and patterns, and the choice of maps
    **_from(".pattern_names", "PATTERNS"),
    **_from(".statistics", "BLOB_THRESHOLD", "MIN_BLOB_MASS", "GLOBAL_AREA", "TOP_FRACTION", "ArrayLike",
            "MapStatistics", "classify", "map_statistics"),
    **_from(".selection", "ORDERS", "rank_maps", "top_per_pattern", "select_maps"),
    # scores against object masks
    **_from(".mask_scores", "POINTING_COVERAGE", "OBJECT_CELL", "BACKGROUND_CELL", "IGNORED_COVERAGE", "as_object_mask",
            "object_coverage", "view_coverage", "object_mass_ratio", "pointing_hits", "pointing_chance", "cell_labels",
            "map_auroc", "MapScores", "score_maps", "summarize_scores"),
    # frame geometry of views
    **_from(".frames", "Box", "frame_grid", "crop_coverage", "frame_density", "warp_to_image", "intersect_boxes",
            "AGREEMENT_MIN_MASS", "pairwise_agreement", "cross_view_agreement"),
}

__all__ = list(_SOURCES)


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES)
