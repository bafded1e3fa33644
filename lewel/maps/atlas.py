"""The map atlas: for every map index of a model, where across a whole data set that map concentrates most.

``build_atlas(out)`` reads the shards ``lewel.maps.extraction.extract_maps`` wrote to ``out`` and, streaming
shard by shard, keeps for each map index m:

- its **top N** (image, view) pairs under two scores of how concentrated map m is there (higher first; ties
  go to the lower image index, then the lower view): ``peak_ratio``, the peak ÷ the uniform value 1/(h·w);
  and ``stretched_mass``, the share of the map *stretched to its own range* ((p − min)/(max − min), as the
  maps are drawn) held by its ⌈10 %⌉ highest cells (``TOP_FRACTION``), which ranks the shape of a nearly
  flat map rather than its tiny absolute height; each with the peak cell (row, column, and its box in
  original pixels);
- the means of its ``lewel.maps.map_statistics`` and the shares of the three patterns;
- with object masks: its AUROC (``lewel.maps.map_auroc``) and pointing rate (``lewel.maps.pointing_hits``,
  next to its chance), means over the (image, view) pairs that have both object and background cells, as
  ``lewel.maps.profiles.index_means`` takes them.

When the checkpoint has a current profile with measured patterns (``lewel.maps.profiles``, version 4), each index
also gets its measured ``pattern``, its ``top_categories`` (name and held-out AUROC, best first) and its
preferred ``category``, and the atlas ``measured_patterns`` (the counts next to the random controls').

This module measures; it draws nothing. ``lewel.drawing.atlas_folder`` writes the atlas as a folder
(``atlas.json``, the page of ``lewel.drawing.atlas_page`` and the thumbnails under ``THUMB_DIR`` that the records
name) and ``make_atlas`` builds one on demand; the service reads and serves atlases with ``api.atlas_files``
(``api/routes/atlas.py``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..models.heads import map_aligned_index, map_group
from .mask_scores import map_auroc, pointing_chance, pointing_hits
from .profiles.queries import has_patterns
from .profiles.sidecar import ProfileError, find_profile
from .profiles.text import patterns_line
from .shards import iter_shards, read_index
from .statistics import PATTERNS, TOP_FRACTION

ATLAS_FORMAT = "lewel-map-atlas"
ATLAS_VERSION = 1
ATLAS_NAME = "atlas.json"  #: the atlas record in an atlas folder
THUMB_DIR = "thumbs"  #: the folder of the thumbnails the records name (``thumbs/m0003_i0000012_v0.png``)
DEFAULT_TOP = 8
CRITERIA = ("peak_ratio", "stretched_mass")
MEAN_STATISTICS = ("entropy", "normalized_entropy", "effective_area", "active_area", "peak_ratio", "top_mass", "blobs")


# --- Scores ----------------------------------------------------------------------------------------------------


def concentration(maps: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
    """Scores of maps ``...×h×w`` (renormalised to sum 1, float64): ``peak_ratio`` (max × h·w),
    ``stretched_mass`` (the ⌈``TOP_FRACTION`` · h·w⌉ highest cells' share of the range-stretched map; a flat
    map counts as uniform) and ``peak`` (flat index of the first largest cell), each of shape ``...``."""
    p = np.asarray(maps, dtype=np.float64)
    cells = p.shape[-1] * p.shape[-2]
    flat = p.reshape(*p.shape[:-2], cells)
    flat = flat / flat.sum(axis=-1, keepdims=True)
    high, low = flat.max(axis=-1, keepdims=True), flat.min(axis=-1, keepdims=True)
    span = high - low
    stretched = np.where(span > 0, (flat - low) / np.where(span > 0, span, 1.0), 1.0)
    k = math.ceil(TOP_FRACTION * cells)
    top = -np.sort(-stretched, axis=-1)[..., :k].sum(axis=-1)
    return {
        "peak_ratio": high[..., 0] * cells,
        "stretched_mass": top / stretched.sum(axis=-1),
        "peak": flat.argmax(axis=-1),
    }


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class _Top:
    """The best ``n`` (image, view) entries of each of d maps under one score, merged shard by shard.

    Kept per map (``d×k``, k <= n): ``score``, ``order`` (image index × V + view, the tie-breaker),
    ``maps`` (``d×k×h×w``), and the entry's box, flip, image size and id."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.fields: dict[str, np.ndarray] | None = None

    def merge(self, candidates: dict[str, np.ndarray]) -> None:
        """``candidates``: the same fields with ``d×M`` leading axes."""
        merged = candidates if self.fields is None else {
            name: np.concatenate([self.fields[name], value], axis=1) for name, value in candidates.items()
        }
        order = np.lexsort((merged["order"], -merged["score"]), axis=-1)[:, : self.n]
        self.fields = {
            name: np.take_along_axis(value, order.reshape(order.shape + (1,) * (value.ndim - 2)), axis=1)
            for name, value in merged.items()
        }


# --- Building ------------------------------------------------------------------------------------------------------


def _accumulate(out: Path, index: dict[str, Any], top: int, progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    """One pass over the shards: the tops of both criteria, sums of the statistics, AUROC and pointing."""
    d, h = index["model"]["d"], index["model"]["h"]
    views = index["views_per_image"]
    tops = {name: _Top(top) for name in CRITERIA}
    sums = {name: np.zeros(d) for name in MEAN_STATISTICS}
    patterns = np.zeros((d, len(PATTERNS)))
    entries = 0
    auroc_sum, auroc_count = np.zeros(d), np.zeros(d)
    hits, chance, scored_views = np.zeros(d), 0.0, 0
    for done, shard in enumerate(iter_shards(out, index), start=1):
        count = len(shard["index"])
        if count:
            maps = shard["maps"]  # N×V×d×h×w
            grid = maps.shape[-2:]
            flat_maps = maps.reshape(count * views, d, *grid)
            scores = concentration(flat_maps)  # fields (N·V)×d
            order = (shard["index"][:, None] * views + np.arange(views)[None]).reshape(-1)
            per_entry = {
                "order": np.broadcast_to(order[None], (d, order.size)),
                "view": np.broadcast_to(np.tile(np.arange(views), count)[None], (d, order.size)),
                "maps": flat_maps.transpose(1, 0, 2, 3),
                "box": np.broadcast_to(shard["boxes"].reshape(-1, 4)[None], (d, order.size, 4)),
                "flip": np.broadcast_to(shard["flips"].reshape(-1)[None], (d, order.size)),
                "size": np.broadcast_to(np.repeat(shard["sizes"], views, axis=0)[None], (d, order.size, 2)),
                "id": np.broadcast_to(np.repeat(shard["ids"].astype(object), views)[None], (d, order.size)),
                "peak": scores["peak"].T,
                **{name: scores[name].T for name in CRITERIA},
            }
            for name in CRITERIA:
                tops[name].merge({**per_entry, "score": per_entry[name]})
            for name in MEAN_STATISTICS:
                sums[name] += shard[f"stat_{name}"].astype(np.float64).sum(axis=(0, 1))
            pattern = shard["stat_pattern"].reshape(-1, d)
            for k in range(len(PATTERNS)):
                patterns[:, k] += (pattern == k).sum(axis=0)
            entries += count * views
            if "coverage" in shard:
                coverage = torch.from_numpy(shard["coverage"].reshape(count * views, *grid).astype(np.float64))
                tensor = torch.from_numpy(flat_maps.astype(np.float64))
                auroc = map_auroc(tensor, coverage).numpy()
                valid = ~np.isnan(auroc[:, 0])
                auroc_sum += auroc[valid].sum(axis=0)
                auroc_count += valid.sum()
                hits += pointing_hits(tensor[valid], coverage[valid]).numpy().sum(axis=0)
                chance += float(pointing_chance(coverage[valid]).sum())
                scored_views += int(valid.sum())
        if progress is not None:
            progress(done, len(index["shards"]))
    return {
        "d": d, "h": h, "tops": tops, "sums": sums, "patterns": patterns, "entries": entries,
        "auroc": (auroc_sum, auroc_count), "pointing": (hits, chance, scored_views),
    }


def _cell_box(box: np.ndarray, flip: bool, cell: tuple[int, int], grid: tuple[int, int]) -> list[float]:
    """The box ``[x0, y0, x1, y1]`` (original pixels) of view cell ``(row, col)`` of a view cropped at ``box``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    rows, cols = grid
    row, col = cell
    col = cols - 1 - col if flip else col
    width, height = (x1 - x0) / cols, (y1 - y0) / rows
    return [x0 + col * width, y0 + row * height, x0 + (col + 1) * width, y0 + (row + 1) * height]


def _records(acc: dict[str, Any], index: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per map index: means, pattern shares, AUROC, pointing and both top lists."""
    d, h, views = acc["d"], acc["h"], index["views_per_image"]
    grid = tuple(index["grid"])
    entries = max(acc["entries"], 1)
    auroc_sum, auroc_count = acc["auroc"]
    hits, chance, scored = acc["pointing"]
    records = []
    for m in range(d):
        lists: dict[str, list[dict[str, Any]]] = {}
        for name in CRITERIA:
            fields = acc["tops"][name].fields
            chosen = []
            for rank in range(0 if fields is None else fields["score"].shape[1]):
                order = int(fields["order"][m, rank])
                cell = divmod(int(fields["peak"][m, rank]), grid[1])
                image_index, view = divmod(order, views)
                chosen.append({
                    "rank": rank,
                    "image_index": image_index,
                    "id": str(fields["id"][m, rank]),
                    "view": view,
                    "score": float(fields["score"][m, rank]),
                    "peak_ratio": float(fields["peak_ratio"][m, rank]),
                    "stretched_mass": float(fields["stretched_mass"][m, rank]),
                    "cell": list(cell),
                    "cell_box": _cell_box(fields["box"][m, rank], bool(fields["flip"][m, rank]), cell, grid),
                    "box": [int(v) for v in fields["box"][m, rank]],
                    "flip": bool(fields["flip"][m, rank]),
                    "image_size": [int(v) for v in fields["size"][m, rank]],
                    "thumbnail": f"{THUMB_DIR}/m{m:04d}_i{image_index:07d}_v{view}.png",
                })
            lists[name] = chosen
        records.append({
            "index": m,
            "group": map_group(m, d, h),
            "aligned": map_aligned_index(m, d, h),
            "statistics": {name: float(acc["sums"][name][m] / entries) for name in MEAN_STATISTICS},
            "patterns": {name: float(acc["patterns"][m, k] / entries) for k, name in enumerate(PATTERNS)},
            "auroc": _finite(auroc_sum[m] / auroc_count[m]) if auroc_count[m] else None,
            "auroc_views": int(auroc_count[m]),
            "pointing": _finite(hits[m] / scored) if scored else None,
            "pointing_chance": _finite(chance / scored) if scored else None,
            "top": lists,
        })
    return records


ATLAS_CATEGORIES = 3  #: categories per map index the atlas keeps from the profile


def _measured(checkpoint: dict[str, Any], d: int) -> dict[str, Any] | None:
    """The profile next to the extracted checkpoint (``checkpoint["path"]``) when it is current and has
    measured patterns, else ``None`` (no sidecar, a stale or unreadable one, or one without patterns)."""
    path = checkpoint.get("path")
    if not path:
        return None
    try:
        profile = find_profile(path, d=d)
    except (ProfileError, OSError):
        return None
    return profile if has_patterns(profile) else None


def _measured_fields(profile: dict[str, Any] | None, m: int) -> dict[str, Any]:
    """Map index ``m``'s measured pattern, top categories and preferred category from ``profile``."""
    if profile is None:
        return {"pattern": None, "pattern_leaning": None, "pattern_confidence": None, "top_categories": [], "category": None}
    record = profile["maps"][m]
    preferred = record.get("category")
    return {
        "pattern": record.get("pattern"),
        "pattern_leaning": record.get("pattern_leaning"),
        "pattern_confidence": record.get("pattern_confidence"),
        "top_categories": [
            {"name": c["name"], "auroc_heldout": c.get("auroc_heldout")} for c in (record.get("categories") or [])[:ATLAS_CATEGORIES]
        ],
        "category": None if not preferred else {"name": preferred["name"], "significant": bool(preferred.get("significant"))},
    }


def build_atlas(
    out: str | os.PathLike,
    *,
    top: int = DEFAULT_TOP,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], dict[tuple[int, int, int], np.ndarray]]:
    """The atlas of the extraction in ``out`` as a JSON-friendly dict, and the maps its thumbnails show:
    ``(map index, image index, view) -> h×w`` float32. ``progress(done, total)`` counts shards."""
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    out = Path(out)
    index = read_index(out)
    acc = _accumulate(out, index, top, progress)
    records = _records(acc, index)
    profile = _measured(index["checkpoint"], acc["d"])
    for record in records:
        record.update(_measured_fields(profile, record["index"]))
    shown: dict[tuple[int, int, int], np.ndarray] = {}
    for name in CRITERIA:
        fields = acc["tops"][name].fields
        if fields is None:
            continue
        for m in range(acc["d"]):
            for rank in range(fields["score"].shape[1]):
                image_index, view = divmod(int(fields["order"][m, rank]), index["views_per_image"])
                shown[m, image_index, view] = fields["maps"][m, rank].astype(np.float32)
    aurocs = [r["auroc"] for r in records if r["auroc"] is not None]
    atlas = {
        "format": ATLAS_FORMAT,
        "version": ATLAS_VERSION,
        "extraction": os.fspath(out.resolve()),
        "checkpoint": index["checkpoint"],
        "model": index["model"],
        "data": index["data"],
        "size": index["size"],
        "grid": index["grid"],
        "views_per_image": index["views_per_image"],
        "preset": index["preset"],
        "seed": index["seed"],
        "images": index["extracted"],
        "skipped": len(index["skipped"]),
        "entries": acc["entries"],
        "has_masks": index["has_masks"],
        "top": top,
        "criteria": {
            "peak_ratio": "peak value x h*w (1.0 = uniform)",
            "stretched_mass": f"share of the map stretched to its range ((p - min) / (max - min)) in its "
            f"ceil({TOP_FRACTION} * h*w) highest cells",
        },
        "mean_auroc": _finite(sum(aurocs) / len(aurocs)) if aurocs else None,
        "measured_patterns": patterns_line(profile["summary"]) if profile is not None else None,
        "maps": records,
    }
    return atlas, shown
