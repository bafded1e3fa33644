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

The shard format (writing and reading the NPZ shards and the index) is ``lewel.maps.shards``; the process group is
``lewel.distributed``'s, shared with training.
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
from torch.utils.data import DataLoader, Dataset

from ..data.sources import Source, UnreadableImage, open_source
from ..distributed import Runtime, join_processes
from ..files.checkpoints import atomic_write
from ..inference import LewelModel, MapsUnavailableError, load_model
from ..views.augmentations import IMAGENET_MEAN, IMAGENET_STD
from ..views.crops import PRESETS, make_views, view_seed
from .mask_scores import view_coverage
from .profiles.images import HELDOUT_SEED
from .profiles.sidecar import file_sha256
from .shards import (
    CONFIG_NAME,
    FORMAT,
    VERSION,
    finish_shard,
    read_meta,
    same_extraction,
    shard_name,
    shard_range,
    write_index,
)

DEFAULT_SIZE = 224  #: input side (7×7 maps on a ResNet)
DEFAULT_SHARD_SIZE = 256  #: images per shard
DEFAULT_PRESET = "byol1"
SCENE_SEED = HELDOUT_SEED  #: ``scenes:N`` are the profile's held-out scenes (``SceneGenerator(size, 7_000_002)``)
DTYPES = ("fp32", "bf16")
BARRIER_TIMEOUT = timedelta(hours=12)  #: how long a rank that finished waits for the others


# --- Preparing views (in data-loader workers) ---------------------------------------------------------------


@dataclass(frozen=True)
class ExtractionSettings:
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

    def __init__(self, source: Source, indices: Sequence[int], settings: ExtractionSettings, grid: tuple[int, int]) -> None:
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


# --- The extraction ---------------------------------------------------------------------------------------------


def pick_device(device: str) -> torch.device:
    """``auto``: ``cuda:LOCAL_RANK`` when CUDA is available, else the CPU; anything else as torch reads it."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    return torch.device(device)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _config(checkpoint: Path, model: LewelModel, source: Source, settings: ExtractionSettings, grid: tuple[int, int]) -> dict[str, Any]:
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


def _prepare_out(out: Path, config: dict[str, Any], runtime: Runtime) -> None:
    """Write ``extraction.json`` (rank 0) or check that the one there matches; drop this rank's leftovers."""
    path = out / CONFIG_NAME
    if runtime.rank == 0:
        if path.is_file():
            existing = json.loads(path.read_text())
            if not same_extraction(existing, config):
                raise ValueError(
                    f"{out} holds shards of another extraction ({path}: checkpoint {existing['checkpoint']['file']}, "
                    f"{existing['images']} images, size {existing['size']}, views {existing['views']}); "
                    "use another --out or delete it"
                )
        else:
            atomic_write(path, lambda temporary: temporary.write_text(json.dumps(config, indent=1) + "\n"))
    runtime.barrier()
    if not same_extraction(json.loads(path.read_text()), config):
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
                if same_extraction(read_meta(path)["config"], config):
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
    runtime = join_processes("gloo", timeout=BARRIER_TIMEOUT)
    try:
        target = pick_device(device)
        model = load_model(checkpoint, num_groups=num_groups, map_location="cpu")
        if not model.has_maps:
            raise MapsUnavailableError(f"{checkpoint} is a {model.method} model without LEWEL's coupled head: it has no maps")
        source = open_source(data, size=size, seed=SCENE_SEED)
        settings = ExtractionSettings(size, views, preset, seed, shard_size, dtype)
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
                    writing.append(pool.submit(finish_shard, out, shard, pending.pop(shard), shape, source.has_masks, config))
                finished(block=False)
            finished(block=True)
        runtime.barrier()
        return write_index(out) if runtime.rank == 0 else None
    finally:
        runtime.leave()
