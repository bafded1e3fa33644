"""How sure a measured role is: Figure 5's roles (``lewel.maps.patterns.assign_patterns``) resampled over images.

A role is cut from per-index means at thresholds taken from the random control family, and both move when the
sample of images moves. ``bootstrap_roles`` draws ``RESAMPLES`` bootstrap samples of one split's images (seeded),
the same draw for the model and every control, recomputes every network's per-index means and the family's
thresholds on each, assigns every network's roles by the one rule, and counts the votes. A map index's role is
the role that wins the resamples; it is *decided* only when it wins at least ``ROLE_CONFIDENCE`` of them, else the
index is ``UNDECIDED`` (``lewel.maps.patterns``) and its leading role is kept as its leaning. Controls get their decided roles by the same
rule from the same draws, so "more object maps than random" compares like with like.

Why ``ROLE_CONFIDENCE`` is 0.9, measured on independent samples: docs/maps.md, "How sure a role is"
(``benchmarks/role_stability.py``). The bootstrap itself is unreliable on few
images, so below ``MIN_ROLE_IMAGES`` scored images nothing is decided, and object against multi-object is decided
only with ``MIN_SELECTIVITY_IMAGES`` images holding two or more instances (``role_floors`` says which applies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .patterns import CONTROL_QUANTILE, PATTERN_ROLES, UNDECIDED
ROLE_CONFIDENCE = 0.9  #: a role is decided when it wins at least this share of the resamples
RESAMPLES = 400  #: bootstrap resamples of a split's images
BOOTSTRAP_SEED = 0  #: the resamples' seed (fixed: a profile is reproducible)
MIN_ROLE_IMAGES = 32  #: no role is decided on fewer scored images of a split
MIN_SELECTIVITY_IMAGES = 32  #: object vs multi-object needs this many images with two or more instances
CHUNK = 50  #: resamples computed at once (bounds memory: CHUNK × networks × d float64 per value)

OBJECT, MULTI, GLOBAL, BACKGROUND, MIXED = (PATTERN_ROLES.index(r) for r in ("object", "multi-object", "global", "background", "mixed"))


@dataclass(frozen=True)
class SplitValues:
    """One network's per-image values on one split, each N×d float64: ``auroc`` (object AUROC, NaN on images
    without object or background cells), ``selectivity`` (NaN on images with fewer than two instances owning
    cells) and ``spread``."""

    auroc: torch.Tensor
    selectivity: torch.Tensor
    spread: torch.Tensor

    def first(self, count: int | None) -> SplitValues:
        """The values of the first ``count`` images (all for ``None``): a smaller sample of the same split."""
        return SplitValues(self.auroc[:count], self.selectivity[:count], self.spread[:count])

    def stacked(self) -> torch.Tensor:
        """3×N×d."""
        return torch.stack([self.auroc, self.selectivity, self.spread]).to(torch.float64)


@dataclass(frozen=True)
class RoleVotes:
    """The roles of one split: ``shares`` (d×5, the model's share of resamples per role of ``PATTERN_ROLES``),
    ``leaning`` (d role names, the winner), ``confidence`` (d, its share), ``roles`` (d names: the winner where
    decided, else ``UNDECIDED``), ``control_roles`` (one such list per control), the point-estimate
    ``thresholds`` (all images, as ``lewel.maps.patterns.pattern_thresholds``), ``means`` (3×d: the model's
    AUROC, selectivity and spread means over all images) and ``floors`` (the data floors that applied)."""

    shares: torch.Tensor
    leaning: list[str]
    confidence: torch.Tensor
    roles: list[str]
    control_roles: list[list[str]]
    thresholds: dict[str, float]
    means: torch.Tensor
    floors: dict[str, bool]


def weighted_means(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """NaN-aware means of ``values`` (G×K×N×d: networks, kinds of value, images, indices) under per-image
    ``weights`` (B×N bootstrap counts) -> B×G×K×d (NaN where no weighted image has a value)."""
    present = ~values.isnan()
    total = torch.einsum("bn,gknd->bgkd", weights, torch.where(present, values, torch.zeros_like(values)))
    count = torch.einsum("bn,gknd->bgkd", weights, present.to(values.dtype))
    return torch.where(count > 0, total / count.clamp(min=1e-300), torch.full_like(total, float("nan")))


def family_thresholds(control_means: torch.Tensor) -> torch.Tensor:
    """Per resample, the thresholds of ``lewel.maps.patterns.pattern_thresholds`` from the controls' means
    (B×C×3×d) pooled over controls and indices -> B×4: on objects, on background, selective, spread."""
    b = control_means.shape[0]
    pooled = control_means.transpose(1, 2).reshape(b, 3, -1)  # B×3×(C·d)
    return torch.stack(
        [
            torch.nanquantile(pooled[:, 0], CONTROL_QUANTILE, dim=1),
            torch.nanquantile(pooled[:, 0], 1 - CONTROL_QUANTILE, dim=1),
            torch.nanquantile(pooled[:, 1], CONTROL_QUANTILE, dim=1),
            torch.nanquantile(pooled[:, 2], 0.5, dim=1),
        ],
        dim=1,
    )


def role_codes(means: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """``lewel.maps.patterns.assign_patterns`` on tensors: ``means`` B×G×3×d, ``thresholds`` B×4 -> B×G×d
    indices into ``PATTERN_ROLES`` (comparisons with NaN are false, as in the scalar rule)."""
    auroc, selective, spread = means[:, :, 0], means[:, :, 1], means[:, :, 2]
    on, below, sel_t, spread_t = (thresholds[:, k, None, None] for k in range(4))

    def code(value: int) -> torch.Tensor:
        return torch.full(auroc.shape, value, dtype=torch.int64)

    on_objects = torch.where(selective.isnan(), code(MIXED), torch.where(selective > sel_t, code(OBJECT), code(MULTI)))
    elsewhere = torch.where(auroc < below, code(BACKGROUND), torch.where(spread >= spread_t, code(GLOBAL), code(MIXED)))
    return torch.where(auroc > on, on_objects, elsewhere)


def role_floors(scored_images: int, selectivity_images: int) -> dict[str, bool]:
    """Which data floors apply to a split: ``too_few_images`` (fewer than ``MIN_ROLE_IMAGES`` scored images: no
    role decided) and ``too_few_instance_images`` (fewer than ``MIN_SELECTIVITY_IMAGES`` with two or more
    instances: object and multi-object not decided)."""
    return {
        "too_few_images": scored_images < MIN_ROLE_IMAGES,
        "too_few_instance_images": selectivity_images < MIN_SELECTIVITY_IMAGES,
    }


def decide(shares: torch.Tensor, floors: dict[str, bool], confidence: float = ROLE_CONFIDENCE) -> tuple[list[str], list[str], torch.Tensor]:
    """``shares`` (...×d×5 vote shares) -> the leading roles, the decided roles (``UNDECIDED`` below
    ``confidence`` or under a floor), and the leading share; for ``...`` = () the lists are flat."""
    top, leading = shares.max(dim=-1)
    names = [PATTERN_ROLES[k] for k in leading.flatten().tolist()]
    kept = []
    for name, share in zip(names, top.flatten().tolist()):
        ruled_out = floors["too_few_images"] or (floors["too_few_instance_images"] and name in ("object", "multi-object"))
        kept.append(name if share >= confidence and not ruled_out else UNDECIDED)
    return names, kept, top


def bootstrap_roles(
    model: SplitValues,
    controls: Sequence[SplitValues],
    *,
    resamples: int = RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = ROLE_CONFIDENCE,
) -> RoleVotes:
    """The model's and every control's roles on one split with their bootstrap confidence (module docstring).

    ``model`` and ``controls`` hold the values of the same N images (N×d each). Deterministic for a ``seed``."""
    if not controls:
        raise ValueError("roles need at least one random control for their thresholds")
    values = torch.stack([model.stacked(), *(c.stacked() for c in controls)])  # G×3×N×d
    g, _, n, d = values.shape
    if n == 0:
        raise ValueError("roles need at least one image")
    generator = torch.Generator().manual_seed(seed)
    votes = torch.zeros(g, d, len(PATTERN_ROLES), dtype=torch.float64)
    for start in range(0, resamples, CHUNK):
        b = min(CHUNK, resamples - start)
        draws = torch.randint(n, (b, n), generator=generator)
        weights = torch.zeros(b, n, dtype=torch.float64).scatter_add_(1, draws, torch.ones(b, n, dtype=torch.float64))
        means = weighted_means(values, weights)
        codes = role_codes(means, family_thresholds(means[:, 1:]))  # B×G×d
        votes += torch.nn.functional.one_hot(codes, len(PATTERN_ROLES)).to(torch.float64).sum(dim=0)
    shares = votes / resamples
    point = weighted_means(values, torch.ones(1, n, dtype=torch.float64))
    limits = family_thresholds(point[:, 1:])[0].tolist()
    floors = role_floors(
        int((~model.auroc.isnan()).any(dim=1).sum()), int((~model.selectivity.isnan()).any(dim=1).sum())
    )
    leaning, roles, top = decide(shares[0], floors, confidence)
    control_roles = [decide(shares[k], floors, confidence)[1] for k in range(1, g)]
    return RoleVotes(
        shares=shares[0],
        leaning=leaning,
        confidence=top,
        roles=roles,
        control_roles=control_roles,
        thresholds=dict(zip(("on_objects", "on_background", "selective", "spread"), limits)),
        means=point[0, 0],
        floors=floors,
    )
