"""The Downloads section: the figure of the shown maps (PNG, PDF or SVG), drawn from the maps the page holds, and
every map of every view (NPZ)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import figures
from app.client import MapsResult

#: the figure download's label -> lewel.drawing.render format
FORMAT_CHOICES = {"PNG": "png", "PDF": "pdf", "SVG": "svg"}
MIME = {"png": "image/png", "pdf": "application/pdf", "svg": "image/svg+xml"}
DPIS = [72, 100, 150, 200, 300, 600]


def downloads(
    result: MapsResult,
    indices: list[int],
    presets: list[str],
    style: figures.Style,
    pattern: str | None,
    limits: dict[str, Any],
) -> None:
    """The figure of the shown maps (PNG at a chosen dpi, PDF or SVG, with titles and colour bars) and every map
    of every view (the service's NPZ answer, byte for byte). The figure is drawn when the button is pressed,
    from the maps of the page's answer (``figures.figure_file``): no second request to the service, no model
    pass, only the drawing; within the service's own limits for a figure (``figures.figure_refusal``)."""
    model = result.model["id"]
    chooser, quality, figure_button, npz_button = st.columns([1, 1, 1.3, 1.3], vertical_alignment="bottom")
    fmt = FORMAT_CHOICES[chooser.selectbox("Figure format", list(FORMAT_CHOICES), key="figure_format")]
    dpi = quality.select_slider("Figure dpi", DPIS, value=200, key="figure_dpi", disabled=fmt != "png")
    name = (pattern or "index").replace("role:", "measured_").replace("pattern:", "pattern_")
    shown = indices[: int(limits.get("figure_max_maps") or len(indices) or 1)]
    refusal = figures.figure_refusal(result, shown, fmt, dpi, limits) if shown else None
    if refusal is not None:
        st.caption(f"The figure cannot be downloaded as it is: {refusal}.")
    figure_button.download_button(
        f"Download this figure ({fmt.upper()})",
        data=lambda: figures.figure_file(result, shown, presets, style, fmt, dpi),
        file_name=f"lewel_figure5_{model}_{name}.{fmt}",
        mime=MIME[fmt],
        icon=":material/image:",
        on_click="ignore",
        disabled=not shown or refusal is not None,
    )
    npz_button.download_button(
        "Download all maps (NPZ)",
        data=result.npz,
        file_name=f"lewel_maps_{model}.npz",
        mime="application/x-npz",
        icon=":material/download:",
        on_click="ignore",
    )
