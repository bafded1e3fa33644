"""Batch map extraction: every image of a data set through one model, written as NPZ shards with a JSON index.

``extract_maps(checkpoint, data, out)`` resizes each image whole to ``size×size`` (view 0) and draws
``views`` augmented views of it (``lewel.views.make_views``), extracts the alignment maps of every view and
writes, per shard of ``shard_size`` consecutive images, ``OUT/shards/shard_NNNNN.npz`` (plain NumPy arrays:
maps as float16, per-map statistics, image ids, sizes, labels, view boxes and flips, and for data with object
masks the objects' coverage of every view's cells). ``OUT/index.json`` lists the shards, the images skipped
as unreadable and everything needed to read the arrays (docs/atlas.md).

- **Resumable**: shards are written atomically (temporary file, then rename) and a shard already on disk for
  the same extraction settings is not computed again, so a killed run continues where it stopped.
- **Parallel**: under ``torchrun`` (``WORLD_SIZE`` > 1) rank r computes shards r, r + W, r + 2W ... on its
  own device; a gloo process group only synchronises (no tensors are exchanged); rank 0 writes the index once
  every rank is done. Shards do not depend on the number of processes: the views of image i are drawn from
  ``view_seed(seed, i)`` whichever rank makes them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from .augmentations import IMAGENET_MEAN, IMAGENET_STD
from .checkpoints import atomic_write
from .data.sources import Source, UnreadableImage, open_source
from .inference import LewelModel, MapsUnavailableError, load_model
from .mask_scores import view_coverage
from .profiles import HELDOUT_SEED, file_sha256
from .statistics import PATTERNS, MapStatistics, map_statistics
from .views import PRESETS, make_views, view_seed

FORMAT = "lewel-map-shards"
VERSION = 1
INDEX_NAME = "index.json"  #: the merged index, written last (its presence means the extraction is complete)
CONFIG_NAME = "extraction.json"  #: the settings of the extraction in OUT, written first
SHARD_DIR = "shards"
DEFAULT_SIZE = 224  #: input side (7×7 maps on a ResNet)
DEFAULT_SHARD_SIZE = 256  #: images per shard
DEFAULT_PRESET = "byol1"
SCENE_SEED = HELDOUT_SEED  #: ``scenes:N`` are the profile's held-out scenes (``SceneGenerator(size, 7_000_002)``)
STATISTICS = tuple(f.name for f in fields(MapStatistics))  #: stored as ``stat_<name>`` arrays
STAT_DTYPES = {"blobs": np.int16, "pattern": np.int8}  #: the others are float32
DTYPES = ("fp32", "bf16")
BARRIER_TIMEOUT = timedelta(hours=12)  #: how long a rank that finished waits for the others


# --- Preparing views (in data-loader workers) ---------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What makes two extractions the same (stored in ``extraction.json`` and every shard)."""

    size: int
    views: int
    preset: str
    seed: int
    shard_size: int
    dtype: str


class _Views(Dataset):
    """Item k: image ``indices[k]`` of ``source`` as its V = 1 + ``views`` views (``V×3×S×S`` uint8), boxes
    (``V×4``), flips (``V``), source size, label and, with masks, the objects' coverage of each view's
    ``grid`` cells (``V×h×w``); or the reason it was skipped."""

    def __init__(self, source: Source, indices: Sequence[int], settings: Settings, grid: tuple[int, int]) -> None:
        self.source, self.indices, self.settings, self.grid = source, list(indices), settings, grid

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> dict[str, Any]:
        index = self.indices[k]
        item: dict[str, Any] = {"index": index, "id": self.source.ids[index]}
        try:
            sample = self.source.load(index)
        except UnreadableImage as error:
            return {**item, "skipped": str(error)}
        image, mask, label = sample.image, sample.object_mask(), sample.label
        s = self.settings
        views = make_views(image, count=s.views, preset=s.preset, size=s.size, seed=view_seed(s.seed, index))
        item.update(
            images=torch.stack([v.image for v in views]),
            boxes=np.asarray([v.box for v in views], dtype=np.int32),
            flips=np.asarray([v.flip for v in views], dtype=bool),
            size=np.asarray(image.size, dtype=np.int32),
            label=label,
        )
        if mask is not None:
            item["coverage"] = np.stack(
                [view_coverage(mask, v.box, v.flip, self.grid).numpy().astype(np.float32) for v in views]
            )
        return item


def _as_list(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return items


# --- Running the model ---------------------------------------------------------------------------------------


class MapExtractor:
    """``model`` on ``device``, turning uint8 views ``B×3×S×S`` into maps ``B×d×h×w`` float32 on the CPU:
    normalised on the device as ``View.normalized`` does, in bf16 autocast when ``dtype == "bf16"``, channels_last
    on CUDA; the aligned projection p is skipped."""

    def __init__(self, model: LewelModel, device: torch.device, dtype: str = "fp32") -> None:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
        self.device, self.dtype = device, dtype
        self.channels_last = device.type == "cuda"
        self.model = model.to(device, memory_format=torch.channels_last) if self.channels_last else model.to(device)
        self.mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, non_blocking=True).float() / 255.0
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == "bf16"):
            maps = self.model.extract(x, aligned_projection=False).maps
        return maps.float().cpu()

    def grid(self, size: int) -> tuple[int, int]:
        """``(h, w)`` of the maps at input side ``size``."""
        maps = self(torch.zeros(1, 3, size, size, dtype=torch.uint8))
        return int(maps.shape[-2]), int(maps.shape[-1])


# --- Shards ---------------------------------------------------------------------------------------------------


def shard_name(shard: int) -> str:
    return f"{SHARD_DIR}/shard_{shard:05d}.npz"


def shard_range(shard: int, shard_size: int, total: int) -> range:
    """The image indices of ``shard``: ``[shard·shard_size, min((shard + 1)·shard_size, total))``."""
    return range(shard * shard_size, min((shard + 1) * shard_size, total))


def _write_shard(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    """One NPZ (uncompressed), atomically: ``meta`` as a JSON string in the 0-d array ``meta``."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            np.savez(handle, meta=np.asarray(json.dumps(meta)), **arrays)

    atomic_write(path, write)


def read_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The ``meta`` record of a shard (only that member is read)."""
    with np.load(path, allow_pickle=False) as shard:
        return json.loads(str(shard["meta"]))


def _shard_arrays(
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


def _finish_shard(
    out: Path, shard: int, entries: list[tuple[dict[str, Any], torch.Tensor | None]], shape: tuple[int, int, int, int],
    has_masks: bool, config: dict[str, Any],
) -> int:
    """Statistics and NPZ of one complete shard (in a writer thread); returns its number of images."""
    readable = [(item, maps) for item, maps in entries if maps is not None]
    arrays = _shard_arrays([item for item, _ in readable], [maps for _, maps in readable], shape, has_masks)
    skipped = [{"index": it["index"], "id": it["id"], "reason": it["skipped"]} for it, maps in entries if maps is None]
    first = shard * config["shard_size"]
    _write_shard(out / shard_name(shard), arrays, {"config": config, "shard": shard, "first": first, "count": len(entries), "skipped": skipped})
    return len(entries)


# --- The extraction ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """This process's rank, the world size and whether it joined a process group."""

    rank: int
    world_size: int
    joined: bool

    def barrier(self) -> None:
        if self.joined:
            dist.barrier()


def join_processes() -> Runtime:
    """Join the gloo process group ``torchrun`` describes (``WORLD_SIZE`` > 1), or run alone. gloo whatever
    the device: the group only synchronises the ranks."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Runtime(0, 1, False)
    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
        return Runtime(dist.get_rank(), world_size, True)
    return Runtime(dist.get_rank(), dist.get_world_size(), False)


def pick_device(device: str) -> torch.device:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU; anything else as torch reads it."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    return torch.device(device)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _config(checkpoint: Path, model: LewelModel, source: Source, settings: Settings, grid: tuple[int, int]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "checkpoint": {"file": checkpoint.name, "path": os.fspath(checkpoint.resolve()), "sha256": file_sha256(checkpoint)},
        "model": {"method": model.method, "backbone": model.backbone_name, "d": model.d, "h": model.h},
        "data": source.describe(),
        "images": len(source),
        "ids_sha256": _digest(source.ids),
        "has_masks": source.has_masks,
        "grid": list(grid),
        "views_per_image": 1 + settings.views,
        **{f.name: getattr(settings, f.name) for f in fields(settings)},
    }


def _same_extraction(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two configs describe the same extraction (the checkpoint's and data set's paths may differ)."""

    def key(config: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in config["data"].items() if k != "root"}
        checkpoint = {k: v for k, v in config["checkpoint"].items() if k != "path"}
        return {**config, "data": data, "checkpoint": checkpoint}

    return key(a) == key(b)


def _prepare_out(out: Path, config: dict[str, Any], runtime: Runtime) -> None:
    """Write ``extraction.json`` (rank 0) or check that the one there matches; drop this rank's leftovers."""
    path = out / CONFIG_NAME
    if runtime.rank == 0:
        if path.is_file():
            existing = json.loads(path.read_text())
            if not _same_extraction(existing, config):
                raise ValueError(
                    f"{out} holds shards of another extraction ({path}: checkpoint {existing['checkpoint']['file']}, "
                    f"{existing['images']} images, size {existing['size']}, views {existing['views']}); "
                    "use another --out or delete it"
                )
        else:
            atomic_write(path, lambda temporary: temporary.write_text(json.dumps(config, indent=1) + "\n"))
    runtime.barrier()
    if not _same_extraction(json.loads(path.read_text()), config):
        raise ValueError(f"{path} describes another extraction than this rank's")


def _pending(out: Path, shards: Sequence[int], config: dict[str, Any]) -> list[int]:
    """The shards of ``shards`` not yet on disk for ``config`` (leftover temporaries of them are removed)."""
    todo = []
    for shard in shards:
        path = out / shard_name(shard)
        for leftover in path.parent.glob(f".{path.name}.*.tmp"):
            leftover.unlink(missing_ok=True)
        if path.is_file():
            try:
                if _same_extraction(read_meta(path)["config"], config):
                    continue
            except (OSError, ValueError, KeyError, EOFError):
                pass
        todo.append(shard)
    return todo


def _batches(loader: DataLoader, extractor: MapExtractor) -> Iterator[tuple[dict[str, Any], torch.Tensor | None]]:
    """Each item of ``loader`` with its maps ``V×d×h×w`` (``None`` for skipped images)."""
    for items in loader:
        readable = [it for it in items if "skipped" not in it]
        maps = extractor(torch.cat([it["images"] for it in readable])) if readable else None
        views = readable[0]["images"].shape[0] if readable else 0
        position = 0
        for item in items:
            if "skipped" in item:
                yield item, None
            else:
                yield item, maps[position * views : (position + 1) * views]
                position += 1


def extract_maps(
    checkpoint: str | os.PathLike,
    data: str,
    out: str | os.PathLike,
    *,
    size: int = DEFAULT_SIZE,
    views: int = 0,
    preset: str = DEFAULT_PRESET,
    seed: int = 0,
    batch_size: int = 64,
    shard_size: int = DEFAULT_SHARD_SIZE,
    workers: int = 0,
    writers: int = 2,
    device: str = "auto",
    dtype: str = "fp32",
    num_groups: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any] | None:
    """Extract the maps of every image of ``data`` (``open_source``) into ``out`` (see the module docstring).

    ``workers`` data-loader processes decode the images and make the views; ``writers`` threads compute the
    per-map statistics and write the shards while the model runs on (with a GPU, the statistics are the main
    CPU cost per image). ``progress(done, total)`` counts this rank's images (skipped ones included) as
    their shards reach the disk. Returns the merged index on rank 0 (``None`` on the other ranks). Raises
    ``MapsUnavailableError`` for a model without maps, ``ValueError`` when ``out`` holds another
    extraction's shards.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
    if views < 0 or batch_size < 1 or shard_size < 1 or workers < 0 or seed < 0 or writers < 1:
        raise ValueError("views, seed and workers must be >= 0, batch_size, shard_size and writers >= 1")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {list(DTYPES)}, got {dtype!r}")
    runtime = join_processes()
    try:
        target = pick_device(device)
        model = load_model(checkpoint, num_groups=num_groups, map_location="cpu")
        if not model.has_maps:
            raise MapsUnavailableError(f"{checkpoint} is a {model.method} model without LEWEL's coupled head: it has no maps")
        source = open_source(data, size=size, seed=SCENE_SEED)
        settings = Settings(size, views, preset, seed, shard_size, dtype)
        extractor = MapExtractor(model, target, dtype)
        grid = extractor.grid(size)
        out = Path(out)
        config = _config(Path(checkpoint), model, source, settings, grid)
        _prepare_out(out, config, runtime)
        count = math.ceil(len(source) / shard_size)
        mine = list(range(runtime.rank, count, runtime.world_size))
        todo = _pending(out, mine, config)
        indices = [i for shard in todo for i in shard_range(shard, shard_size, len(source))]
        total = sum(len(shard_range(s, shard_size, len(source))) for s in mine)
        done = total - len(indices)
        if progress is not None:
            progress(done, total)
        loader = DataLoader(
            _Views(source, indices, settings, grid), batch_size=batch_size, num_workers=workers,
            collate_fn=_as_list, pin_memory=target.type == "cuda", persistent_workers=False,
        )
        pending: dict[int, list[tuple[dict[str, Any], torch.Tensor | None]]] = {}
        shape = (1 + views, int(model.d), *grid)
        with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="lewel-shards") as pool:
            writing: deque[Future[int]] = deque()

            def finished(block: bool) -> None:
                nonlocal done
                while writing and (block or writing[0].done() or len(writing) > 2 * writers):
                    done += writing.popleft().result()
                    if progress is not None:
                        progress(done, total)

            for item, maps in _batches(loader, extractor):
                shard = item["index"] // shard_size
                pending.setdefault(shard, []).append((item, maps))
                if len(pending[shard]) == len(shard_range(shard, shard_size, len(source))):
                    writing.append(pool.submit(_finish_shard, out, shard, pending.pop(shard), shape, source.has_masks, config))
                finished(block=False)
            finished(block=True)
        runtime.barrier()
        return write_index(out) if runtime.rank == 0 else None
    finally:
        if runtime.joined:
            dist.destroy_process_group()


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
        if not _same_extraction(meta["config"], config):
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
