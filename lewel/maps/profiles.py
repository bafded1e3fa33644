"""Map profiles: which map indices of a model look at objects, measured on images with object masks.

LEWEL's maps are softmaxes at temperature 1 and stay within a few per cent of uniform, so absolute scores
(the object-mass ratio) read 1.0 for every model. A profile uses the scale-free AUROC of each map against the
object mask (``lewel.maps.map_auroc``) instead, and guards against reading noise as structure twice over:

1. **two splits**: map indices are given their role (``object``: among the highest mean AUROC, ``background``:
   among the lowest) on a *calibration* split only, and every score reported for them is measured on a
   separate *held-out* split;
2. **a family of random controls** (``lewel.maps.controls``): the same procedure, in the same run and on the same
   images, for several seeds of every plausible initialisation scheme of a network of the same shape; the
   verdict asks the model to beat the best of them by more than the images' noise and the controls' spread.

``build_profile`` computes it, ``write_profile`` / ``find_profile`` keep it next to its checkpoint as a sidecar
``NAME.profile.json`` (docs/maps.md, "Map profiles").
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2

from ..data.folders import DataError
from ..data.sources import Source, UnreadableImage, masked_splits
from ..files.checkpoints import atomic_write
from ..formatting import format_number
from ..inference import LewelModel, MapsUnavailableError, load_model
from ..views.augmentations import IMAGENET_MEAN, IMAGENET_STD
from .controls import CONTROL_SEEDS, INIT_SCHEMES, control_family, mean_se, random_like
from .controls import verdict as controls_verdict
from .mask_scores import (
    BACKGROUND_CELL,
    OBJECT_CELL,
    POINTING_COVERAGE,
    as_object_mask,
    map_auroc,
    object_coverage,
    pointing_chance,
    pointing_hits,
)
from .patterns import (
    CONTROL_QUANTILE,
    DISSECTION_QUANTILE,
    MIN_CATEGORY_IMAGES,
    PATTERN_ROLES,
    InstanceCells,
    PatternScores,
    assign_patterns,
    category_records,
    count_patterns,
    instance_cells,
    instance_labels,
    pattern_thresholds,
    pooled_quantile,
    preferred_categories,
    score_patterns,
)
from .statistics import PATTERNS, map_statistics

PROFILE_FORMAT = "lewel-map-profile"
PROFILE_VERSION = 3  #: 3: measured patterns and dissection; 2: the verdict against a family of random controls
READABLE_VERSIONS = (2, 3)  #: version 2 files still open; they have no measured patterns (1: one control, superseded)
SIDECAR_SUFFIX = ".profile.json"  #: the profile of ``models/NAME.safetensors`` is ``models/NAME.profile.json``
ROLES = ("object", "background", "mixed")
DISPLAY_RANK = {"object": 0, "mixed": 1, "background": 2}  #: the order of roles when all maps are listed
ROLE_FRACTION = 0.1  #: the ceil(10 %) of indices with the highest calibration AUROC are object maps (lowest: background)
DEFAULT_SIZE = 224  #: input side (7×7 maps on a ResNet); images are resized whole, no crop
DEFAULT_IMAGES = 256  #: images per split for generated scenes
CALIBRATION_SEED = 7_000_001  #: generated scenes: calibration split (training uses seeds 0 and 1,000,003)
HELDOUT_SEED = 7_000_002  #: generated scenes: held-out split


class ProfileError(ValueError):
    """A profile file that cannot be used: unreadable, another format, or made for another checkpoint."""


def profile_data(data: str, *, images: int | None = None, size: int = DEFAULT_SIZE) -> tuple[Source, Source]:
    """A profile's calibration and held-out splits of ``data`` (``lewel.data.sources.masked_splits``):
    generated scenes with seeds ``CALIBRATION_SEED`` and ``HELDOUT_SEED`` (``images`` or ``DEFAULT_IMAGES``
    each), any masked source split alternately (``images`` caps each split)."""
    return masked_splits(
        data, images=images, size=size, calibration_seed=CALIBRATION_SEED, heldout_seed=HELDOUT_SEED, scenes=DEFAULT_IMAGES
    )


# --- Scores of every (image, map) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageScores:
    """Scores of N images' d maps: ``auroc`` (N×d, NaN where ``scored`` is False: the image lacks object or
    background cells), ``pointing`` (N×d bool), ``pattern`` (N×d, indices into ``PATTERNS``), ``peak_ratio``
    (N×d, peak ÷ uniform value), ``pointing_chance`` (N) and ``scored`` (N bool)."""

    auroc: torch.Tensor
    pointing: torch.Tensor
    pattern: torch.Tensor
    peak_ratio: torch.Tensor
    pointing_chance: torch.Tensor
    scored: torch.Tensor

    @classmethod
    def cat(cls, parts: Sequence[ImageScores]) -> ImageScores:
        return cls(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def valid(self) -> ImageScores:
        """Only the scored images."""
        return ImageScores(**{f.name: getattr(self, f.name)[self.scored] for f in fields(self)})


class PreparedImages:
    """The masked images of a source decoded and resized once, so that a model and every control score the
    same pixels: ``pixels`` (N×3×S×S uint8, each image resized whole to S×S, no crop), ``masks`` (N object
    masks H×W at the image's own size, ``Sample.object_mask``: bool, or int8 with ignored pixels), ``ids``,
    ``describe()`` (where they come from, with the images skipped as unreadable). Per-cell object coverage is
    computed once per map grid (``coverage``)."""

    def __init__(self, images: Source, size: int) -> None:
        if not images.has_masks:
            raise DataError(f"{images.describe()} has no object masks to score maps against")
        resize = v2.Compose([v2.RGB(), v2.Resize((size, size), antialias=True), v2.ToImage()])
        pixels, masks, self.ids, self.skipped = [], [], [], []
        self.labels: list[np.ndarray] = []  # H×W int16 instance labels (lewel.maps.patterns.instance_labels)
        self.categories: list[tuple[str, ...]] = []
        self.has_instances = False  # some mask told instances apart (binary masks give only their union)
        for index in range(len(images)):
            try:
                sample = images.load(index)
            except UnreadableImage as error:
                self.skipped.append({"id": images.ids[index], "reason": str(error)})
                continue
            pixels.append(resize(sample.image).as_subclass(torch.Tensor))
            masks.append(sample.object_mask())
            self.labels.append(instance_labels(sample.instances))
            self.categories.append(tuple(sample.categories))
            self.has_instances |= not sample.binary
            self.ids.append(sample.id)
        self.pixels = torch.stack(pixels) if pixels else torch.zeros(0, 3, size, size, dtype=torch.uint8)
        self.masks, self.size = masks, size
        self.description = {**images.describe(), "images": len(masks)}
        if self.skipped:
            self.description["unreadable"] = self.skipped
        self._coverage: dict[tuple[int, int], torch.Tensor] = {}
        self._cells: dict[tuple[int, int], list[InstanceCells]] = {}

    def __len__(self) -> int:
        return len(self.masks)

    def describe(self) -> dict[str, Any]:
        return self.description

    def batch(self, start: int, stop: int) -> torch.Tensor:
        """Images ``start .. stop-1`` as the networks take them: float ``B×3×S×S``, normalised."""
        return _NORMALISE(self.pixels[start:stop])

    def coverage(self, grid: tuple[int, int]) -> torch.Tensor:
        """``N×h×w``: each cell's covered share of object, for maps of ``grid``."""
        grid = tuple(int(g) for g in grid)
        if grid not in self._coverage:
            self._coverage[grid] = torch.stack([object_coverage(torch.as_tensor(m), grid) for m in self.masks])
        return self._coverage[grid]

    def category_names(self) -> list[str]:
        """The named categories of these images' instances, sorted."""
        return sorted({c for names in self.categories for c in names if c})

    def cells(self, grid: tuple[int, int]) -> list[InstanceCells]:
        """Each image's cells of ``grid`` by instance (``lewel.maps.patterns.instance_cells``)."""
        grid = tuple(int(g) for g in grid)
        if grid not in self._cells:
            coverage = self.coverage(grid)
            self._cells[grid] = [
                instance_cells(labels, names, coverage[i], grid)
                for i, (labels, names) in enumerate(zip(self.labels, self.categories))
            ]
        return self._cells[grid]


_NORMALISE = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


def score_masked_maps(
    maps: torch.Tensor, masks: Sequence[np.ndarray | torch.Tensor] | None = None, *, coverage: torch.Tensor | None = None
) -> ImageScores:
    """Scores of maps ``B×d×h×w`` against B object masks (each ``H×W``, any size: the map grid spans the
    whole image, cells get their exact covered share), or against their precomputed ``coverage`` (B×h×w)."""
    if coverage is None:
        if masks is None:
            raise ValueError("score_masked_maps needs masks or coverage")
        coverage = torch.stack([object_coverage(as_object_mask(m), maps.shape[-2:]) for m in masks])
    auroc = map_auroc(maps, coverage)
    stats = map_statistics(maps)
    return ImageScores(
        auroc=auroc,
        pointing=pointing_hits(maps, coverage),
        pattern=stats.pattern,
        peak_ratio=stats.peak_ratio,
        pointing_chance=pointing_chance(coverage),
        scored=~auroc[:, 0].isnan(),
    )


def score_prepared(
    model: LewelModel,
    images: PreparedImages,
    *,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> ImageScores:
    """Extract the maps of ``images`` with ``model`` (channels-last, in batches) and score them against their
    masks. ``progress(n)`` is called with the number of images done after each batch."""
    return measure_prepared(model, images, batch_size=batch_size, progress=progress)[0]


def measure_prepared(
    model: LewelModel,
    images: PreparedImages,
    *,
    categories: Sequence[str] | None = None,
    patterns: bool = False,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> tuple[ImageScores, PatternScores | None]:
    """``score_prepared``, and with ``patterns`` (and images whose masks tell instances apart) the pattern and
    dissection scores of the same maps (``lewel.maps.patterns.score_patterns``) for ``categories`` (default: the
    images' own)."""
    if not model.has_maps:
        raise MapsUnavailableError(f"{model.source or 'this model'} ({model.method}) has no alignment maps to profile")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    parts, kept = [], []
    for start in range(0, len(images), batch_size):
        stop = min(start + batch_size, len(images))
        batch = images.batch(start, stop).contiguous(memory_format=torch.channels_last)
        maps = model.extract(batch, aligned_projection=False).maps.float().cpu()
        parts.append(score_masked_maps(maps, coverage=images.coverage(maps.shape[-2:])[start:stop]))
        if patterns:
            kept.append(maps)
        if progress is not None:
            progress(stop - start)
    scores = ImageScores.cat(parts)
    if not (patterns and images.has_instances and kept):
        return scores, None
    maps = torch.cat(kept)
    names = images.category_names() if categories is None else list(categories)
    return scores, score_patterns(maps, images.cells(maps.shape[-2:]), names)


def score_images(
    model: LewelModel,
    images: Source | PreparedImages,
    *,
    size: int = DEFAULT_SIZE,
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> ImageScores:
    """Resize each image whole to ``size×size``, extract its maps with ``model`` and score them against its
    mask (``score_prepared``; ``PreparedImages`` are used as they are)."""
    if not model.has_maps:
        raise MapsUnavailableError(f"{model.source or 'this model'} ({model.method}) has no alignment maps to profile")
    prepared = images if isinstance(images, PreparedImages) else PreparedImages(images, size)
    return score_prepared(model, prepared, batch_size=batch_size, progress=progress)


def index_means(scores: ImageScores) -> dict[str, torch.Tensor]:
    """Per map index (tensors of length d), over the scored images: mean ``auroc``, ``pointing`` rate,
    ``peak_ratio``, and ``patterns`` (d×3 shares of ``PATTERNS``)."""
    valid = scores.valid()
    if not len(valid.auroc):
        raise ValueError(
            f"none of the {len(scores.auroc)} images has both object cells (coverage >= {OBJECT_CELL}) and background "
            f"cells (<= {BACKGROUND_CELL}) on the map grid: nothing to score (a larger --size gives a finer grid)"
        )
    shares = torch.stack([(valid.pattern == k).to(torch.float64).mean(dim=0) for k in range(len(PATTERNS))], dim=1)
    return {
        "auroc": valid.auroc.mean(dim=0),
        "pointing": valid.pointing.to(torch.float64).mean(dim=0),
        "peak_ratio": valid.peak_ratio.mean(dim=0),
        "patterns": shares,
    }


def select_roles(calibration_auroc: torch.Tensor, fraction: float = ROLE_FRACTION) -> tuple[list[int], list[int]]:
    """The object maps (the ceil(``fraction`` · d) highest calibration AUROCs, best first) and the
    background maps (as many lowest, lowest first, never overlapping the object maps). Ties go to the lower
    index. Only calibration scores enter here: the held-out split cannot influence the choice."""
    if not 0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5], got {fraction}")
    d = calibration_auroc.numel()
    count = max(1, math.ceil(fraction * d))
    order = torch.sort(-calibration_auroc.to(torch.float64), stable=True).indices.tolist()
    objects = order[:count]
    backgrounds = [i for i in reversed(order) if i not in objects][: min(count, d - count)]
    return objects, backgrounds


def selected_mean(scores: ImageScores, indices: Sequence[int], field: str = "auroc") -> torch.Tensor:
    """Per scored image, the mean of ``field`` over the maps ``indices``: length N_scored float64."""
    valid = scores.valid()
    return getattr(valid, field)[:, list(indices)].to(torch.float64).mean(dim=1)


def split_summary(calibration: ImageScores, heldout: ImageScores, fraction: float) -> dict[str, Any]:
    """Selection on ``calibration``, scores of that selection on ``heldout``."""
    objects, backgrounds = select_roles(index_means(calibration)["auroc"], fraction)
    held = selected_mean(heldout, objects)
    mean, se = mean_se(held)
    valid = heldout.valid()
    return {
        "object_maps": objects,
        "background_maps": backgrounds,
        "object_auroc": mean,
        "object_auroc_se": se,
        "object_auroc_calibration": float(selected_mean(calibration, objects).mean()),
        "object_pointing": float(selected_mean(heldout, objects, "pointing").mean()),
        "background_auroc": float(selected_mean(heldout, backgrounds).mean()) if backgrounds else math.nan,
        "all_maps_auroc": float(valid.auroc.mean()),
        "all_maps_pointing": float(valid.pointing.to(torch.float64).mean()),
        "pointing_chance": float(valid.pointing_chance.mean()),
    }


def summarize_profile(
    calibration: ImageScores,
    heldout: ImageScores,
    controls: Sequence[tuple[dict[str, Any], ImageScores, ImageScores]],
    *,
    fraction: float = ROLE_FRACTION,
    patterns: tuple[PatternScores, PatternScores] | None = None,
    control_patterns: Sequence[tuple[PatternScores, PatternScores]] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The profile's ``summary`` and per-index ``maps`` records from the model's scores and its control
    family's: ``controls`` holds one ``(identity, calibration scores, held-out scores)`` per random network,
    ``identity`` naming it (``scheme``, ``seed``), all on the same calibration and held-out images.

    Every control gets its own selection on its own calibration scores. ``random_control`` is the best
    control (highest held-out AUROC of its object maps), ``controls`` the whole family (each member's scores,
    each scheme's spread and prediction bound, the random bound), ``difference`` the paired per-image
    comparison with the best control, and ``verdict`` (``lewel.maps.controls.verdict``) ``localises`` only when
    the model beats the best control by more than the images' noise and the controls' spread allow.

    With ``patterns`` (the model's calibration and held-out ``PatternScores``) and ``control_patterns`` (the
    same per control, in ``controls``' order) the summary and records gain the measured patterns and the
    dissection (``summarize_patterns``); without them ``summary.patterns`` is ``None`` and says why.
    """
    if not controls:
        raise ValueError("a profile needs at least one random control")
    model = split_summary(calibration, heldout, fraction)
    members, per_image = [], []
    for identity, control_calibration, control_heldout in controls:
        if not torch.equal(heldout.scored, control_heldout.scored):
            raise ValueError("the model and its controls must be scored on the same held-out images")
        member, values = control_member(identity, control_calibration, control_heldout, fraction)
        members.append(member)
        per_image.append(values)
    family, difference, verdict = controls_verdict(selected_mean(heldout, model["object_maps"]), members, per_image)
    best = next(m for m in members if (m["scheme"], m["seed"]) == (family["best"]["scheme"], family["best"]["seed"]))
    summary = {
        **model,
        "heldout_images": int(heldout.scored.sum()),
        "heldout_skipped": int((~heldout.scored).sum()),
        "calibration_images": int(calibration.scored.sum()),
        "calibration_skipped": int((~calibration.scored).sum()),
        "random_control": dict(best),
        "controls": family,
        "difference": difference,
        "verdict": verdict,
    }
    cal, held = index_means(calibration), index_means(heldout)
    objects, backgrounds = set(model["object_maps"]), set(model["background_maps"])
    records = [
        {
            "index": m,
            "role": "object" if m in objects else "background" if m in backgrounds else "mixed",
            "auroc_calibration": float(cal["auroc"][m]),
            "auroc_heldout": float(held["auroc"][m]),
            "pointing_heldout": float(held["pointing"][m]),
            "peak_ratio": float(held["peak_ratio"][m]),
            "shape_shares": {name: float(held["patterns"][m, k]) for k, name in enumerate(PATTERNS)},
        }
        for m in range(calibration.auroc.shape[1])
    ]
    if patterns is None or control_patterns is None:
        summary["patterns"] = None
        summary["patterns_note"] = "not measured: the masks do not tell instances apart (binary masks)"
        return summary, records
    if len(control_patterns) != len(controls):
        raise ValueError("every control needs its pattern scores")
    best_index = members.index(best)
    extra, per_index = summarize_patterns(
        (cal["auroc"], held["auroc"]),
        patterns,
        [(index_means(c)["auroc"], index_means(h)["auroc"]) for _, c, h in controls],
        control_patterns,
        best_index,
    )
    summary["random_control"]["patterns"] = extra.pop("best_control_patterns")
    summary.update(extra)
    for record, more in zip(records, per_index):
        record.update(more)
    return summary, records


def summarize_patterns(
    auroc: tuple[torch.Tensor, torch.Tensor],
    patterns: tuple[PatternScores, PatternScores],
    control_auroc: Sequence[tuple[torch.Tensor, torch.Tensor]],
    control_patterns: Sequence[tuple[PatternScores, PatternScores]],
    best_control: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The measured patterns and the dissection of a model next to its control family's.

    ``auroc``: the model's per-index object AUROC (calibration, held-out); ``patterns``: its
    ``PatternScores`` (calibration, held-out); the same per control; ``best_control`` indexes the control that
    ``random_control`` reports. Roles are assigned on calibration with thresholds from the controls'
    calibration values (``lewel.maps.patterns.pattern_thresholds``); the same rule, with held-out thresholds, on
    held-out values gives ``heldout_pattern``. Each control gets its roles by the same rule. A map index
    prefers a category significantly when its held-out preference (``preferred_categories``) exceeds the
    ``CONTROL_QUANTILE`` of the controls' held-out preferences chosen the same way.

    Returns the summary's additions (``patterns``, ``pattern_thresholds``, ``patterns_heldout_agreement``,
    ``dissection``, the family's pattern counts in ``control_patterns`` and ``best_control_patterns``) and
    one dict of additions per map index (``pattern``, ``pattern_scores``, ``categories``, ``category``).
    """
    thresholds = {}
    for split in (0, 1):
        thresholds[split] = pattern_thresholds(
            [a[split] for a in control_auroc],
            [p[split].selectivity for p in control_patterns],
            [p[split].spread for p in control_patterns],
        )
    roles = assign_patterns(auroc[0], patterns[0].selectivity, patterns[0].spread, thresholds[0])
    held_roles = assign_patterns(auroc[1], patterns[1].selectivity, patterns[1].spread, thresholds[1])
    control_counts = [
        count_patterns(assign_patterns(a[0], p[0].selectivity, p[0].spread, thresholds[0]))
        for a, p in zip(control_auroc, control_patterns)
    ]
    preferred, preference = preferred_categories(*patterns)
    control_preferences = [preferred_categories(*p)[1] for p in control_patterns]
    limit = pooled_quantile(control_preferences, CONTROL_QUANTILE)
    significant = [bool(not math.isnan(v) and not math.isnan(limit) and v > limit) for v in preference.tolist()]
    control_significant = [int((v > limit).sum()) if not math.isnan(limit) else 0 for v in control_preferences]
    d = len(roles)
    records = []
    for m in range(d):
        records.append(
            {
                "pattern": roles[m],
                "pattern_scores": {
                    split: {
                        "object_auroc": float(auroc[k][m]),
                        "selectivity": float(patterns[k].selectivity[m]),
                        "spread": float(patterns[k].spread[m]),
                    }
                    for k, split in enumerate(("calibration", "heldout"))
                },
                "heldout_pattern": held_roles[m],
                "categories": category_records(patterns[1], m),
                "category": None
                if preferred[m] is None
                else {"name": preferred[m], "preference_heldout": float(preference[m]), "significant": significant[m]},
            }
        )
    preferring = [m for m in range(d) if significant[m]]
    control_mean = sum(control_significant) / len(control_significant)
    covered = sorted({preferred[m] for m in preferring if preferred[m]})
    counts = count_patterns(roles)
    family = {
        role: {
            "mean": sum(c[role] for c in control_counts) / len(control_counts),
            "min": min(c[role] for c in control_counts),
            "max": max(c[role] for c in control_counts),
        }
        for role in PATTERN_ROLES
    }
    held = patterns[1]
    summary = {
        "patterns": counts,
        "pattern_thresholds": {"calibration": thresholds[0], "heldout": thresholds[1], "quantile": CONTROL_QUANTILE},
        "patterns_heldout_agreement": sum(a == b for a, b in zip(roles, held_roles)) / d,
        "patterns_images": {"calibration": patterns[0].selectivity_images, "heldout": held.selectivity_images},
        "control_patterns": {"each": control_counts, "by_role": family},
        "best_control_patterns": control_counts[best_control],
        "dissection": {
            "categories": [
                {"name": name, "images": int(held.category_images[c])} for c, name in enumerate(held.categories)
            ],
            "preferring_maps": len(preferring),
            "preference_threshold": limit,
            "control_preferring_maps": {
                "mean": control_mean,
                "max": max(control_significant),
            },
            "covered": covered,
            "iou_quantile": DISSECTION_QUANTILE,
            "min_category_images": MIN_CATEGORY_IMAGES,
            "line": f"{len(preferring)} of {d} maps prefer one category"
            + (f"; categories covered: {', '.join(covered)}" if covered else "")
            + f" (random networks: {control_mean:.1f} on average, at most {max(control_significant)})",
        },
    }
    return summary, records



#: what the profile keeps of each control's ``split_summary``
CONTROL_KEYS = ("object_auroc", "object_auroc_se", "object_auroc_calibration", "object_pointing", "all_maps_auroc", "pointing_chance")


def control_member(
    identity: dict[str, Any], calibration: ImageScores, heldout: ImageScores, fraction: float = ROLE_FRACTION
) -> tuple[dict[str, Any], torch.Tensor]:
    """One control through the model's procedure: its record (``identity`` with its ``CONTROL_KEYS`` scores,
    its own object maps chosen on ``calibration``) and, per scored held-out image, the mean AUROC of those
    maps (what ``lewel.maps.controls.verdict`` pairs with the model's)."""
    summary = split_summary(calibration, heldout, fraction)
    return {**identity, **{k: summary[k] for k in CONTROL_KEYS}}, selected_mean(heldout, summary["object_maps"])


# --- The profile of a checkpoint ----------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The file's sha256 (cached per path, size and modification time)."""
    stat = os.stat(path)
    return _sha256(os.fspath(path), stat.st_size, stat.st_mtime_ns)


def build_profile(
    checkpoint: str | os.PathLike,
    *,
    data: str = "scenes",
    images: int | None = None,
    size: int = DEFAULT_SIZE,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    fraction: float = ROLE_FRACTION,
    control_schemes: Sequence[str] = INIT_SCHEMES,
    control_seeds: int = CONTROL_SEEDS,
    num_groups: int | None = None,
    patterns: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The map profile of ``checkpoint`` on ``data`` (``profile_data``), as a JSON-friendly dict with
    ``summary`` (``summarize_profile``) and ``maps`` (one record per index), against ``control_seeds`` random
    networks of each scheme in ``control_schemes`` (``lewel.maps.controls``). Images are decoded and resized
    once; the model and every control score the same pixels. ``progress(done, total)`` counts images over
    all passes (the model and each control, calibration and held-out). ``patterns``: also measure Figure 5's
    patterns and the dissection (``lewel.maps.patterns``; needs masks that tell instances apart)."""
    model = load_model(checkpoint, num_groups=num_groups, map_location=device)
    if not model.has_maps:
        raise MapsUnavailableError(
            f"{checkpoint} is a {model.method} model without LEWEL's coupled head: it has no maps to profile"
        )
    family = control_family(control_schemes, control_seeds)
    splits = profile_data(data, images=images, size=size)
    calibration, heldout = (PreparedImages(split, size) for split in splits)
    total, done = (1 + len(family)) * (len(calibration) + len(heldout)), 0

    def step(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    categories = sorted(set(calibration.category_names()) | set(heldout.category_names()))
    measured = patterns and calibration.has_instances and heldout.has_instances

    def score(network: LewelModel) -> tuple[tuple[ImageScores, ImageScores], tuple[PatternScores, PatternScores] | None]:
        network = network.to(memory_format=torch.channels_last)  # about 1.4× faster convolutions on a CPU
        results = [
            measure_prepared(network, split, categories=categories, patterns=measured, batch_size=batch_size, progress=step)
            for split in (calibration, heldout)
        ]
        return (results[0][0], results[1][0]), ((results[0][1], results[1][1]) if measured else None)

    (model_calibration, model_heldout), model_patterns = score(model)
    controls, control_patterns = [], []
    for scheme, seed in family:
        scores, pattern_scores = score(random_like(model, seed, scheme))
        controls.append(({"scheme": scheme, "seed": seed}, *scores))
        control_patterns.append(pattern_scores)
    summary, records = summarize_profile(
        model_calibration,
        model_heldout,
        controls,
        fraction=fraction,
        patterns=model_patterns,
        control_patterns=control_patterns if measured else None,
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
            "control_schemes": list(dict.fromkeys(control_schemes)),
            "control_seeds": control_seeds,
            "pattern_quantile": CONTROL_QUANTILE,
            "dissection_quantile": DISSECTION_QUANTILE,
            "min_category_images": MIN_CATEGORY_IMAGES,
        },
        "summary": summary,
        "maps": records,
    }


def sidecar_path(checkpoint: str | os.PathLike) -> Path:
    """``DIR/NAME.profile.json`` for ``DIR/NAME.<suffix>`` (``.pth.tar`` counts as one suffix)."""
    path = Path(checkpoint)
    name = path.name
    for suffix in (".pth.tar", ".safetensors", ".pth", ".tar", ".pt", ".ckpt"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return path.with_name(name[: -len(suffix)] + SIDECAR_SUFFIX)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _json_safe(value: Any) -> Any:
    """NaN and infinities as ``null`` (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_profile(profile: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``profile`` as strict JSON (NaN as null), atomically."""
    text = json.dumps(_json_safe(profile), indent=1, allow_nan=False)
    return atomic_write(Path(path), lambda temporary: temporary.write_text(text + "\n"))


def read_profile(path: str | os.PathLike, *, d: int | None = None) -> dict[str, Any]:
    """Read and check a profile file (format, version, one record per map index; ``d`` when given)."""
    try:
        profile = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProfileError(f"{path}: not a readable profile ({type(error).__name__}: {error})") from None
    if not isinstance(profile, dict) or profile.get("format") != PROFILE_FORMAT:
        raise ProfileError(f"{path}: not a {PROFILE_FORMAT} file")
    if profile.get("version") not in READABLE_VERSIONS:
        raise ProfileError(
            f"{path}: profile version {profile.get('version')!r}, this lewel reads versions {list(READABLE_VERSIONS)}: "
            "run lewel profile again"
        )
    records, summary = profile.get("maps"), profile.get("summary")
    if not isinstance(records, list) or not isinstance(summary, dict):
        raise ProfileError(f"{path}: a profile needs 'summary' and 'maps'")
    if [r.get("index") for r in records] != list(range(len(records))) or any(r.get("role") not in ROLES for r in records):
        raise ProfileError(f"{path}: 'maps' must hold one record per index 0..d-1, each with a role in {list(ROLES)}")
    if profile["version"] >= 3 and any(r.get("pattern") not in PATTERN_ROLES + (None,) for r in records):
        raise ProfileError(f"{path}: each map's 'pattern' must be one of {list(PATTERN_ROLES)} or null")
    expected = profile.get("model", {}).get("d")
    if expected != len(records) or (d is not None and d != len(records)):
        raise ProfileError(f"{path}: profile of {len(records)} maps, but the model has d = {d if d is not None else expected}")
    return profile


def find_profile(checkpoint: str | os.PathLike, *, d: int | None = None) -> dict[str, Any] | None:
    """The sidecar profile of ``checkpoint``, or ``None`` when there is none. Raises ``ProfileError`` when
    the sidecar is unreadable or was made for another file (its sha256 differs: a stale profile)."""
    path = sidecar_path(checkpoint)
    if not path.is_file():
        return None
    profile = read_profile(path, d=d)
    recorded = profile.get("checkpoint", {}).get("sha256")
    if recorded != file_sha256(checkpoint):
        raise ProfileError(f"{path} was made for another version of {Path(checkpoint).name} (sha256 differs): run lewel profile again")
    return profile


def localising_score(profile: dict[str, Any] | None) -> float | None:
    """The held-out object-maps AUROC of a profile whose verdict is "localises", else ``None``: how models
    are ranked when one must be chosen to show (the service's default model, the notebooks' model)."""
    summary = (profile or {}).get("summary", {})
    auroc = summary.get("object_auroc")
    return float(auroc) if summary.get("verdict") == "localises" and isinstance(auroc, (int, float)) else None


def best_localising(checkpoints: Sequence[str | os.PathLike]) -> Path | None:
    """Of ``checkpoints``, the one whose current sidecar profile localises best (``localising_score``);
    ``None`` when none does. Missing, stale or unreadable sidecars count as no profile."""
    scored = []
    for checkpoint in checkpoints:
        try:
            score = localising_score(find_profile(checkpoint))
        except (ProfileError, OSError):
            score = None
        if score is not None:
            scored.append((score, os.fspath(checkpoint)))
    return Path(max(scored)[1]) if scored else None


def describe_data(profile: dict[str, Any]) -> str:
    """One line on the images a profile was measured on."""
    data = profile["data"]
    cal, held = data["calibration"], data["heldout"]
    kind = held.get("kind")
    if kind == "scenes":
        where = f"generated scenes (calibration seed {cal.get('seed')}, held-out seed {held.get('seed')})"
    elif kind == "coco":
        where = f"COCO {held.get('annotations')} ({held.get('rule')})"
    elif kind == "voc":
        where = f"Pascal VOC {held.get('root')}, image set {held.get('image_set')} ({held.get('rule')})"
    else:
        where = f"{held.get('root')} ({held.get('layout')}, {held.get('rule')})"
    return f"{where}: {cal.get('images')} calibration + {held.get('images')} held-out images at {data['size']} px"


def profile_indices(profile: dict[str, Any], maps: str = "all") -> list[int]:
    """Map indices in the profile's measured order: ``object`` maps (highest held-out AUROC first),
    ``background`` maps (lowest first), or ``all`` maps: object, then mixed, then background maps, each by
    held-out AUROC, highest first (NaN last)."""
    records = profile["maps"]

    def auroc(record: dict[str, Any]) -> float:
        value = record.get("auroc_heldout")
        return -math.inf if value is None or math.isnan(value) else float(value)

    if maps == "object":
        return [r["index"] for r in sorted((r for r in records if r["role"] == "object"), key=lambda r: -auroc(r))]
    if maps == "background":
        chosen = [r for r in records if r["role"] == "background"]
        return [r["index"] for r in sorted(chosen, key=lambda r: auroc(r) if auroc(r) > -math.inf else math.inf)]
    if maps != "all":
        raise ValueError(f"maps must be 'all', 'object' or 'background', got {maps!r}")
    return [r["index"] for r in sorted(records, key=lambda r: (DISPLAY_RANK[r["role"]], -auroc(r)))]


def has_patterns(profile: dict[str, Any] | None) -> bool:
    """Whether ``profile`` holds measured patterns (version 3 on masks with instances)."""
    return bool(profile) and profile.get("version", 0) >= 3 and profile["summary"].get("patterns") is not None


def patterns_note(profile: dict[str, Any]) -> str | None:
    """Why ``profile`` has no measured patterns (``None`` when it has them)."""
    if has_patterns(profile):
        return None
    if profile.get("version", 0) < 3:
        return f"a version-{profile.get('version')} profile: made before patterns were measured (run lewel profile again)"
    return profile["summary"].get("patterns_note") or "not measured"


def pattern_indices(profile: dict[str, Any], pattern: str) -> list[int]:
    """The map indices whose measured ``pattern`` (one of ``PATTERN_ROLES``) it is, by held-out evidence for
    that pattern: object AUROC (``object``, ``multi-object``: highest first; ``background``: lowest first),
    spread (``global``: highest first), index (``mixed``). Empty for a profile without patterns."""
    if pattern not in PATTERN_ROLES:
        raise ValueError(f"pattern must be one of {list(PATTERN_ROLES)}, got {pattern!r}")
    if not has_patterns(profile):
        return []
    chosen = [r for r in profile["maps"] if r.get("pattern") == pattern]

    def held(record: dict[str, Any], name: str) -> float:
        value = record["pattern_scores"]["heldout"].get(name)
        return -math.inf if value is None or math.isnan(value) else float(value)

    if pattern in ("object", "multi-object"):
        chosen.sort(key=lambda r: -held(r, "object_auroc"))
    elif pattern == "background":
        chosen.sort(key=lambda r: held(r, "object_auroc") if held(r, "object_auroc") > -math.inf else math.inf)
    elif pattern == "global":
        chosen.sort(key=lambda r: -held(r, "spread"))
    return [r["index"] for r in chosen]


def category_indices(profile: dict[str, Any], category: str) -> list[int]:
    """The map indices that look at ``category``: those whose held-out categories include it, by its held-out
    AUROC against background, highest first; indices whose significant preferred category it is come first."""
    if not has_patterns(profile):
        return []
    scored = []
    for record in profile["maps"]:
        entry = next((c for c in record.get("categories") or [] if c["name"] == category), None)
        if entry is None or entry.get("auroc_heldout") is None:
            continue
        preferred = record.get("category") or {}
        first = preferred.get("name") == category and preferred.get("significant")
        scored.append((not first, -float(entry["auroc_heldout"]), record["index"]))
    return [index for *_, index in sorted(scored)]


def profile_categories(profile: dict[str, Any]) -> list[str]:
    """The categories a profile's dissection measured (held-out images), as it lists them."""
    if not has_patterns(profile):
        return []
    return [c["name"] for c in profile["summary"]["dissection"]["categories"] if c.get("images")]


def patterns_line(summary: dict[str, Any]) -> str | None:
    """The measured patterns next to the controls' in one line, or ``None`` without patterns: "object 3,
    multi-object 9, global 20, background 12, mixed 84 (best random network: object 1, ...)"."""
    counts = summary.get("patterns")
    if counts is None:
        return None
    control = summary["random_control"].get("patterns") or {}
    family = summary["control_patterns"]["by_role"]

    def line(c: dict[str, int]) -> str:
        return ", ".join(f"{role} {c[role]}" for role in PATTERN_ROLES)

    mean = ", ".join(f"{role} {family[role]['mean']:.1f}" for role in PATTERN_ROLES)
    return f"{line(counts)} (best random network: {line(control)}; mean of {len(summary['control_patterns']['each'])}: {mean})"


def format_profile(profile: dict[str, Any]) -> str:
    """A few readable lines: the held-out score of the object maps, the control family, the verdict."""
    s, data = profile["summary"], profile["data"]
    family, diff = s["controls"], s["difference"]
    best = s["random_control"]
    model = profile["model"]

    schemes = "; ".join(
        f"{name} {format_number(v['mean'])} ± {format_number(v['sd'])} "
        f"(max {format_number(v['max'])}, bound {format_number(v['bound'])})"
        for name, v in family["by_scheme"].items()
    )
    low, high = diff["ci95"]
    return "\n".join(
        [
            f"{profile['checkpoint']['file']}: {model['method']} {model['backbone']}, d = {model['d']} maps of "
            f"{data['grid'][0]}×{data['grid'][1]} at {data['size']} px",
            f"object maps: {len(s['object_maps'])} indices chosen on {s['calibration_images']} calibration images "
            f"({', '.join(map(str, s['object_maps'][:8]))}{' …' if len(s['object_maps']) > 8 else ''})",
            f"held-out AUROC of the object maps {format_number(s['object_auroc'])} "
            f"± {format_number(s['object_auroc_se'])} "
            f"({s['heldout_images']} images; all maps {format_number(s['all_maps_auroc'])}; 0.5 = no relation)",
            f"{family['count']} random networks of the same shape ({len(family['seeds'])} seeds of each scheme), "
            f"mean ± sd: {schemes}",
            f"best random network: {format_number(best['object_auroc'])} ({best['scheme']} init, seed {best['seed']}); "
            f"random bound {format_number(family['random_bound'])}",
            f"difference from the best {format_number(diff['object_auroc'])} "
            f"(95 % interval {format_number(low)} to {format_number(high)}), "
            f"needed above {format_number(diff['spread_allowance'])} for the controls' spread: {s['verdict']}",
            f"pointing of the object maps {s['object_pointing']:.1%} (chance {s['pointing_chance']:.1%}; "
            f"best random network {best['object_pointing']:.1%})",
        ]
        + (
            [
                f"measured patterns: {patterns_line(s)}; {s['patterns_heldout_agreement']:.0%} keep their pattern on held-out",
                f"dissection: {s['dissection']['line']}",
            ]
            if has_patterns(profile)
            else [f"measured patterns: {patterns_note(profile)}"]
        )
    )


def measured_line(summary: dict[str, Any]) -> str:
    """What was measured, in one line: "object maps 0.89; the best of 15 random networks 0.81 (bound 0.85):
    localises"."""
    family = summary["controls"]
    return (
        f"object maps {summary['object_auroc']:.2f}; the best of {family['count']} random networks "
        f"{summary['random_control']['object_auroc']:.2f} (bound {family['random_bound']:.2f}): {summary['verdict']}"
    )
