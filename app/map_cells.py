"""One map tile with its caption, and the Inspect button under it that selects the map for *One map*: what
every section showing maps shares."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import figures
from app.client import MapsResult

def map_cell(
    cell: Any,
    result: MapsResult,
    view: int,
    index: int,
    style: figures.Style,
    *,
    inspect: str | None = None,
    hint: str | None = None,
) -> None:
    """Map ``index`` of view ``view`` as a tile with its caption in ``cell``, and with ``inspect`` (a key
    prefix) an "Inspect" button under it that selects the map for One map."""
    cell.image(figures.map_tile(result, view, index, style), caption=figures.map_caption(result, view, index))
    if inspect is not None:
        cell.button(
            f"Inspect {index}",
            key=f"{inspect}-{index}",
            on_click=select_map,
            args=(index, int(result.aligned[index])),
            type="tertiary",
            icon=":material/zoom_in:",
            help=hint,
        )


def select_map(index: int, aligned: int) -> None:
    """Inspect buttons: make ``index`` the selected map and its aligned representation the one shown."""
    st.session_state["selected_map"] = index
    st.session_state["aligned_rep"] = aligned
