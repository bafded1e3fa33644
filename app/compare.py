"""The comparison section: two models on the same image and views, each with its own maps side by side."""

from __future__ import annotations

import streamlit as st

from app import figures
from app.client import MapsResult

COMPARE_MAPS = 4  #: maps per row in the two-model comparison (tiles stay large in half the page)


def own_maps(result: MapsResult) -> tuple[list[int], str]:
    """A model's own maps for the comparison, with what they are: its top object maps by AUROC (best held-out
    AUROC first) or, without a profile, the maps of view 0 its shape heuristic calls object maps."""
    measured = result.measured("object")
    if measured:
        return measured[:COMPARE_MAPS], "its top object maps (by AUROC), best held-out AUROC first"
    return result.ranked("object")[:COMPARE_MAPS], "no profile: its heuristic object maps of view 0"


def comparison_section(
    results: dict[str, MapsResult], indices: list[int], presets: list[str], style: figures.Style
) -> None:
    """Both models on the same image and views, side by side with full-size tiles: by default each model's
    own maps (indices of independently trained models mean nothing to each other); the first model's map
    indices for both only when asked and both have the same d."""
    st.subheader("Two models, the same views")
    first, second = results.values()
    names = list(results)
    same_d = first.d == second.d
    same = st.toggle(
        "Same map indices for both",
        key="compare_same",
        disabled=not same_d,
        help="map i of one model has nothing to do with map i of another trained on its own; use this for "
        "checkpoints of one training run" + ("" if same_d else f" (not here: d differs, {first.d} and {second.d})"),
    )
    same = bool(same and same_d)
    shown = indices[:COMPARE_MAPS]
    st.caption(
        f"The same image and the same {first.num_views} views for both. "
        + (
            f"The same map indices ({', '.join(map(str, shown))}) for both, as chosen by the tab above for "
            f"{names[0]}: meaningful only for related checkpoints."
            if same
            else "Each model's own maps: an index of one model says nothing about the same index of another."
        )
    )
    columns = st.columns(2, gap="large")
    for column, (name, result) in zip(columns, results.items(), strict=True):
        chosen, what = (shown, f"map indices of {names[0]}'s tab") if same else own_maps(result)
        with column:
            st.markdown(f"#### {name}")
            st.caption(
                f"{result.model['method']} · {result.model['backbone']} · {figures.profile_line(result)} · "
                f"shown: {what}"
            )
            for view in range(result.num_views):
                st.markdown(f"**{figures.view_label(result, view, presets[view])}**")
                cells = st.columns(max(len(chosen), 1), gap="small")
                for cell, index in zip(cells, chosen, strict=False):
                    cell.image(figures.map_tile(result, view, index, style), caption=figures.map_caption(result, view, index))
