"""What the app draws and tabulates from a ``MapsResult``: pure functions (no Streamlit), so that they are
tested on their own. Pictures come from ``lewel.render``; this module only picks the arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from lewel.maps import frame_density
from lewel.render import Scale, draw_box, figure5_grid, figure_png, overlay

from .client import EmbeddingsResult, MapsResult

THUMBNAIL_SIDE = 384  #: the input column shows the image downscaled to this longer side
#: statistics shown for a selected map, with their labels (fields of ``lewel.maps.MapStatistics``)
STATISTICS = {
    "normalized_entropy": "normalised entropy",
    "effective_area": "effective area",
    "active_area": "active area",
    "peak_ratio": "peak ÷ uniform",
    "top_mass": "top-10 % mass",
    "blobs": "blobs",
    "main_blob_mass": "main blob mass",
}


@dataclass(frozen=True)
class Style:
    """How maps are drawn: matplotlib colormap, overlay opacity, and ``lewel.render.overlay``'s scale
    (``range``: each map from its minimum to its maximum; ``peak``: from 0 to its peak)."""

    cmap: str = "jet"
    alpha: float = 0.5
    scale: Scale = "range"


def thumbnail(image: Image.Image, side: int = THUMBNAIL_SIDE) -> Image.Image:
    """A copy of ``image`` whose longer side is at most ``side`` pixels."""
    small = image.copy()
    small.thumbnail((side, side))
    return small


def view_label(result: MapsResult, view: int, preset: str) -> str:
    """How a row is named: view 0 is the whole image, the others an augmented crop."""
    if view == 0:
        return "view 0 · whole image"
    return f"view {view} · {preset}" + (" · flipped" if bool(result.flips[view]) else "")


def input_with_box(small: Image.Image, result: MapsResult, view: int, source_size: tuple[int, int]) -> np.ndarray:
    """The input image with view ``view``'s crop outlined (a double line when the view is flipped)."""
    return draw_box(small, result.boxes[view].tolist(), source_size=source_size, flip=bool(result.flips[view]))


def map_overlay(result: MapsResult, view: int, index: int, style: Style) -> np.ndarray:
    """Map ``index`` of view ``view`` blended onto that view (``S×S×3`` uint8)."""
    return overlay(
        result.view_images[view], result.maps[view, index], cmap=style.cmap, alpha=style.alpha, scale=style.scale
    )


def frame_overlay(small: Image.Image, result: MapsResult, view: int, index: int, style: Style) -> np.ndarray:
    """Map ``index`` of view ``view`` warped back into the original image frame and blended onto the input
    (where the view's crop does not reach, the image shows unchanged). The frame maps hold mass per cell, so
    a cell the crop only partly covers holds less; drawn is the density, mass ÷ covered share of the cell."""
    density = frame_density(result.frame_maps[view, index], result.coverage[view])
    return overlay(small, density, cmap=style.cmap, alpha=style.alpha, scale=style.scale)


def contrast_note(result: MapsResult, view: int, index: int, style: Style) -> str:
    """What the colours of a map mean, with how far from uniform it is (its peak over the uniform value)."""
    cells = result.maps[view, index].size
    peak = float(result.statistics["peak_ratio"][view, index])
    low = float(result.maps[view, index].min()) * cells
    spread = f"its values run from {low:.2f}× to {peak:.2f}× the uniform value 1/{cells}"
    if style.scale == "range":
        return f"Colours stretch the map's own range: {spread}."
    return f"Colours run from 0 to the map's peak: {spread}."


def map_caption(result: MapsResult, view: int, index: int) -> str:
    return f"map {index} · {result.patterns[view, index]}"


def figure_bytes(
    result: MapsResult,
    small: Image.Image,
    source_size: tuple[int, int],
    indices: Sequence[int],
    presets: Sequence[str],
    style: Style,
) -> bytes:
    """The Figure-5 grid of ``indices`` (every view a row) as PNG, drawn as the page shows it."""
    chosen = list(indices)
    titles = [[f"map {m}\n{result.patterns[v, m]}" for m in chosen] for v in range(result.num_views)]
    figure = figure5_grid(
        small,
        list(result.view_images),
        result.boxes.tolist(),
        result.flips.tolist(),
        source_size,
        result.maps[:, chosen],
        titles,
        presets=[None, *presets[1:]],
        cmap=style.cmap,
        alpha=style.alpha,
        scale=style.scale,
    )
    return figure_png(figure, dpi=120)


def statistics_rows(result: MapsResult, index: int, presets: Sequence[str]) -> list[dict[str, Any]]:
    """One row per view for map ``index``: its pattern, typicality of each pattern and statistics."""
    rows = []
    for view in range(result.num_views):
        row: dict[str, Any] = {"view": view_label(result, view, presets[view]), "pattern": result.patterns[view, index]}
        for name, label in STATISTICS.items():
            if name in result.statistics:
                value = float(result.statistics[name][view, index])
                row[label] = int(value) if name == "blobs" else round(value, 4)
        for pattern, score in result.typicality.items():
            row[f"typicality: {pattern}"] = round(float(score[view, index]), 4)
        rows.append(row)
    return rows


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def embedding_rows(embeddings: EmbeddingsResult, aligned: int, presets: Sequence[str]) -> list[dict[str, Any]]:
    """Cosine similarity of each augmented view's embeddings to view 0's: aligned representation
    ``aligned`` (what LEWEL's aligned loss pulls together) and the global embedding z."""
    rows = []
    for view in range(1, len(embeddings.global_embedding)):
        rows.append(
            {
                "view": f"view {view} · {presets[view]}",
                f"cos(aligned {aligned}, view 0)": round(
                    _cosine(embeddings.aligned_embeddings[view, aligned], embeddings.aligned_embeddings[0, aligned]), 4
                ),
                "cos(global z, view 0)": round(
                    _cosine(embeddings.global_embedding[view], embeddings.global_embedding[0]), 4
                ),
            }
        )
    return rows
