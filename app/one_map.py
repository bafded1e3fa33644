"""The One map section: the selected map enlarged, its measured role or heuristic pattern, its statistics on
every view, and the same map on every view and warped back onto the original image."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from app import figures, state
from app.client import MapsResult

def role_metric(cell: Any, result: MapsResult, index: int) -> None:
    """The selected map's measured pattern (or role) with its held-out AUROC and, when the answer has it, the
    profile's confidence; its heuristic pattern on view 0 without a profile. One place for the role shown."""
    if result.roles is None or result.profile is None:
        cell.metric("pattern (view 0, heuristic)", str(result.patterns[0, index]))
        return
    auroc = float(result.profile_auroc[index])
    cell.metric(
        "pattern (measured)" if result.pattern_of(index) else "role (measured)",
        figures.role_label(result, index),
        help=f"held-out AUROC {auroc:.2f} (0.5 = no relation)"
        + (f"; looks most at {result.category_of(index)}" if result.category_of(index) else ""),
    )
    cell.caption(f"AUROC {auroc:.2f} held-out")


def selected_map_section(result: MapsResult, small: Image.Image, presets: list[str], style: figures.Style) -> int:
    st.subheader("One map")
    d = result.d
    measured = result.measured("object")
    default = measured[0] if measured else (result.ranked("object") or [0])[0]
    st.session_state["selected_map"] = state.checked_index(st.session_state.get("selected_map", default), d, default)
    index = st.selectbox(
        "Selected map",
        list(range(d)),
        key="selected_map",
        format_func=lambda m: f"map {m}",  # a label that never changes with the image: the state holds the index
    )
    left, right = st.columns([1, 2])
    left.image(figures.map_tile(result, 0, index, style), caption=f"map {index} on view 0, enlarged", width="stretch")
    left.caption(figures.map_caption(result, 0, index) + ". " + figures.contrast_note(result, 0, index, style))
    agreement = result.agreement[index]
    with right:
        cells = st.columns(4)
        role_metric(cells[0], result, index)
        cells[1].metric("channel group", f"{result.groups[index]} of {result.h}")
        cells[2].metric("aligned representation", f"{result.aligned[index]} of {d // result.h}")
        cells[3].metric(
            "cross-view agreement",
            f"{agreement:.3f}" if np.isfinite(agreement) else "–",
            help=result.agreement_definition or None,
        )
        if not np.isfinite(agreement):
            cells[3].caption("one view: agreement needs two")
        table = pd.DataFrame(figures.statistics_rows(result, index, presets)).set_index("view").T
        st.table(table.astype(str))
        st.caption(
            f"The row *{figures.HEURISTIC_ROW}* is a shape rule applied to this map on each view (relative to its "
            "own range, docs/maps.md), not a measurement against objects"
            + (": the measured pattern or role is the one above." if result.profile is not None else ".")
        )
    figures.prefetch(result, [(view, index) for view in range(result.num_views)], style)
    st.markdown("**The same map index on every view**")
    row = st.columns(max(result.num_views, 4))
    for view in range(result.num_views):
        row[view].image(
            figures.map_tile(result, view, index, style),
            caption=f"{figures.view_label(result, view, presets[view])} · {figures.map_caption(result, view, index)}",
        )
    st.markdown("**Warped back onto the original image** (outside a view's crop the image shows unchanged)")
    row = st.columns(max(result.num_views, 4))
    for view in range(result.num_views):
        row[view].image(
            figures.frame_tile(small, result, view, index, style),
            caption=figures.view_label(result, view, presets[view]),
        )
    return index
