"""The verdict of a profile against its family of random controls (``lewel.maps.controls``): every control goes
through the model's own procedure (``control_member``), and ``summarize_profile`` makes the profile's ``summary``
and per-index records: the model's roles and scores, the family's, the paired difference from the best control
and the verdict; with measured patterns, ``lewel.maps.profiles.pattern_summary``'s additions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..controls import verdict as controls_verdict
from ..patterns import PatternScores
from ..statistics import PATTERNS
from .pattern_summary import summarize_patterns
from .roles import ROLE_FRACTION, split_summary
from .scores import ImageScores, index_means, selected_mean

#: why patterns were not measured (``summarize_profile``'s ``unmeasured``): asked for, on binary masks
BINARY_MASKS = "the masks do not tell instances apart (binary masks)"
#: ... or not asked for (``patterns=False``, ``lewel profile --no-patterns``)
PATTERNS_OFF = "turned off (--no-patterns)"

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


def summarize_profile(
    calibration: ImageScores,
    heldout: ImageScores,
    controls: Sequence[tuple[dict[str, Any], ImageScores, ImageScores]],
    *,
    fraction: float = ROLE_FRACTION,
    patterns: tuple[PatternScores, PatternScores] | None = None,
    control_patterns: Sequence[tuple[PatternScores, PatternScores]] | None = None,
    unmeasured: str = BINARY_MASKS,
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
    dissection (``summarize_patterns``); without them ``summary.patterns`` is ``None`` and ``patterns_note``
    says why (``unmeasured``).
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
        summary["patterns_note"] = f"not measured: {unmeasured}"
        return summary, records
    if len(control_patterns) != len(controls):
        raise ValueError("every control needs its pattern scores")
    best_index = members.index(best)
    extra, per_index = summarize_patterns(
        (calibration.auroc, heldout.auroc),
        patterns,
        [(c.auroc, h.auroc) for _, c, h in controls],
        control_patterns,
        best_index,
    )
    summary["random_control"]["patterns"] = extra.pop("best_control_patterns")
    summary.update(extra)
    for record, more in zip(records, per_index):
        record.update(more)
    return summary, records
