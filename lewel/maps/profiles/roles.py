"""The roles of a profile's map indices: ``object`` (among the highest mean AUROC), ``background`` (among the
lowest) and ``mixed``, chosen on the calibration split only, and the held-out scores of that choice
(``split_summary``), the same procedure for the model and for every random control."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..controls import mean_se
from .scores import ImageScores, index_means, selected_mean

ROLES = ("object", "background", "mixed")
DISPLAY_RANK = {"object": 0, "mixed": 1, "background": 2}  #: the order of roles when all maps are listed
ROLE_FRACTION = 0.1  #: the ceil(10 %) of indices with the highest calibration AUROC are object maps (lowest: background)


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
