"""The names of the paper's three kinds of alignment maps, in index order: the labels of ``lewel.maps.statistics``'s
pattern indices. A module of its own, without torch, so that what only draws or names the patterns (the
pictures of ``lewel.drawing.render``, the front end) can read them without loading torch; and how a measured role is written with its confidence (``role_text``)."""

from __future__ import annotations

PATTERNS = ("object", "multi-object", "global")  #: the paper's three kinds of maps, in index order
UNDECIDED = "undecided"  #: a map whose measured role the data do not settle (``lewel.maps.role_confidence``)


def role_text(pattern: str | None, leaning: str | None = None, confidence: float | None = None) -> str:
    """A measured role with how sure it is, as pages show it: "object (93 %)", "undecided (leaning object,
    62 %)", "–" without one. The confidence is the share of image resamples the leading role won."""
    if not pattern:
        return "–"
    sure = "" if confidence is None or confidence != confidence else f"{100 * confidence:.0f} %"
    if pattern == UNDECIDED:
        inside = ", ".join(x for x in (f"leaning {leaning}" if leaning else "", sure) if x)
        return f"{UNDECIDED} ({inside})" if inside else UNDECIDED
    return f"{pattern} ({sure})" if sure else pattern


def against_family(entry: dict) -> str:
    """A decided role's count against the random family's (``summary.patterns_beyond_random[role]``): "beyond
    random (up to 1)", "within random (up to 10)", "below random (38 to 65)"."""
    if entry.get("below"):
        return f"below random ({entry['family_min']} to {entry['family_max']})"
    return f"{'beyond' if entry['beyond'] else 'within'} random (up to {entry['family_max']})"
