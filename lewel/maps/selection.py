"""Choosing the maps to show: ordering one image's maps by index or by pattern, and the most typical maps of
each of the paper's three patterns. The statistics and patterns these choices read are ``lewel.maps.statistics``'s;
docs/maps.md states every definition and threshold used here.
"""

from __future__ import annotations

import torch

from .statistics import PATTERNS, MapStatistics

__all__ = ["ORDERS", "rank_maps", "top_per_pattern", "select_maps"]

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
