"""Pieces of the response bodies the routes share: a model's profile and summary, the decoded image's
description, and JSON-safe floats."""

from __future__ import annotations

import math

from PIL import Image

from lewel.maps.profiles import describe_data, has_patterns, patterns_line, patterns_note, profile_categories

from ..registry import LoadedModel
from ..schemas import ImageInfo, ModelSummary, ProfileSummary

#: ``ProfileSummary`` fields built from a version-4 profile's measured patterns, not copied from its summary
PATTERN_FIELDS = (
    "patterns", "patterns_beyond_random", "patterns_note", "patterns_line", "control_patterns", "random_control_patterns", "dissection_line",
    "categories",
)


def profile_body(profile: dict | None) -> ProfileSummary | None:
    """The ``ProfileSummary`` of a profile file's contents (``None`` passes through)."""
    if profile is None:
        return None
    summary, data = profile["summary"], profile["data"]
    measured = has_patterns(profile)
    return ProfileSummary(
        **{k: v for k, v in summary.items() if k in ProfileSummary.model_fields and k not in PATTERN_FIELDS},
        data=describe_data(profile),
        benchmark=data["heldout"].get("kind") or "folder",
        size=data["size"],
        grid=data["grid"],
        patterns=summary["patterns"] if measured else None,
        patterns_beyond_random=summary["patterns_beyond_random"] if measured else None,
        patterns_note=patterns_note(profile),
        patterns_line=patterns_line(summary) if measured else None,
        control_patterns=summary["control_patterns"]["by_role"] if measured else None,
        random_control_patterns=summary["random_control"].get("patterns") if measured else None,
        dissection_line=summary["dissection"]["line"] if measured else None,
        categories=profile_categories(profile),
    )


def image_info(image: Image.Image) -> ImageInfo:
    """The decoded upload's size, and the format and mode it came in."""
    return ImageInfo(
        width=image.width,
        height=image.height,
        format=image.info.get("source_format"),
        mode=str(image.info.get("source_mode", image.mode)),
    )


def model_summary(loaded: LoadedModel) -> ModelSummary:
    """The ``ModelSummary`` of the model that answered a request."""
    info = loaded.info()
    return ModelSummary(
        id=loaded.id,
        method=info["method"],
        backbone=info["backbone"],
        d=info["d"],
        h=info["h"],
        device=str(loaded.device),
        source=loaded.file.folder,
    )


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` for a missing, NaN or infinite one (JSON has no NaN)."""
    return float(value) if value is not None and math.isfinite(value) else None
