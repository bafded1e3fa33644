"""The random control family of a profile, scored or read back from the control cache (``lewel.maps.family_cache``).

A control's scores depend only on the shape of the model being profiled, the control's scheme and seed and the
images, never on the checkpoint's weights, so ten checkpoints of one training run share one family. ``control_parts``
names everything an entry depends on; ``network_tensors`` and ``network_scores`` turn one network's scores
(``NetworkScores``: ``ImageScores`` and, when measured, ``PatternScores`` on both splits) into the flat tensors a
safetensors entry holds, and back, exactly (dtypes kept: a cached control gives the numbers an uncached run gives).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any

import torch

from ... import __version__
from ...inference import LewelModel
from ..controls import random_like
from ..family_cache import ControlCache, fingerprint
from ..mask_scores import BACKGROUND_CELL, OBJECT_CELL, POINTING_COVERAGE
from ..patterns import DISSECTION_QUANTILE, PatternScores
from .images import PreparedImages
from .scores import ImageScores
from .sidecar import PROFILE_VERSION

#: one network's scores on the two splits (calibration, held-out), and its pattern scores on both when measured
NetworkScores = tuple[tuple[ImageScores, ImageScores], tuple[PatternScores, PatternScores] | None]

#: the ``ModelConfig`` fields a random control of the model's shape is built from (the rest only train)
SHAPE_FIELDS = ("method", "backbone", "hidden_dim", "dim", "num_groups", "scale", "l2_norm", "head_norm")
SPLITS = ("calibration", "heldout")
#: ``PatternScores`` fields that are tensors (``categories`` is part of the key, ``selectivity_images`` an int)
PATTERN_TENSORS = tuple(f.name for f in fields(PatternScores) if f.name not in ("categories", "selectivity_images"))


#: how ``for_scoring`` runs every network a profile scores; part of each control's key
SCORING_FORM = "batch norms folded, channels-last"


def for_scoring(network: LewelModel) -> LewelModel:
    """``network`` as a profile runs it (``SCORING_FORM``): BatchNorm folded into the convolutions (1.14× on a CPU)
    and channels-last (about 1.4×). The controls cannot be batched faster (one vmapped call of 2 is 0.67×,
    2 processes 0.98× of this on 2 cores), and torch's intra-op threads already use every core (1.9× one thread):
    ``benchmarks/control_batching.py``."""
    return network.folded().to(memory_format=torch.channels_last)


def images_fingerprint(split: PreparedImages) -> str:
    """sha256 of what a split's scores depend on: its pixels, object masks, instance labels and categories."""
    categories = ["\x1f".join(names) for names in split.categories]
    return fingerprint([str(len(split)), split.pixels, *split.masks, *split.labels, *categories])


def control_parts(
    model: LewelModel,
    splits: tuple[PreparedImages, PreparedImages],
    *,
    categories: Sequence[str],
    patterns: bool,
    batch_size: int,
    device: torch.device,
) -> dict[str, Any]:
    """The key parts every control of ``model``'s family shares (``scheme`` and ``seed`` are added per control):
    the shape, the images' fingerprints and size, what is measured, how (batch size, device type, the forward pass's
    form: they change floating-point sums) and the code's versions."""
    config = model.config
    if config is None:  # random_like refuses it too; a key without a shape would be wrong
        raise ValueError("a model without a config has no shape to key its controls by")
    return {
        "shape": {name: getattr(config, name) for name in SHAPE_FIELDS},
        "images": [images_fingerprint(split) for split in splits],
        "size": splits[0].size,
        "categories": list(categories),
        "patterns": patterns,
        "batch_size": batch_size,
        "device": device.type,
        "forward": SCORING_FORM,  # an unfolded run's floats differ
        "settings": [OBJECT_CELL, BACKGROUND_CELL, POINTING_COVERAGE, DISSECTION_QUANTILE],
        "profile_version": PROFILE_VERSION,
        "lewel": __version__,
    }


def network_tensors(scores: NetworkScores) -> dict[str, torch.Tensor]:
    """``scores`` as flat named tensors: ``calibration.auroc`` ... and ``heldout.patterns.iou`` ..."""
    (image_scores, pattern_scores) = scores
    tensors: dict[str, torch.Tensor] = {}
    for split, split_scores in zip(SPLITS, image_scores):
        for f in fields(ImageScores):
            tensors[f"{split}.{f.name}"] = getattr(split_scores, f.name)
    for split, split_patterns in zip(SPLITS, pattern_scores or ()):
        for name in PATTERN_TENSORS:
            tensors[f"{split}.patterns.{name}"] = getattr(split_patterns, name)
        tensors[f"{split}.patterns.selectivity_images"] = torch.tensor(split_patterns.selectivity_images)
    return tensors


def tensor_names(patterns: bool) -> list[str]:
    """The names ``network_tensors`` gives, with or without pattern scores."""
    names = [f"{split}.{f.name}" for split in SPLITS for f in fields(ImageScores)]
    if patterns:
        names += [f"{split}.patterns.{name}" for split in SPLITS for name in (*PATTERN_TENSORS, "selectivity_images")]
    return names


def network_scores(tensors: dict[str, torch.Tensor], categories: Sequence[str], patterns: bool) -> NetworkScores:
    """The inverse of ``network_tensors`` (``categories``: the pattern scores' categories, from the key)."""
    image_scores = tuple(
        ImageScores(**{f.name: tensors[f"{split}.{f.name}"] for f in fields(ImageScores)}) for split in SPLITS
    )
    if not patterns:
        return (image_scores[0], image_scores[1]), None
    pattern_scores = tuple(
        PatternScores(
            **{name: tensors[f"{split}.patterns.{name}"] for name in PATTERN_TENSORS},
            categories=tuple(categories),
            selectivity_images=int(tensors[f"{split}.patterns.selectivity_images"]),
        )
        for split in SPLITS
    )
    return (image_scores[0], image_scores[1]), (pattern_scores[0], pattern_scores[1])


def score_controls(
    model: LewelModel,
    family: Sequence[tuple[str, int]],
    score: Callable[[LewelModel], NetworkScores],
    *,
    cache: ControlCache | None = None,
    parts: dict[str, Any] | None = None,
    categories: Sequence[str] = (),
    patterns: bool = False,
    skipped: Callable[[], None] | None = None,
) -> tuple[list[tuple[dict[str, Any], ImageScores, ImageScores]], list[tuple[PatternScores, PatternScores] | None]]:
    """Every control of ``family`` (``(scheme, seed)`` pairs: a random network shaped like ``model``,
    ``lewel.maps.controls.random_like``) through ``score``, or read from ``cache`` under ``parts`` plus its scheme
    and seed (computed ones are stored there); ``skipped()`` is called for each control read back (for progress).
    Returns the ``(identity, calibration, held-out)`` scores ``summarize_profile`` takes, and each control's pattern
    scores, in ``family``'s order."""
    controls, control_patterns = [], []
    for scheme, seed in family:
        key = {**(parts or {}), "scheme": scheme, "seed": seed}
        stored = cache.load(key, tensor_names(patterns)) if cache is not None and parts is not None else None
        if stored is not None:
            scores, pattern_scores = network_scores(stored, categories, patterns)
            if skipped is not None:
                skipped()
        else:
            scores, pattern_scores = score(random_like(model, seed, scheme))
            if cache is not None and parts is not None:
                cache.store(key, network_tensors((scores, pattern_scores)))
        controls.append(({"scheme": scheme, "seed": seed}, *scores))
        control_patterns.append(pattern_scores)
    return controls, control_patterns
