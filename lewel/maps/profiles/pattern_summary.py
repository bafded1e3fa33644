"""Figure 5's measured patterns and the per-category dissection of a profile, next to its control family's:
roles by pattern with thresholds from the controls (``lewel.maps.patterns``), decided only where resampling the
images settles them (``lewel.maps.role_confidence``), each role's count against the family's, their agreement on
held-out images, and the categories the maps prefer significantly more than random networks do."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..patterns import (
    CONTROL_QUANTILE,
    DISSECTION_QUANTILE,
    MIN_CATEGORY_IMAGES,
    PATTERN_ROLES,
    UNDECIDED,
    PatternScores,
    category_records,
    count_patterns,
    pooled_quantile,
    preferred_categories,
)
from ..role_confidence import (
    BOOTSTRAP_SEED,
    MIN_ROLE_IMAGES,
    MIN_SELECTIVITY_IMAGES,
    RESAMPLES,
    ROLE_CONFIDENCE,
    RoleVotes,
    SplitValues,
    bootstrap_roles,
)


def split_values(auroc: torch.Tensor, patterns: PatternScores) -> SplitValues:
    """One split's per-image values for resampling: ``auroc`` (N×d per image, NaN rows unscored) and the
    ``PatternScores``' per-image selectivity and spread."""
    return SplitValues(auroc=auroc.to(torch.float64), selectivity=patterns.selectivity_each, spread=patterns.spread_each)


def family_counts(counts: Sequence[dict[str, int]]) -> dict[str, dict[str, float]]:
    """Per role (``PATTERN_ROLES`` and ``UNDECIDED``), the mean, min and max of the controls' ``counts``."""
    return {
        role: {
            "mean": sum(c[role] for c in counts) / len(counts),
            "min": min(c[role] for c in counts),
            "max": max(c[role] for c in counts),
        }
        for role in (*PATTERN_ROLES, UNDECIDED)
    }


def beyond_random(counts: dict[str, int], family: dict[str, dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Per role, the model's decided count against the family's under the same rule: ``beyond`` only when it
    exceeds the largest count any control reaches (a random network is not one network: beat the best),
    ``below`` when it is under the smallest."""
    return {
        role: {
            "count": counts[role],
            "family_min": int(family[role]["min"]),
            "family_max": int(family[role]["max"]),
            "family_mean": family[role]["mean"],
            "beyond": counts[role] > family[role]["max"],
            "below": counts[role] < family[role]["min"],
        }
        for role in PATTERN_ROLES
    }


def decided_note(votes: RoleVotes, d: int, scored: int, instance_images: int) -> str:
    """What the calibration split decided and, when the data floors cut it, why fewer."""
    decided = sum(r != UNDECIDED for r in votes.roles)
    line = (
        f"{decided} of {d} roles decided at {ROLE_CONFIDENCE:.0%} confidence ({RESAMPLES} resamples of {scored} "
        f"calibration images, {instance_images} with two or more instances)"
    )
    if votes.floors["too_few_images"]:
        line += f"; no role is decided on fewer than {MIN_ROLE_IMAGES} images: profile more images"
    elif votes.floors["too_few_instance_images"]:
        line += (
            f"; object and multi-object are not decided with fewer than {MIN_SELECTIVITY_IMAGES} images holding two or "
            "more instances: profile more multi-object images"
        )
    return line


def summarize_patterns(
    auroc: tuple[torch.Tensor, torch.Tensor],
    patterns: tuple[PatternScores, PatternScores],
    control_auroc: Sequence[tuple[torch.Tensor, torch.Tensor]],
    control_patterns: Sequence[tuple[PatternScores, PatternScores]],
    best_control: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The measured patterns and the dissection of a model next to its control family's.

    ``auroc``: the model's per-image object AUROC (N×d, calibration and held-out; NaN rows for unscored images);
    ``patterns``: its ``PatternScores`` (calibration, held-out); the same per control; ``best_control`` indexes
    the control that ``random_control`` reports. Roles and their confidence come from resampling each split's
    images (``lewel.maps.role_confidence.bootstrap_roles``, thresholds from the controls resampled with them):
    ``pattern`` is decided on calibration, ``heldout_pattern`` by the same rule on held-out. Each control gets
    its decided roles by the same rule. A map index prefers a category significantly when its held-out
    preference (``preferred_categories``) exceeds the ``CONTROL_QUANTILE`` of the controls' held-out preferences
    chosen the same way.

    Returns the summary's additions (``patterns`` with ``undecided``, ``patterns_beyond_random``,
    ``pattern_thresholds``, ``patterns_heldout_agreement`` over the indices decided on both splits,
    ``patterns_note``, ``dissection``, the family's decided counts in ``control_patterns`` and
    ``best_control_patterns``) and one dict of additions per map index (``pattern``, ``pattern_leaning``,
    ``pattern_confidence``, ``pattern_scores``, ``heldout_pattern``, ``categories``, ``category``).
    """
    votes = [
        bootstrap_roles(
            split_values(auroc[k], patterns[k]),
            [split_values(a[k], p[k]) for a, p in zip(control_auroc, control_patterns)],
        )
        for k in (0, 1)
    ]
    roles, held_roles = votes[0].roles, votes[1].roles
    control_counts = [count_patterns(r) for r in votes[0].control_roles]
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
                "pattern_leaning": votes[0].leaning[m],
                "pattern_confidence": float(votes[0].confidence[m]),
                "pattern_shares": {role: float(votes[0].shares[m, r]) for r, role in enumerate(PATTERN_ROLES)},
                "pattern_scores": {
                    split: {
                        name: float(votes[k].means[i, m])  # the means the roles were decided from
                        for i, name in enumerate(("object_auroc", "selectivity", "spread"))
                    }
                    for k, split in enumerate(("calibration", "heldout"))
                },
                "heldout_pattern": held_roles[m],
                "heldout_pattern_confidence": float(votes[1].confidence[m]),
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
    family = family_counts(control_counts)
    both = [m for m in range(d) if roles[m] != UNDECIDED and held_roles[m] != UNDECIDED]
    held = patterns[1]
    summary = {
        "patterns": counts,
        "patterns_beyond_random": beyond_random(counts, family),
        "patterns_confidence": {
            "level": ROLE_CONFIDENCE, "resamples": RESAMPLES, "seed": BOOTSTRAP_SEED,
            "min_images": MIN_ROLE_IMAGES, "min_instance_images": MIN_SELECTIVITY_IMAGES,
        },
        "patterns_note": decided_note(
            votes[0], d, int((~auroc[0].isnan()).any(dim=1).sum()), patterns[0].selectivity_images
        ),
        "pattern_thresholds": {
            "calibration": votes[0].thresholds, "heldout": votes[1].thresholds, "quantile": CONTROL_QUANTILE,
        },
        "patterns_heldout_agreement": (sum(roles[m] == held_roles[m] for m in both) / len(both)) if both else math.nan,
        "patterns_heldout_compared": len(both),
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
