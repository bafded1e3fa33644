"""Training data: the data source named by ``--data``, per-sample seeded two-view augmentation, and an
epoch-aware distributed sampler that can resume in the middle of an epoch."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset, DistributedSampler, Sampler

from ..data.folders import ImageFiles
from ..data.sources import COCO_PREFIX, MIX, VOC_PREFIX, Source, UnreadableImage, masked_folder_layout, open_source, scene_count, scene_kind

TRAIN_SCENES = 10_000  #: ``scenes`` without a count, for training
MIX_SEED_OFFSET = 7_000_003  #: part k of a mix draws with ``seed + k * MIX_SEED_OFFSET``: no two parts share a scene


class MixedScenes(ConcatDataset):
    """The parts of a mix of generated scenes, one after the other (``torch.utils.data.ConcatDataset``); every
    part draws the same cut-outs, so the labels share ``classes``."""

    def __init__(self, parts: list[Dataset]) -> None:
        super().__init__(parts)
        self.classes = parts[0].classes  # type: ignore[attr-defined]


class SourceImages(Dataset):
    """``(PIL image, label)`` for each image of a masked ``lewel.data.sources.Source`` (COCO, VOC, a masked
    folder): training and kNN use the images only. An unreadable image is replaced by the next readable one,
    as ``ImageFiles`` does; the source's ``describe()`` names them in the error when none can be read."""

    def __init__(self, source: Source) -> None:
        self.source, self.classes = source, list(source.classes)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        for offset in range(len(self.source)):
            try:
                sample = self.source.load((index + offset) % len(self.source))
            except UnreadableImage:
                continue
            return sample.image, sample.label
        raise UnreadableImage(f"none of the {len(self.source)} images of {self.source.describe()} can be read")


def training_images(spec: str, *, image_size: int, seed: int, split: str = "train", shared_backdrops: int = 0) -> Dataset:
    """A dataset of ``(PIL image, label)`` from ``spec`` (``lewel.data.sources``): ``scenes[:N]`` for N
    generated multi-object scenes of ``image_size`` px (default 10,000; the ``val`` split uses the seed
    ``seed + VAL_SEED_OFFSET``; ``textured[:N]`` on the ``train`` backdrop pool, its ``val`` split on the held-out
    pool), the images of ``coco:``, ``voc:`` or ``images/`` + ``masks/`` sources, or a
    folder (ImageFolder tree or flat). Generated specs joined by ``+`` (``scenes:2048+textured:2048``) mix: part
    k is drawn with the seed ``seed + k * MIX_SEED_OFFSET``, so the parts never share a scene's objects.
    ``shared_backdrops`` K > 0: the train split's generated scenes take K backgrounds in turn
    (``SceneStyle.shared_backdrops``); the ``val`` split always draws one per scene."""
    parts = spec.split(MIX)
    generated = all(scene_kind(part) is not None for part in parts)
    if shared_backdrops and split != "train":
        raise ValueError("shared_backdrops is for the train split only: validation scenes each draw their own")
    if shared_backdrops and not generated:
        raise ValueError(f"shared_backdrops is for generated scenes (scenes, textured or a mix of them), not {spec!r}")
    if len(parts) > 1 and generated:
        return MixedScenes([
            training_images(part, image_size=image_size, seed=seed + k * MIX_SEED_OFFSET, split=split, shared_backdrops=shared_backdrops)
            for k, part in enumerate(parts)
        ])
    count = scene_count(spec, TRAIN_SCENES)
    if count is not None:
        from ..data.scenes import VAL_SEED_OFFSET, SceneDataset, SceneStyle

        pool = "train" if split == "train" else "heldout"
        textured = scene_kind(spec) == "textured"
        style = SceneStyle.textured(pool, shared_backdrops=shared_backdrops) if textured else SceneStyle(shared_backdrops=shared_backdrops)
        seed = seed if split == "train" else seed + VAL_SEED_OFFSET
        return SceneDataset(length=count, size=image_size, seed=seed, style=style)
    if spec.startswith((COCO_PREFIX, VOC_PREFIX)) or masked_folder_layout(Path(spec)) == "images/ + masks/":
        return SourceImages(open_source(spec))
    return ImageFiles(spec)


class Transformed(Dataset):
    """``(transform(image), label)`` for each ``(image, label)`` of ``source``."""

    def __init__(self, source: Dataset, transform: Callable[[Any], torch.Tensor]) -> None:
        self.source, self.transform = source, transform

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.source[index]
        return self.transform(image), label


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed that depends only on (run seed, epoch, sample index)."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class SeededViews(Dataset):
    """Wraps a ``(image, label)`` dataset; item ``(epoch, index)`` is ``(transform(image), label)`` with the
    random augmentation seeded by (seed, epoch, index). The views are thus the same whatever the number of
    loader workers, and a resumed run sees exactly the views an uninterrupted run would have seen."""

    def __init__(self, source: Dataset, transform: Callable[[Any], Any], seed: int) -> None:
        self.source, self.transform, self.seed = source, transform, seed

    def __len__(self) -> int:
        return len(self.source)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[Any, int]:
        epoch, index = key
        image, label = self.source[index]
        state = torch.get_rng_state()
        torch.manual_seed(sample_seed(self.seed, epoch, index))
        try:
            return self.transform(image), label
        finally:
            torch.set_rng_state(state)


class EpochSampler(Sampler):
    """``DistributedSampler`` (shuffled with the run's seed, drop_last) for one epoch, yielding
    ``(epoch, index)`` and skipping the first ``skip`` samples of this rank (to resume mid-epoch)."""

    def __init__(self, size: int, *, num_replicas: int, rank: int, seed: int, epoch: int, skip: int = 0) -> None:
        self.inner = DistributedSampler(
            range(size), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True  # type: ignore[arg-type]
        )
        self.set_position(epoch, skip)

    def set_position(self, epoch: int, skip: int = 0) -> None:
        """Serve ``epoch`` from its ``skip``-th sample on (the loader reads the sampler in the main process)."""
        self.inner.set_epoch(epoch)
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return len(self.inner) - self.skip

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for position, index in enumerate(self.inner):
            if position >= self.skip:
                yield self.epoch, index
