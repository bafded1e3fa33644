"""lewel.maps.role_confidence: roles decided only where resampling the images settles them, on a synthetic family
whose true roles are known (maps built to follow one instance, all instances, the whole image, the background,
or nothing), and the vectorised rule against the scalar one of lewel.maps.patterns."""

from __future__ import annotations

import math

import torch

from lewel.maps.patterns import PATTERN_ROLES, UNDECIDED, assign_patterns, pattern_thresholds
from lewel.maps.role_confidence import (
    MIN_ROLE_IMAGES,
    MIN_SELECTIVITY_IMAGES,
    SplitValues,
    bootstrap_roles,
    role_codes,
    weighted_means,
)

D = 64
#: the planted roles: 10 object, 10 multi-object, 10 global, 10 background maps, 24 that do nothing
TRUTH = ["object"] * 10 + ["multi-object"] * 10 + ["global"] * 10 + ["background"] * 10 + [None] * 24


def network(offsets: torch.Tensor, n: int, seed: int, planted: bool, noise: float = 0.12) -> SplitValues:
    """One network's per-image values on ``n`` images: per-index ``offsets`` (3×d: the network's own shifts of
    AUROC, selectivity and spread) plus image noise; ``planted`` maps follow ``TRUTH``. Half the images hold two
    or more instances (selectivity NaN on the others), a tenth have no background cells (AUROC NaN)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.tensor([0.5, 0.6, 1.0], dtype=torch.float64)[:, None] + offsets
    if planted:
        for m, role in enumerate(TRUTH):
            if role in ("object", "multi-object"):
                base[0, m], base[1, m], base[2, m] = 0.9, 0.95 if role == "object" else 0.55, 0.5
            elif role == "global":
                base[0, m], base[2, m] = 0.5, 1.3
            elif role == "background":
                base[0, m] = 0.15
    values = base[:, None, :] + noise * torch.randn(3, n, D, generator=g, dtype=torch.float64)
    values[1, 1::2] = math.nan
    values[0, ::10] = math.nan
    return SplitValues(auroc=values[0], selectivity=values[1], spread=values[2])


def family(n: int, seed: int, *, planted: bool = True, controls: int = 15) -> tuple[SplitValues, list[SplitValues]]:
    """The model and ``controls`` random networks on one sample of ``n`` images (``seed``): the networks'
    per-index offsets are fixed (the same networks), only the images change with ``seed``."""
    shapes = torch.Generator().manual_seed(99)
    offsets = [0.04 * torch.randn(3, D, generator=shapes, dtype=torch.float64) for _ in range(controls + 1)]
    model = network(offsets[0], n, seed * 1000, planted)
    return model, [network(offsets[k], n, seed * 1000 + k, False) for k in range(1, controls + 1)]


def test_planted_roles_come_back_with_high_confidence() -> None:
    votes = bootstrap_roles(*family(300, 1))
    for m, truth in enumerate(TRUTH[:40]):
        assert votes.roles[m] == truth and votes.confidence[m] >= 0.99, (m, truth, votes.roles[m])
    assert votes.shares.sum(dim=1).allclose(torch.ones(D, dtype=torch.float64))
    assert all(r in (*PATTERN_ROLES, UNDECIDED) for r in votes.roles)
    assert [r == UNDECIDED for r in votes.roles] == [float(c) < 0.9 for c in votes.confidence]
    controls_object = max(sum(r == "object" for r in roles) for roles in votes.control_roles)
    assert len(votes.control_roles) == 15 and controls_object < 10


def test_noise_only_maps_are_undecided_or_within_random() -> None:
    model, controls = family(300, 2, planted=False)
    votes = bootstrap_roles(model, controls)
    for role in ("object", "multi-object", "background"):
        count = sum(r == role for r in votes.roles)
        assert count <= max(sum(r == role for r in c) for c in votes.control_roles), role
    undecided = [m for m, r in enumerate(votes.roles) if r == UNDECIDED]
    assert undecided and all(votes.leaning[m] in PATTERN_ROLES for m in undecided)


def test_two_samples_of_one_generator_agree_on_decided_roles() -> None:
    first, second = bootstrap_roles(*family(200, 3)), bootstrap_roles(*family(200, 4))
    both = [m for m in range(D) if UNDECIDED not in (first.roles[m], second.roles[m])]
    assert len(both) >= D // 2
    assert sum(first.roles[m] == second.roles[m] for m in both) / len(both) >= 0.95


def test_less_data_decides_fewer_roles_not_other_ones() -> None:
    large, small = bootstrap_roles(*family(400, 5)), bootstrap_roles(*family(40, 6))
    decided = [m for m in range(D) if small.roles[m] != UNDECIDED]
    assert len(decided) < sum(r != UNDECIDED for r in large.roles)
    both = [m for m in decided if large.roles[m] != UNDECIDED]
    assert sum(small.roles[m] == large.roles[m] for m in both) / len(both) >= 0.95  # a 90 % rule errs sometimes
    assert all(small.roles[m] == TRUTH[m] for m in decided if TRUTH[m] is not None)


def test_data_floors_leave_roles_undecided_and_say_so() -> None:
    tiny = bootstrap_roles(*family(MIN_ROLE_IMAGES - 4, 7))
    assert tiny.floors["too_few_images"] and set(tiny.roles) == {UNDECIDED}
    assert tiny.leaning[:10] == ["object"] * 10  # the leaning is kept visible
    few = 2 * MIN_SELECTIVITY_IMAGES - 8  # half of them hold two instances
    votes = bootstrap_roles(*family(few, 8))
    assert votes.floors == {"too_few_images": False, "too_few_instance_images": True}
    assert not {"object", "multi-object"} & set(votes.roles) and "background" in votes.roles


def test_resampled_rule_is_the_scalar_rule_on_all_images() -> None:
    model, controls = family(60, 9)
    values = torch.stack([v.stacked() for v in (model, *controls)])
    means = weighted_means(values, torch.ones(1, 60, dtype=torch.float64))
    expected = [torch.nanmean(v.auroc, dim=0) for v in (model, *controls)]
    assert torch.allclose(means[0, :, 0], torch.stack(expected))
    thresholds = pattern_thresholds(*([means[0, k, j] for k in range(1, 16)] for j in range(3)))
    votes = bootstrap_roles(model, controls, resamples=1)
    for name, value in thresholds.items():
        assert math.isclose(votes.thresholds[name], value, rel_tol=1e-12), name
    limits = torch.tensor([[thresholds[k] for k in ("on_objects", "on_background", "selective", "spread")]], dtype=torch.float64)
    codes = role_codes(means, limits)[0]
    for k in range(16):
        scalar = assign_patterns(means[0, k, 0], means[0, k, 1], means[0, k, 2], thresholds)
        assert [PATTERN_ROLES[c] for c in codes[k].tolist()] == scalar


def test_the_same_seed_gives_the_same_roles() -> None:
    model, controls = family(80, 10)
    first, second = bootstrap_roles(model, controls), bootstrap_roles(model, controls)
    assert first.roles == second.roles and torch.equal(first.shares, second.shares)
