"""The shard format of a map extraction: ``OUT/shards/shard_NNNNN.npz`` (plain NumPy arrays, one shard of
consecutive images each, written atomically) and ``OUT/index.json``, the merged index written once every shard
is on disk. ``lewel.maps.extraction`` writes them, ``lewel.maps.atlas`` reads them; docs/atlas.md describes the arrays.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..files.checkpoints import atomic_write
from .statistics import PATTERNS, MapStatistics, map_statistics

FORMAT = "lewel-map-shards"
VERSION = 1
INDEX_NAME = "index.json"  #: the merged index, written last (its presence means the extraction is complete)
CONFIG_NAME = "extraction.json"  #: the settings of the extraction in OUT, written first
SHARD_DIR = "shards"
STATISTICS = tuple(f.name for f in fields(MapStatistics))  #: stored as ``stat_<name>`` arrays
STAT_DTYPES = {"blobs": np.int16, "pattern": np.int8}  #: the others are float32


# --- One shard ---------------------------------------------------------------------------------------------------


def shard_name(shard: int) -> str:
    return f"{SHARD_DIR}/shard_{shard:05d}.npz"


def shard_range(shard: int, shard_size: int, total: int) -> range:
    """The image indices of ``shard``: ``[shard·shard_size, min((shard + 1)·shard_size, total))``."""
    return range(shard * shard_size, min((shard + 1) * shard_size, total))


def write_shard(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """One NPZ (uncompressed), atomically: ``meta`` as a JSON string in the 0-d array ``meta``."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            np.savez(handle, meta=np.asarray(json.dumps(meta)), **arrays)

    atomic_write(path, write)


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``meta`` record of a shard (only that member is read)."""
    with np.load(path, allow_pickle=False) as shard:
        return json.loads(str(shard["meta"]))


def shard_arrays(
    items: list[dict[str, Any]], maps: list[torch.Tensor], shape: tuple[int, int, int, int], has_masks: bool
) -> dict[str, np.ndarray]:
    """The arrays of one shard from its readable items (in index order) and their maps (``V×d×h×w`` each,
    ``shape``)."""
    views, d, h, w = shape
    stacked = torch.stack(maps) if maps else torch.zeros(0, views, d, h, w)
    arrays: dict[str, np.ndarray] = {
        "index": np.asarray([it["index"] for it in items], dtype=np.int64),
        "ids": np.asarray([it["id"] for it in items], dtype=str) if items else np.zeros(0, dtype="<U1"),
        "sizes": np.asarray([it["size"] for it in items], dtype=np.int32).reshape(-1, 2),
        "labels": np.asarray([it["label"] for it in items], dtype=np.int32),
        "boxes": np.asarray([it["boxes"] for it in items], dtype=np.int32).reshape(-1, views, 4),
        "flips": np.asarray([it["flips"] for it in items], dtype=bool).reshape(-1, views),
        "maps": stacked.numpy().astype(np.float16),
    }
    if items:
        statistics = map_statistics(stacked.reshape(-1, d, h, w))
        values = {name: getattr(statistics, name).reshape(-1, views, d).numpy() for name in STATISTICS}
    else:
        values = {name: np.zeros((0, views, d)) for name in STATISTICS}
    for name, value in values.items():
        arrays[f"stat_{name}"] = value.astype(STAT_DTYPES.get(name, np.float32))
    if has_masks:
        arrays["coverage"] = np.asarray([it["coverage"] for it in items], dtype=np.float32).reshape(-1, views, h, w)
    return arrays


def finish_shard(
    out: Path, shard: int, entries: list[tuple[dict[str, Any], torch.Tensor | None]], shape: tuple[int, int, int, int],
    has_masks: bool, config: dict[str, Any],
) -> int:
    """Statistics and NPZ of one complete shard (in a writer thread); returns its number of images."""
    readable = [(item, maps) for item, maps in entries if maps is not None]
    arrays = shard_arrays([item for item, _ in readable], [maps for _, maps in readable], shape, has_masks)
    skipped = [{"index": it["index"], "id": it["id"], "reason": it["skipped"]} for it, maps in entries if maps is None]
    first = shard * config["shard_size"]
    write_shard(out / shard_name(shard), arrays, {"config": config, "shard": shard, "first": first, "count": len(entries), "skipped": skipped})
    return len(entries)


def same_extraction(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two configs describe the same extraction (the checkpoint's and data set's paths may differ)."""

    def key(config: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in config["data"].items() if k != "root"}
        checkpoint = {k: v for k, v in config["checkpoint"].items() if k != "path"}
        return {**config, "data": data, "checkpoint": checkpoint}

    return key(a) == key(b)


# --- The index of a finished extraction ----------------------------------------------------------------------

ARRAYS = {
    "maps": "N×V×d×h×w float16: the d maps of each of the V views of the N readable images (each sums to 1)",
    "index": "N int64: position of the image in the data set (ids of index.json's order)",
    "ids": "N unicode: the image's id (path relative to the data folder, or sceneNNNNNN)",
    "sizes": "N×2 int32: (width, height) of the original image",
    "labels": "N int32: class index into data.classes (-1 without labels)",
    "boxes": "N×V×4 int32: (x0, y0, x1, y1) of each view's crop in original pixels (view 0: the whole image)",
    "flips": "N×V bool: whether the view was mirrored after cropping",
    "stat_<name>": "N×V×d: lewel.maps.map_statistics of each map (pattern int8 into patterns, blobs int16, others float32)",
    "coverage": "N×V×h×w float32, data with masks only: share of each map cell covered by objects",
    "meta": "0-d unicode: JSON with the extraction config, the shard number, its first image and skipped images",
}


def write_index(out: str | os.PathLike) -> dict[str, Any]:
    """Merge the shards of ``out`` into ``out/index.json`` (atomically) and return it; raises ``ValueError``
    when a shard is missing or belongs to another extraction."""
    out = Path(out)
    config = json.loads((out / CONFIG_NAME).read_text())
    count = math.ceil(config["images"] / config["shard_size"])
    shards, skipped, extracted = [], [], 0
    for shard in range(count):
        path = out / shard_name(shard)
        if not path.is_file():
            raise ValueError(f"{path} is missing: run the extraction again to complete it")
        meta = read_meta(path)
        if not same_extraction(meta["config"], config):
            raise ValueError(f"{path} belongs to another extraction than {out / CONFIG_NAME}")
        images = meta["count"] - len(meta["skipped"])
        shards.append({"file": shard_name(shard), "first": meta["first"], "count": meta["count"], "images": images})
        skipped.extend(meta["skipped"])
        extracted += images
    index = {
        **config,
        "extracted": extracted,
        "skipped": skipped,
        "shards": shards,
        "patterns": list(PATTERNS),
        "statistics": list(STATISTICS),
        "arrays": ARRAYS,
    }
    atomic_write(out / INDEX_NAME, lambda temporary: temporary.write_text(json.dumps(index, indent=1) + "\n"))
    return index


def read_index(out: str | os.PathLike) -> dict[str, Any]:
    """The index of a finished extraction (``ValueError`` naming the problem otherwise)."""
    path = Path(out) / INDEX_NAME
    try:
        index = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: no readable index of an extraction (lewel maps writes it when done): {error}") from None
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise ValueError(f"{path}: not a {FORMAT} index of version {VERSION}")
    return index


def iter_shards(out: str | os.PathLike, index: dict[str, Any] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """The arrays of every shard of ``out`` in order (each shard's NPZ read whole)."""
    index = index if index is not None else read_index(out)
    for entry in index["shards"]:
        with np.load(Path(out) / entry["file"], allow_pickle=False) as shard:
            yield {name: shard[name] for name in shard.files if name != "meta"}
