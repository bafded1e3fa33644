"""What the app draws and tabulates from a ``MapsResult``: pure functions (no Streamlit), so that they are
tested on their own. Tiles are drawn with ``lewel.drawing.render`` (numpy, Pillow and matplotlib, no torch: the
renderer the service draws its figures with, so that a tile looks like the figure); every number drawn comes
from the service's answer. Downloadable figures are drawn by the service (``ApiClient.figure``)."""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from lewel.drawing.render import (
    FigureTooCostly,
    Scale,
    check_figure,
    draw_box,
    figure5_grid,
    figure_bytes,
    figure_cost,
    overlay_with_bar,
    thumbnail_size,
)

from lewel.maps.pattern_names import role_text

from .client import EmbeddingsResult, MapsResult

TILE_CACHE_SIZE = 2048  #: drawn tiles kept (JPEG bytes, about 10–20 KB each): a rerun redraws only what changed
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
    """How maps are drawn: matplotlib colormap, overlay opacity, and ``lewel.drawing.render.overlay``'s scale
    (``range``: each map from its minimum to its maximum; ``peak``: from 0 to its peak)."""

    cmap: str = "jet"
    alpha: float = 0.5
    scale: Scale = "range"


_tiles: OrderedDict[tuple, bytes] = OrderedDict()
_tiles_lock = threading.Lock()


TILE_QUALITY = 92  #: tiles are sent as JPEG: smooth overlays at a third of PNG's bytes, so a page of new tiles loads faster


def _encode(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=TILE_QUALITY)
    return buffer.getvalue()


def cached_tile(key: tuple, draw: Callable[[], np.ndarray]) -> bytes:
    """The JPEG of ``draw()``, drawn once per ``key`` (least recently used dropped beyond
    ``TILE_CACHE_SIZE``): a tab switch or a second look at the same maps costs no redrawing. Hand-made
    rather than ``st.cache_data`` because hashing the answer's arrays on every call would cost more than
    drawing a tile."""
    with _tiles_lock:
        if key in _tiles:
            _tiles.move_to_end(key)
            return _tiles[key]
    png = _encode(draw())
    with _tiles_lock:
        _tiles[key] = png
        while len(_tiles) > TILE_CACHE_SIZE:
            _tiles.popitem(last=False)
    return png


def map_tile(result: MapsResult, view: int, index: int, style: Style) -> bytes:
    """``map_overlay`` as JPEG bytes, cached per (answer, view, map, style)."""
    return cached_tile((result.key, "view", view, index, style), lambda: map_overlay(result, view, index, style))


def frame_tile(small: Image.Image, result: MapsResult, view: int, index: int, style: Style) -> bytes:
    """``frame_overlay`` as JPEG bytes, cached per (answer, view, map, style, thumbnail size)."""
    key = (result.key, "frame", view, index, style, small.size)
    return cached_tile(key, lambda: frame_overlay(small, result, view, index, style))


def view_tile(result: MapsResult, view: int) -> bytes:
    """The view as the model saw it, as JPEG bytes (cached)."""
    return cached_tile((result.key, "image", view), lambda: np.ascontiguousarray(result.view_images[view]))


def input_tile(small: Image.Image, result: MapsResult, view: int, source_size: tuple[int, int]) -> bytes:
    """``input_with_box`` as JPEG bytes (cached)."""
    key = (result.key, "input", view, small.size)
    return cached_tile(key, lambda: input_with_box(small, result, view, source_size))


_pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="lewel-tiles")


def prefetch(result: MapsResult, pairs: Sequence[tuple[int, int]], style: Style) -> None:
    """Draw the ``(view, index)`` tiles not cached yet on a few threads (torch, NumPy and Pillow release the
    GIL while they work), so that a page of new tiles costs about a core's share each."""
    missing = [(v, m) for v, m in pairs if (result.key, "view", v, m, style) not in _tiles]
    list(_pool.map(lambda pair: map_tile(result, pair[0], pair[1], style), missing))


def mark_point(small: Image.Image, point: tuple[int, int], source_size: tuple[int, int]) -> Image.Image:
    """A copy of the thumbnail ``small`` with a ring at ``point`` (original-image pixels of ``source_size``)."""
    from PIL import ImageDraw

    marked = small.convert("RGB")
    x = (point[0] + 0.5) * small.width / source_size[0]
    y = (point[1] + 0.5) * small.height / source_size[1]
    radius = max(4.0, small.width / 40)
    draw = ImageDraw.Draw(marked)
    draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=(255, 255, 255), width=3)
    draw.ellipse((x - radius + 2, y - radius + 2, x + radius - 2, y + radius - 2), outline=(220, 0, 0), width=2)
    return marked


def view_label(result: MapsResult, view: int, preset: str) -> str:
    """How a row is named: view 0 is the whole image, the others an augmented crop."""
    if view == 0:
        return "view 0 · whole image"
    return f"view {view} · {preset}" + (" · flipped" if bool(result.flips[view]) else "")


def input_with_box(small: Image.Image, result: MapsResult, view: int, source_size: tuple[int, int]) -> np.ndarray:
    """The input image with view ``view``'s crop outlined (a double line when the view is flipped)."""
    return draw_box(small, result.boxes[view].tolist(), source_size=source_size, flip=bool(result.flips[view]))


def map_overlay(result: MapsResult, view: int, index: int, style: Style) -> np.ndarray:
    """Map ``index`` of view ``view`` blended onto that view, with a colour bar in units of the uniform value
    1/(h·w) underneath (``(S + bar)×S×3`` uint8)."""
    heat = result.maps[view, index]
    return overlay_with_bar(
        result.view_images[view], heat, unit=1.0 / heat.size, cmap=style.cmap, alpha=style.alpha, scale=style.scale
    )


def frame_overlay(small: Image.Image, result: MapsResult, view: int, index: int, style: Style) -> np.ndarray:
    """Map ``index`` of view ``view`` warped back into the original image frame and blended onto the input
    (where the view's crop does not reach, the image shows unchanged). The frame maps hold mass per cell, so
    a cell the crop only partly covers holds less; drawn is the density, mass ÷ covered share of the cell."""
    density = result.frame_density[view, index]
    uniform = 1.0 / max(float(np.asarray(result.coverage[view], dtype=np.float64).sum()), 1e-12)
    return overlay_with_bar(small, density, unit=uniform, cmap=style.cmap, alpha=style.alpha, scale=style.scale)


def contrast_note(result: MapsResult, view: int, index: int, style: Style) -> str:
    """What the colours of a map mean, with how far from uniform it is (its peak over the uniform value)."""
    cells = result.maps[view, index].size
    peak = float(result.statistics["peak_ratio"][view, index])
    low = float(result.maps[view, index].min()) * cells
    spread = f"its values run from {low:.2f}× to {peak:.2f}× the uniform value 1/{cells}"
    if style.scale == "range":
        return f"Colours stretch the map's own range: {spread}."
    return f"Colours run from 0 to the map's peak: {spread}."


def contrast(result: MapsResult, view: int, index: int) -> str:
    """A map's lowest and highest cell in units of the uniform value, e.g. ``0.97–1.05× uniform``."""
    heat = result.maps[view, index].astype(np.float64)
    cells = heat.size / max(float(heat.sum()), 1e-12)
    return f"{heat.min() * cells:.2f}–{heat.max() * cells:.2f}× uniform"


def map_caption(result: MapsResult, view: int, index: int) -> str:
    """A tile's caption: index, its measured role and held-out AUROC (from the profile) or else its heuristic
    pattern, its AUROC on this image when a mask was sent, and its contrast."""
    parts = [f"map {index}"]
    if result.profile is not None and result.roles is not None:
        auroc = float(result.profile_auroc[index]) if result.profile_auroc is not None else float("nan")
        label = role_label(result, index)
        parts.append(f"{label} · AUROC {auroc:.2f} held-out" if np.isfinite(auroc) else label)
        if result.category_of(index):
            parts.append(f"looks at {result.category_of(index)}")
    else:
        parts.append(f"{result.patterns[view, index]} (heuristic)")
    if result.mask_auroc is not None:
        here = float(result.mask_auroc[view, index])
        parts.append(f"here {here:.2f}" if np.isfinite(here) else "here –")
    parts.append(contrast(result, view, index))
    return " · ".join(parts)


def measured(profile: dict) -> str:
    """What the profile measured, in one line: "object maps 0.89; the best of 15 random networks 0.81
    (bound 0.85)" (held-out AUROC of the object maps, of the best random control, the random bound)."""
    controls = profile.get("controls") or {}
    count, bound = controls.get("count"), controls.get("random_bound")
    best = f"the best of {count} random networks" if count else "a random network"
    bounded = f" (bound {bound:.2f})" if isinstance(bound, (int, float)) else ""
    return (
        f"object maps {profile['object_auroc']:.2f}; {best} {profile['random_control']['object_auroc']:.2f}{bounded}"
    )


def profile_line(result: MapsResult) -> str:
    """One line on the model's profile: its verdict with what was measured."""
    profile = result.profile
    if profile is None:
        return "no map profile: maps not measured against objects"
    return f"profile: {profile['verdict']} ({measured(profile)}, held-out AUROC)"


#: the words for a profile's ``benchmark`` (``/v1/models``), said before its data line
BENCHMARKS = {
    "scenes": "the scenes benchmark (objects on flat generated backgrounds)",
    "textured": "the textured benchmark (objects on photographs)",
}


def measured_on(profile: dict[str, Any]) -> str:
    """"Measured on …": which benchmark (when it is one of the bundled ones) and the profile's data line."""
    benchmark = BENCHMARKS.get(profile.get("benchmark") or "")
    return f"Measured on {benchmark}: {profile['data']}." if benchmark else f"Measured on {profile['data']}."


def profile_banner(result: MapsResult) -> tuple[str, str]:
    """What the page says about reading this model's maps: ``(kind, text)`` with kind ``success`` (its
    object maps beat a random network of the same shape on held-out images) or ``warning`` (no profile, or
    not better than random: the maps should not be read as object maps)."""
    model = result.model.get("id", "this model")
    profile = result.profile
    if profile is None:
        return "warning", (
            f"**{model} has no map profile**: nobody has measured whether its maps look at objects, so they "
            "should not be read as object maps. Colours show where a map is higher *relative to itself*, and "
            f"LEWEL's maps are within a few per cent of uniform. Measure it with **Measure this model** below, or "
            f"`lewel profile --checkpoint {model}…` (docs/maps.md)."
        )
    controls = profile.get("controls") or {}
    best = profile["random_control"]
    family = (
        f"the best of **{controls['count']}** random networks of the same shape "
        f"({len(controls.get('seeds', []))} seeds of each of {', '.join(controls.get('schemes', []))} initialisations) "
        f"scores **{best['object_auroc']:.2f}**, and another random network could reach "
        f"{controls['random_bound']:.2f}"
        if controls.get("count")
        else f"a random network of the same shape scores **{best['object_auroc']:.2f}**"
    )
    numbers = (
        f"its {len(profile['object_maps'])} object maps separate objects from background with AUROC "
        f"**{profile['object_auroc']:.2f}** on {profile['heldout_images']} held-out images (0.5 = no relation); "
        f"{family}; they point at an object {profile['object_pointing']:.0%} of the time (chance "
        f"{profile['pointing_chance']:.0%})"
    )
    if profile["verdict"] == "localises":
        return "success", (
            f"**Measured: {model}'s object maps beat every random network** ({measured(profile)}): {numbers}. "
            f"{measured_on(profile)}"
        )
    return "warning", (
        f"**{model}'s maps should not be read as object maps: not better than random** ({measured(profile)}): "
        f"{numbers}. {measured_on(profile)}"
    )


def figure_refusal(result: MapsResult, indices: Sequence[int], fmt: str, dpi: int, limits: dict[str, Any]) -> str | None:
    """Why the service would refuse the figure of ``indices`` as ``fmt`` at ``dpi`` (its file over the service's
    ``max_response_bytes``: ``lewel.drawing.render.figure_cost``, the estimate the service checks too, on the input
    downscaled as the service draws it), or ``None`` when it can be drawn; said before the button is pressed."""
    side = int(np.asarray(result.view_images[0]).shape[0])
    shown = min(len(indices), int(limits.get("figure_max_maps") or len(indices)))
    source = thumbnail_size(result.source_size, int(limits.get("figure_source_side") or max(result.source_size)))
    cost = figure_cost(fmt, dpi, rows=result.num_views, maps=shown, view_side=side, source_size=source)
    max_bytes = limits.get("max_response_bytes")
    if max_bytes is None:
        return None
    try:
        check_figure(cost, fmt, max_bytes=int(max_bytes))
    except FigureTooCostly as error:
        return str(error)
    return None


#: the statistics table's pattern row: the shape rule on this view, not the profile's measured pattern or role
HEURISTIC_ROW = "shape heuristic (this view)"


def statistics_rows(result: MapsResult, index: int, presets: Sequence[str]) -> list[dict[str, Any]]:
    """One row per view for map ``index``: its pattern, typicality of each pattern and statistics."""
    rows = []
    for view in range(result.num_views):
        row: dict[str, Any] = {"view": view_label(result, view, presets[view]), HEURISTIC_ROW: result.patterns[view, index]}
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


def role_label(result: MapsResult, index: int) -> str:
    """What the profile says map ``index`` is: its measured pattern with how sure the profile is ("object
    (93 %)", "undecided (leaning object, 62 %)", ``lewel.maps.pattern_names.role_text``, as the service titles
    its figures), else its role ("" without a profile)."""
    if result.profile is None or result.roles is None:
        return ""
    pattern = result.pattern_of(index)
    if not pattern:
        return str(result.roles[index]) or "not measured"
    confidence = result.pattern_confidence[index] if result.pattern_confidence is not None else None
    leaning = str(result.pattern_leaning[index]) if result.pattern_leaning is not None else None
    return role_text(pattern, leaning, None if confidence is None else float(confidence))


def figure_titles(result: MapsResult, indices: Sequence[int]) -> list[list[str]]:
    """The captions of a figure's map cells, view by view, as the service titles them: each map's measured
    pattern (or role) and held-out AUROC, or its heuristic pattern on that view without a profile."""
    if result.profile is not None and result.roles is not None and result.profile_auroc is not None:
        row = [f"map {m} · {role_label(result, m)}\nAUROC {float(result.profile_auroc[m]):.2f}" for m in indices]
        return [list(row) for _ in range(result.num_views)]
    return [[f"map {m}\n{result.patterns[v, m]} (heuristic)" for m in indices] for v in range(result.num_views)]


def figure_file(
    result: MapsResult, indices: Sequence[int], presets: Sequence[str], style: Style, fmt: str, dpi: int
) -> bytes:
    """Figure 5 of ``indices`` (every view a row) as ``fmt`` (png, pdf, svg) at ``dpi``, drawn from the maps
    the page already holds with ``lewel.drawing.render`` (the service's renderer): the input column is the
    answer's ``source_image`` (longer side 384; the service's own figure uses 512)."""
    shown = list(indices)
    model = result.model.get("id", "model")
    heading = f"{model}: {profile_line(result)}"
    figure = figure5_grid(
        result.source_image,
        list(result.view_images),
        [tuple(int(v) for v in box) for box in result.boxes],
        [bool(flip) for flip in result.flips],
        result.source_size,
        result.maps[:, shown],
        figure_titles(result, shown),
        presets=[None, *presets[1:]],
        cmap=style.cmap,
        alpha=style.alpha,
        scale=style.scale,
        title=heading,
    )
    return figure_bytes(figure, fmt, dpi=dpi)
