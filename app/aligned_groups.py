"""The Grouped aligned representations section: the h maps (one per channel group) that pool one aligned
representation, on every view, and on demand each view's embeddings against view 0's."""

from __future__ import annotations

import streamlit as st

from app import figures, state
from app.answers import client, fetch_embeddings
from app.client import MapsResult, ViewParams
from app.image_source import Picked

def grouped_section(
    result: MapsResult, picked: Picked, model: str, params: ViewParams, presets: list[str], style: figures.Style
) -> None:
    st.subheader("Grouped aligned representations")
    count = result.d // result.h
    fallback = int(result.aligned[state.checked_index(st.session_state.get("selected_map", 0), result.d)])
    asked = state.valid_int(st.session_state.get("aligned_rep", fallback), 0, 10**9)
    st.session_state["aligned_rep"] = min(asked, count - 1) if asked is not None else fallback
    # no max_value: the browser would refuse a larger number with its own message and keep the old value; it is
    # lowered here instead, and said (as First map index does)
    aligned = st.number_input(f"Aligned representation (0–{count - 1})", min_value=0, step=1, key="aligned_rep")
    if asked is not None and asked > count - 1:
        st.caption(f"{asked} is past the end: this model has {count} aligned representations (0–{count - 1}), so it shows {count - 1}.")
    members = result.aligned_maps(int(aligned))
    figures.prefetch(result, [(view, index) for view in range(result.num_views) for index in members], style)
    st.caption(
        f"Aligned representation {aligned} concatenates the {result.h} channel groups of the feature map, "
        f"group g pooled with map g·{count} + {aligned}: maps {', '.join(map(str, members))}."
    )
    for view in range(result.num_views):
        st.markdown(f"**{figures.view_label(result, view, presets[view])}**")
        cells = st.columns(max(result.h, 4))
        for group, index in enumerate(members):
            cells[group].image(
                figures.map_tile(result, view, index, style),
                caption=f"group {group} · {figures.map_caption(result, view, index)}",
            )
    if params.views == 0:
        return
    if not st.toggle(
        "Cosine of each view's embeddings to view 0's",
        key="show_cosines",
        help="asks the service for the global and aligned embeddings of every view (one more request)",
    ):
        return
    with st.spinner("Computing the embeddings of every view …"):
        embeddings = fetch_embeddings(client().base_url, picked.data, picked.name, model, params)
    st.dataframe(figures.embedding_rows(embeddings, int(aligned), presets), hide_index=True)
