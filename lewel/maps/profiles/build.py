"""Building a checkpoint's profile: the model and every random control of its family scored on the same two
splits of prepared images, summarised against each other (``lewel.maps.profiles.verdict``) into the JSON record
``lewel.maps.profiles.sidecar`` writes."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...data.sources import Source
from ...inference import LewelModel, MapsUnavailableError, load_model
from ..controls import CONTROL_SEEDS, INIT_SCHEMES, control_family
from ..family_cache import ControlCache
from ..mask_scores import BACKGROUND_CELL, OBJECT_CELL, POINTING_COVERAGE
from ..patterns import CONTROL_QUANTILE, DISSECTION_QUANTILE, MIN_CATEGORY_IMAGES, PatternScores
from ..role_confidence import RESAMPLES, ROLE_CONFIDENCE
from .cached_controls import NetworkScores, control_parts, for_scoring, score_controls
from .images import DEFAULT_SIZE, PreparedImages, profile_data
from .roles import ROLE_FRACTION
from .scores import ImageScores, measure_prepared
from .sidecar import PROFILE_FORMAT, PROFILE_VERSION, file_sha256
from .verdict import BINARY_MASKS, PATTERNS_OFF, summarize_profile


def score_network(
    network: LewelModel,
    splits: tuple[PreparedImages, PreparedImages],
    *,
    categories: Sequence[str],
    patterns: bool,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> NetworkScores:
    """``network``'s scores on the calibration and held-out ``splits`` (``measure_prepared``), with the pattern
    and dissection scores for ``categories`` when ``patterns``."""
    network = for_scoring(network)
    results = [
        measure_prepared(network, split, categories=categories, patterns=patterns, batch_size=batch_size, progress=progress)
        for split in splits
    ]
    return (results[0][0], results[1][0]), ((results[0][1], results[1][1]) if patterns else None)


@dataclass
class FamilyScores:
    """Everything a profile is summarised from: the ``model`` (``LewelModel``), its ``NetworkScores``, each
    control's ``(identity, calibration, held-out)`` scores and pattern scores (``lewel.maps.profiles
    .cached_controls.score_controls``), the prepared ``splits``, whether patterns were ``measured`` (if not,
    ``unmeasured`` says why), and the settings the record states (input ``size``, ``device``, the family's
    schemes and seeds)."""

    model: LewelModel
    scores: NetworkScores
    controls: list[tuple[dict[str, Any], ImageScores, ImageScores]]
    control_patterns: list[tuple[PatternScores, PatternScores] | None]
    splits: tuple[PreparedImages, PreparedImages]
    measured: bool
    size: int
    device: str | torch.device
    control_schemes: Sequence[str]
    control_seeds: int
    unmeasured: str = BINARY_MASKS


def measure_family(
    checkpoint: str | os.PathLike,
    *,
    data: str | tuple[Source, Source] = "scenes",
    images: int | None = None,
    size: int = DEFAULT_SIZE,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    control_schemes: Sequence[str] = INIT_SCHEMES,
    control_seeds: int = CONTROL_SEEDS,
    num_groups: int | None = None,
    patterns: bool = True,
    progress: Callable[[int, int], None] | None = None,
    cache: ControlCache | bool = True,
) -> FamilyScores:
    """The per-image scores of ``checkpoint`` and of every random control of its family on the two splits of
    ``data`` (``profile_data``; or the two ``Source`` splits themselves), against ``control_seeds`` random networks of each scheme in ``control_schemes``
    (``lewel.maps.controls``). Images are decoded and resized once; the model and every control score the same
    pixels. ``progress(done, total)`` counts images over all passes (the model and each control, calibration
    and held-out). ``patterns``: also measure Figure 5's patterns and the dissection (``lewel.maps.patterns``;
    needs masks that tell instances apart). ``cache``: where the controls' scores are read from and stored
    (``lewel.maps.family_cache``; True: ``LEWEL_CACHE_DIR`` or the user cache folder, False: every control
    computed and nothing stored); a cached control gives exactly the numbers a computed one does. Studies of
    the scores themselves (``benchmarks/role_stability.py``) start here; ``build_profile`` summarises them."""
    model = load_model(checkpoint, num_groups=num_groups, map_location=device)
    if not model.has_maps:
        raise MapsUnavailableError(
            f"{checkpoint} is a {model.method} model without LEWEL's coupled head: it has no maps to profile"
        )
    family = control_family(control_schemes, control_seeds)
    splits = data if isinstance(data, tuple) else profile_data(data, images=images, size=size)
    calibration, heldout = (PreparedImages(split, size) for split in splits)
    total, done = (1 + len(family)) * (len(calibration) + len(heldout)), 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    categories = sorted(set(calibration.category_names()) | set(heldout.category_names()))
    measured = patterns and calibration.has_instances and heldout.has_instances

    def score(network: LewelModel) -> NetworkScores:
        return score_network(
            network, (calibration, heldout), categories=categories, patterns=measured, batch_size=batch_size, progress=step
        )

    model_scores = score(model)
    if not isinstance(cache, ControlCache):
        cache = ControlCache(enabled=bool(cache))
    parts = control_parts(
        model, (calibration, heldout), categories=categories, patterns=measured, batch_size=batch_size,
        device=torch.device(device),
    )
    controls, control_patterns = score_controls(
        model, family, score, cache=cache, parts=parts, categories=categories, patterns=measured,
        skipped=lambda: step(len(calibration) + len(heldout)),
    )
    return FamilyScores(
        model, model_scores, controls, control_patterns, (calibration, heldout), measured, size, device,
        list(dict.fromkeys(control_schemes)), control_seeds,
        BINARY_MASKS if patterns else PATTERNS_OFF,
    )


def build_profile(checkpoint: str | os.PathLike, *, fraction: float = ROLE_FRACTION, **settings: Any) -> dict[str, Any]:
    """The map profile of ``checkpoint``, as a JSON-friendly dict with ``summary`` (``summarize_profile``) and
    ``maps`` (one record per index): ``measure_family`` with ``settings`` (its keywords: ``data``, ``images``,
    ``size``, ``batch_size``, ``device``, ``control_schemes``, ``control_seeds``, ``num_groups``, ``patterns``,
    ``progress``, ``cache``), then ``assemble_profile`` with the object maps' ``fraction``."""
    return assemble_profile(checkpoint, measure_family(checkpoint, **settings), fraction=fraction)


def assemble_profile(checkpoint: str | os.PathLike, measured: FamilyScores, *, fraction: float = ROLE_FRACTION) -> dict[str, Any]:
    """The profile record of ``measure_family``'s scores (``build_profile``'s answer)."""
    size, device = measured.size, measured.device
    model, (calibration, heldout) = measured.model, measured.splits
    (model_calibration, model_heldout), model_patterns = measured.scores
    summary, records = summarize_profile(
        model_calibration,
        model_heldout,
        measured.controls,
        fraction=fraction,
        patterns=model_patterns,
        control_patterns=measured.control_patterns if measured.measured else None,
        unmeasured=measured.unmeasured,
    )
    grid = list(model.extract(torch.zeros(1, 3, size, size, device=device), aligned_projection=False).maps.shape[-2:])
    return {
        "format": PROFILE_FORMAT,
        "version": PROFILE_VERSION,
        "checkpoint": {"file": Path(checkpoint).name, "sha256": file_sha256(checkpoint)},
        "model": {"method": model.method, "backbone": model.backbone_name, "d": model.d, "h": model.h},
        "data": {"calibration": calibration.describe(), "heldout": heldout.describe(), "size": size, "grid": grid},
        "settings": {
            "role_fraction": fraction,
            "object_cell": OBJECT_CELL,
            "background_cell": BACKGROUND_CELL,
            "pointing_coverage": POINTING_COVERAGE,
            "control_schemes": list(measured.control_schemes),
            "control_seeds": measured.control_seeds,
            "pattern_quantile": CONTROL_QUANTILE,
            "role_confidence": ROLE_CONFIDENCE,
            "role_resamples": RESAMPLES,
            "dissection_quantile": DISSECTION_QUANTILE,
            "min_category_images": MIN_CATEGORY_IMAGES,
        },
        "summary": summary,
        "maps": records,
    }
