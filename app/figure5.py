"""The summary and the Figure-5 section: the profile's banner and pattern counts, the tabs (measured roles,
measured or heuristic patterns, all maps), a row per view of each tab's maps, and the maps that look at a
category of the profile."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from lewel.maps.pattern_names import UNDECIDED, against_family

from app import figures, state
from app.client import MapsResult
from app.map_cells import map_cell

#: tab label -> what it shows: a measured role of the model's profile, a heuristic pattern of view 0, or all
MEASURED_TABS = {"Top object maps (by AUROC)": "role:object", "Background maps (by AUROC)": "role:background"}
#: how the two "object" sets relate, said once under the counts (the tabs' role and the counts' pattern)
TWO_SETS = (
    "Two different sets: the **top object maps (by AUROC)** (first tab) are the 10 % of map indices with the highest "
    "AUROC on calibration images; the **maps with the object pattern** (counted here) are those Figure 5's measured "
    "rule calls object (on objects and selective to one instance). A map can be in both, one or neither."
)
#: with a profile that measured Figure 5's patterns, these replace the heuristic tabs (``/v1/maps?pattern=``)
PATTERN_TABS = {
    "Object pattern (measured)": "pattern:object",
    "Multi-object pattern (measured)": "pattern:multi-object",
    "Global pattern (measured)": "pattern:global",
    "Undecided (measured)": "pattern:undecided",
    "All": None,
}
PATTERN_MEANING = {
    "object": "on objects and selective to one instance",
    "multi-object": "on objects, covering several instances",
    "global": "spread over the image, no preference between objects and background",
    "background": "on the background",
    "mixed": "none of the others",
    "undecided": "no role wins 90 % of the resamples of the calibration images: the data do not settle it",
}
HEURISTIC_TABS = {
    "Object (heuristic)": "object",
    "Multi-object (heuristic)": "multi-object",
    "Global (heuristic)": "global",
    "All": None,
}
CATEGORY_MAPS = 8  #: tiles of the maps that look at a category (two rows of the comparison's four)


def tabs_for(result: MapsResult) -> dict[str, str | None]:
    """The tabs of the Figure-5 section: the measured ones first when the model has a profile; the measured
    patterns instead of the shape heuristic when the profile has them."""
    measured = MEASURED_TABS if result.profile is not None else {}
    return {**measured, **(PATTERN_TABS if result.has_patterns else HEURISTIC_TABS)}


def indices_for(result: MapsResult, pattern: str | None) -> list[int]:
    """Every map a tab's order gives, without the page around it: measured roles, measured patterns, or the
    heuristic ranking (each as the service ordered it in its answer)."""
    if pattern is not None and pattern.startswith("role:"):
        return result.measured(pattern.removeprefix("role:"))
    if pattern is not None and pattern.startswith("pattern:"):
        return result.by_pattern(pattern.removeprefix("pattern:"))
    return result.ranked(pattern)


def pattern_summary(result: MapsResult, image_name: str = "") -> None:
    d, grid = result.d, result.maps.shape[-2:]
    model = result.model
    kind, text = figures.profile_banner(result)
    icon = ":material/verified:" if kind == "success" else ":material/warning:"
    (st.success if kind == "success" else st.warning)(text, icon=icon)
    profile = result.profile or {}
    if result.has_patterns and profile.get("patterns_line"):
        st.caption(f"Figure 5, measured: {profile['patterns_line']}.")
    elif result.profile is not None:
        st.caption(
            "This profile lacks Figure 5's measured patterns "
            f"({profile.get('patterns_note') or 'an older profile version'}): the pattern counts below are the "
            "shape heuristic."
        )
    mask_note = " · AUROC on this image from the scene's mask" if result.has_mask else ""
    shown = f"**{image_name}** · " if image_name else ""
    st.caption(
        f"{shown}**{model['id']}** · {model['method']} · {model['backbone']} on {model['device']} · "
        f"{d} maps on a {grid[0]}×{grid[1]} grid · {result.h} channel groups × {d // result.h} aligned "
        f"representations{mask_note}"
    )
    counts = st.columns(4)
    for cell, (label, value, help_text, against) in zip(counts, pattern_counts(result), strict=False):
        cell.metric(label, value, help=help_text)
        if against:  # a caption, not a metric delta: a delta draws an arrow, as if the number had moved
            cell.caption(against)
    if result.has_patterns:
        st.caption(TWO_SETS)
    finite = result.agreement[np.isfinite(result.agreement)]
    counts[3].metric(
        "mean cross-view agreement",
        f"{finite.mean():.3f}" if finite.size else "–",
        help=result.agreement_definition or None,
    )


def against_random(result: MapsResult, pattern: str) -> str | None:
    """A decided pattern's count against the random family's, "beyond random (up to 1)" (``None`` without)."""
    entry = ((result.profile or {}).get("patterns_beyond_random") or {}).get(pattern)
    return against_family(entry) if entry else None


def pattern_counts(result: MapsResult) -> list[tuple[str, str, str, str | None]]:
    """``(label, value, help, against random)`` of the summary's pattern counts: the profile's decided patterns
    when it has them ("maps with the object pattern", each against the random family's count and with the
    undecided maps in its help), else view 0's shape heuristic. One place for the roles' counts."""
    d = result.d
    measured = (result.profile or {}).get("patterns") if result.has_patterns else None
    if measured is not None:
        undecided = measured.get(UNDECIDED, 0)
        return [
            (
                f"maps with the {pattern} pattern",
                f"{measured.get(pattern, 0)} / {d}",
                f"decided from instance masks by lewel profile ({PATTERN_MEANING[pattern]}), counted only where the "
                f"role wins 90 % of the image resamples; {undecided} maps are undecided (their own tab). Against "
                "random: the most any of the random networks reaches under the same rule. Not the top object maps "
                "(by AUROC) of the first tab.",
                against_random(result, pattern),
            )
            for pattern in ("object", "multi-object", "global")
        ]
    return [
        (
            f"{pattern} maps (view 0, heuristic)",
            f"{result.count(pattern)} / {d}",
            "classified by shape relative to each map's own range (docs/maps.md): a heuristic, not a measurement "
            "against objects",
            None,
        )
        for pattern in ("object", "multi-object", "global")
    ]


def tab_indices(result: MapsResult, pattern: str | None, per_row: int, tab: str) -> list[int]:
    """The maps a tab shows: the profile's object or background maps (``role:…``) in measured order, the
    maps of a measured Figure-5 pattern (``pattern:…``, as ``/v1/maps?pattern=`` orders them), those of view 0
    classified as a heuristic pattern (most typical first), or all by index."""
    if pattern is not None and pattern.startswith("pattern:"):
        name = pattern.removeprefix("pattern:")
        chosen = indices_for(result, pattern)
        counts = (result.profile or {}).get("patterns") or {}
        family = against_random(result, name)
        against = f", {family}" if family else ""
        if name == UNDECIDED:
            st.caption(
                f"The model's **{len(chosen)} undecided maps**: {PATTERN_MEANING[UNDECIDED]}. Under each tile the "
                "role they lean to and its share of the resamples; they are counted under no pattern."
            )
            return chosen[:per_row]
        if not chosen:
            st.info(
                f"**No {name} maps**: `lewel profile` decided none of this model's {result.d} maps as {name} "
                f"({PATTERN_MEANING.get(name, '')}){against}; {counts.get(UNDECIDED, 0)} maps are undecided (their "
                "own tab). An absent pattern is a measurement, not an error."
            )
            return []
        st.caption(
            f"The model's **{counts.get(name, len(chosen))} maps with the {name} pattern**, decided from instance masks by "
            f"`lewel profile` ({PATTERN_MEANING.get(name, '')}){against}; best first, as `/v1/maps?pattern={name}` "
            f"orders them. The {min(per_row, len(chosen))} first are shown; under each tile its measured pattern, "
            "held-out AUROC and the category it looks at most."
        )
        return chosen[:per_row]
    if pattern is not None and pattern.startswith("role:"):
        role = pattern.removeprefix("role:")
        chosen = result.measured(role)
        profile = result.profile or {}
        which = "top object maps (by AUROC)" if role == "object" else "background maps (by AUROC, lowest first)"
        st.caption(
            f"The model's **{len(chosen)} {which}**, measured by `lewel profile`: the 10 % of indices with the "
            f"{'highest' if role == 'object' else 'lowest'} AUROC on calibration images, whatever their Figure-5 "
            f"pattern; {'highest' if role == 'object' else 'lowest'} held-out AUROC first (under each tile; "
            f"{profile.get('heldout_images', '?')} held-out images, 0.5 = no relation). The same map indices "
            "on every row" + ("; 'here' is the AUROC on this image, from the scene's mask." if result.has_mask else ".")
        )
        return chosen[:per_row]
    ranked = result.ranked(pattern)
    if pattern is not None:
        if result.profile is not None and not result.has_patterns:
            note = result.profile.get("patterns_note") or "its profile did not measure them"
            st.caption(
                f"This model's profile has no measured patterns ({note}): the tab below is the shape heuristic. "
                "A version-3 profile on instance masks measures them (`lewel profile`, docs/maps.md)."
            )
        if not ranked:
            st.info(f"No map of view 0 is classified as a {pattern} map (docs/maps.md has the rule).")
            return []
        st.caption(
            f"{len(ranked)} of {result.d} maps of view 0 are **{pattern}** maps by a shape heuristic (relative "
            f"to each map's own range, not measured against objects); the {min(per_row, len(ranked))} most "
            "typical are shown, most typical first. Each row shows the same maps on another view (their pattern "
            "there may differ)."
        )
        return ranked[:per_row]
    key = f"first-{tab}"
    last = max(result.d - per_row, 0)
    asked = state.valid_int(st.session_state.get(key, 0), 0, 10**9)
    start_at = min(asked if asked is not None else 0, last)
    st.session_state[key] = start_at
    # no max_value: the browser would refuse a larger number without a word; it is lowered here, and said
    start = st.number_input("First map index", min_value=0, step=per_row, key=key)
    note = f" ({asked} is past the end: the last {per_row} maps start at {last})" if asked is not None and asked > last else ""
    st.caption(f"Maps {start}–{min(start + per_row, result.d) - 1} of {result.d}, by index{note}.")
    return ranked[int(start) : int(start) + per_row]


def figure_rows(
    result: MapsResult,
    indices: list[int],
    small: Image.Image,
    source_size: tuple[int, int],
    presets: list[str],
    style: figures.Style,
    tab: str,
) -> None:
    """The Figure-5 layout: a row per view (input with the crop, the view, its maps), and under the maps of
    view 0 a button that selects the map."""
    widths = [1.3, 1] + [1] * len(indices)
    figures.prefetch(result, [(view, index) for view in range(result.num_views) for index in indices], style)
    for view in range(result.num_views):
        st.markdown(f"**{figures.view_label(result, view, presets[view])}**")
        cells = st.columns(widths, gap="small")
        cells[0].image(figures.input_tile(small, result, view, source_size), caption="input and crop")
        cells[1].image(figures.view_tile(result, view), caption="augmented view" if view else "model input")
        for cell, index in zip(cells[2:], indices, strict=True):
            map_cell(cell, result, view, index, style, inspect=f"inspect-{tab}" if view == 0 else None)



def figure5_section(
    result: MapsResult,
    small: Image.Image,
    source_size: tuple[int, int],
    presets: list[str],
    style: figures.Style,
    per_row: int,
) -> tuple[str | None, list[int]]:
    """The tabs of Figure 5, the open one drawn; returns the open tab's pattern and the map indices it shows
    (what the downloads and the comparison take)."""
    pattern, indices = None, []
    tab_set = tabs_for(result)
    if st.session_state.get("pattern_tab") not in tab_set:  # e.g. a measured tab, then a model without a profile
        st.session_state["pattern_tab"] = next(iter(tab_set))
    tabs = st.tabs(list(tab_set), key="pattern_tab", on_change="rerun")
    for tab, (label, tab_pattern) in zip(tabs, tab_set.items(), strict=True):
        if not tab.open:
            continue
        with tab:
            indices = tab_indices(result, tab_pattern, per_row, label)
            figure_rows(result, indices, small, source_size, presets, style, tab=label)
            pattern = tab_pattern
    return pattern, indices


def category_section(result: MapsResult, presets: list[str], style: figures.Style) -> None:
    """A selector "maps that look at CATEGORY" over the profile's categories; the service picks and orders
    the maps (``/v1/maps?category=``), their tiles on view 0 with Inspect buttons."""
    profile = result.profile or {}
    names = list(profile.get("categories") or [])
    st.markdown("**Maps that look at a category**")
    if profile.get("dissection_line"):
        st.caption(f"Dissection of the profile's held-out images: {profile['dissection_line']}.")
    if st.session_state.get("look_category") not in [None, *names]:
        st.session_state["look_category"] = None
    chosen = st.selectbox(
        "Maps that look at",
        names,
        index=None,
        placeholder="choose a category",
        key="look_category",
        help="the maps whose held-out AUROC of this category's object cells is highest, as the profile measured",
    )
    if chosen is None:
        return
    indices = result.by_category(chosen)
    if not indices:
        st.info(f"No map of this model looks at {chosen} more than at other things, by its profile.")
        return
    shown = indices[:CATEGORY_MAPS]
    st.caption(f"{len(indices)} maps look at **{chosen}**, best first (`/v1/maps?category={chosen}`); view 0.")
    cells = st.columns(max(len(shown), 4))
    for cell, index in zip(cells, shown, strict=False):
        map_cell(cell, result, 0, index, style, inspect="inspect-category")
