"""Figure 5's measured patterns and the per-category dissection of a profile, next to its control family's:
roles by pattern with thresholds from the controls (``lewel.maps.patterns``), their agreement on held-out images,
and the categories the maps prefer significantly more than random networks do."""

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
    PatternScores,
    assign_patterns,
    category_records,
    count_patterns,
    pattern_thresholds,
    pooled_quantile,
    preferred_categories,
)


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
