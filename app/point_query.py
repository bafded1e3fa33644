"""The Maps that look here section: a click on the input image chooses a point, and the service ranks the maps
that look there (``POST /v1/point``)."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import streamlit as st
from PIL import Image

from app import figures
from app.answers import CACHE_SECONDS
from app.client import ApiClient, MapsResult, ViewParams
from app.image_source import Picked
from app.map_cells import map_cell

POINT_MAPS = 8  #: maps the "Maps that look here" section lists


@st.cache_data(max_entries=32, ttl=CACHE_SECONDS, show_spinner=False)
def fetch_point(
    base_url: str,
    image: bytes,
    name: str,
    model: str,
    params: ViewParams,
    point: tuple[int, int],
    described: str = "",
) -> dict[str, Any]:
    """The service's ranking of the maps at ``point`` (``/v1/point``), cached like ``fetch_maps``."""
    return ApiClient(base_url).point(image, name, model, params, point, top=POINT_MAPS)


def clear_point() -> None:
    st.session_state.pop("point", None)


def clicked_point(small: Image.Image, source_size: tuple[int, int]) -> None:
    """The input image as a click target (``streamlit-image-coordinates``): a new click becomes the point, in
    original-image pixels; the current point is marked."""
    from streamlit_image_coordinates import streamlit_image_coordinates

    point = st.session_state.get("point")
    marked = figures.mark_point(small, point, source_size) if isinstance(point, tuple) else small
    click = streamlit_image_coordinates(marked, key="point_click", cursor="crosshair", image_format="JPEG", jpeg_quality=88)
    if not click or click.get("unix_time") == st.session_state.get("_point_click_time"):
        return
    st.session_state["_point_click_time"] = click.get("unix_time")
    shown_w, shown_h = click.get("width") or small.width, click.get("height") or small.height
    x = min(int(click["x"] * source_size[0] / shown_w), source_size[0] - 1)
    y = min(int(click["y"] * source_size[1] / shown_h), source_size[1] - 1)
    st.session_state["point"] = (max(x, 0), max(y, 0))
    st.rerun()


def looking_section(
    api: ApiClient,
    picked: Picked,
    model: str,
    described: str,
    params: ViewParams,
    small: Image.Image,
    source_size: tuple[int, int],
    result: MapsResult,
    style: figures.Style,
) -> None:
    """Maps that look here: click the input image, and the service ranks the maps by their value at that
    point relative to uniform, over the views whose crop contains it."""
    st.subheader("Maps that look here")
    owner = f"{picked.name}:{hashlib.blake2b(picked.data, digest_size=8).hexdigest()}"
    if st.session_state.get("_point_image") not in (None, owner):  # a point belongs to its image
        clear_point()
    st.session_state["_point_image"] = owner
    point = st.session_state.get("point")
    if isinstance(point, tuple) and not (0 <= point[0] < source_size[0] and 0 <= point[1] < source_size[1]):
        st.warning(
            f"The point {point[0]},{point[1]} lies outside this image ({source_size[0]}×{source_size[1]} px): "
            "click the image to choose another.",
            icon=":material/warning:",
        )
        clear_point()
        point = None
    left, right = st.columns([1, 2])
    with left:
        clicked_point(small, source_size)
        st.caption("Click the image to choose a point (it travels in the URL as `point=X,Y`).")
    with right:
        if not isinstance(point, tuple):
            st.info("Click a point of the input image to see which maps look there.", icon=":material/ads_click:")
            return
        with st.spinner("Ranking the maps at the point …"):
            answer = fetch_point(api.base_url, picked.data, picked.name, model, params, point, described)
        seen = answer["views"]
        st.caption(
            f"At **x={point[0]}, y={point[1]}** (original-image pixels), seen by view{'s' if len(seen) > 1 else ''} "
            f"{', '.join(map(str, seen))} of {result.num_views}. Ranked by the service (`POST /v1/point`): "
            f"{answer['ranking']}. ×uniform > 1: the map is higher here than its average cell."
        )
        rows = [
            {
                "map": m["index"],
                "× uniform here": round(m["relative"], 3),
                "views above uniform": f"{m['views_above']:.0%}",
                "cross-view agreement": "–" if m["agreement"] is None else round(m["agreement"], 3),
                "role (measured)": m.get("measured_pattern") or m.get("role") or "no profile",
                "held-out AUROC": "–" if m.get("auroc_heldout") is None else round(m["auroc_heldout"], 2),
            }
            for m in answer["maps"]
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
        st.button("Clear the point", on_click=clear_point, key="clear_point", icon=":material/close:")
    shown = [m["index"] for m in answer["maps"]][:6]
    cells = st.columns(max(len(shown), 4))
    for cell, index in zip(cells, shown, strict=False):
        hint = "show this map below (One map), with its atlas entry"
        map_cell(cell, result, 0, index, style, inspect="inspect-here", hint=hint)
