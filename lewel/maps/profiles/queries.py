"""What a profile says about its map indices: which to show for a role, a measured pattern or a category, in
the profile's measured order; which categories it measured; and how well a model localises (to choose the model
to show among several)."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..patterns import PATTERN_ROLES, UNDECIDED
from .roles import DISPLAY_RANK
from .sidecar import ProfileError, find_profile


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
    """Whether ``profile`` holds measured patterns with their confidence (version 4 on masks with instances;
    version 3 cut roles without asking whether the data settle them, so they are not shown as measured)."""
    return bool(profile) and profile.get("version", 0) >= 4 and profile["summary"].get("patterns") is not None


def pattern_indices(profile: dict[str, Any], pattern: str) -> list[int]:
    """The map indices whose decided ``pattern`` (one of ``PATTERN_ROLES``, or ``UNDECIDED``) it is, by held-out
    evidence for that pattern: object AUROC (``object``, ``multi-object``: highest first; ``background``: lowest
    first), spread (``global``: highest first), index (``mixed``, ``undecided``). Empty for a profile without
    patterns."""
    if pattern not in (*PATTERN_ROLES, UNDECIDED):
        raise ValueError(f"pattern must be one of {[*PATTERN_ROLES, UNDECIDED]}, got {pattern!r}")
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
