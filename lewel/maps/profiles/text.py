"""A profile in words: the images it was measured on, its measured patterns (or why there are none), the
lines ``lewel profile`` prints and the one-line verdict the service's figures carry."""

from __future__ import annotations

from typing import Any

from ...formatting import format_number
from ..pattern_names import against_family
from ..patterns import PATTERN_ROLES, UNDECIDED
from .queries import has_patterns


def describe_data(profile: dict[str, Any]) -> str:
    """One line on the images a profile was measured on."""
    data = profile["data"]
    cal, held = data["calibration"], data["heldout"]
    kind = held.get("kind")
    if kind == "scenes":
        where = f"generated scenes (calibration seed {cal.get('seed')}, held-out seed {held.get('seed')})"
    elif kind == "textured":
        where = (
            f"generated scenes on photographs (textured; calibration seed {cal.get('seed')} on the "
            f"{cal.get('backdrops', {}).get('pool', '?')} backdrops, held-out seed {held.get('seed')} on the "
            f"{held.get('backdrops', {}).get('pool', '?')} backdrops)"
        )
    elif kind == "coco":
        where = f"COCO {held.get('annotations')} ({held.get('rule')})"
    elif kind == "voc":
        where = f"Pascal VOC {held.get('root')}, image set {held.get('image_set')} ({held.get('rule')})"
    else:
        where = f"{held.get('root')} ({held.get('layout')}, {held.get('rule')})"
    return f"{where}: {cal.get('images')} calibration + {held.get('images')} held-out images at {data['size']} px"


def patterns_note(profile: dict[str, Any]) -> str | None:
    """Why ``profile`` has no measured patterns, or, when it has them, how many roles the data decided and
    why fewer when a data floor applied (``summary.patterns_note``)."""
    version = profile.get("version", 0)
    if version < 3:
        return f"a version-{version} profile: made before patterns were measured (run lewel profile again)"
    if version == 3:
        return "a version-3 profile: its roles were cut without asking whether the data settle them (run lewel profile again)"
    return profile["summary"].get("patterns_note") or "not measured"


def role_count(role: str, entry: dict[str, Any]) -> str:
    """One role's decided count against the family's: "multi-object 5, within random (up to 10)", "object 20,
    beyond random (up to 1)", "global 24, below random (38 to 65)"."""
    return f"{role} {entry['count']}, {against_family(entry)}"


def patterns_line(summary: dict[str, Any]) -> str | None:
    """The decided roles against the family's in one line, or ``None`` without patterns: "object 20, beyond
    random (up to 1); multi-object 5, within random (up to 10); ...; undecided 40 of 128 (confidence below 90 %)"."""
    counts = summary.get("patterns")
    if counts is None:
        return None
    beyond = summary["patterns_beyond_random"]
    level = summary["patterns_confidence"]["level"]
    undecided = counts.get(UNDECIDED, 0)
    return "; ".join(role_count(role, beyond[role]) for role in PATTERN_ROLES) + (
        f"; undecided {undecided} of {sum(counts.values())} (confidence below {level:.0%})"
    )


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
            f"top object maps (by AUROC; not the object pattern's maps): {len(s['object_maps'])} indices chosen on "
            f"{s['calibration_images']} calibration images "
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
                f"measured patterns: {patterns_line(s)}",
                f"  {s['patterns_note']}; {heldout_line(s)}",
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


def heldout_line(summary: dict[str, Any]) -> str:
    """The held-out check of the decided roles: "96 % of the 70 indices decided on both splits agree"."""
    compared = summary.get("patterns_heldout_compared", 0)
    if not compared:
        return "no index is decided on both splits: no held-out check"
    return f"{summary['patterns_heldout_agreement']:.0%} of the {compared} indices decided on both splits keep their role on held-out"
