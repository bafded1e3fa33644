"""LEWEL explorer: the Streamlit page. ``streamlit run app/main.py`` (or ``python -m app``, which starts the
service too). Everything is computed by the service at ``LEWEL_API_URL``; this page only asks and draws."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from app import figures
from app.client import ApiClient, EmbeddingsResult, MapsResult, ServiceError, ViewParams
from app.gallery import SCENE_KEY, gallery_items, load_item, load_mask
from lewel.images import ImageDecodeError, decode_image

PRESETS = {
    "byol1": "BYOL view 1 (crop, flip, colour, blur)",
    "byol2": "BYOL view 2 (rarer blur, solarisation)",
    "mocov2": "MoCo v2",
    "cropflip": "crop and flip only",
}
SIZES = [64, 96, 128, 160, 192, 224, 256, 320]
SCALES = {"range": "each map's range (min → max)", "peak": "zero to peak"}
COLORMAPS = ["jet", "turbo", "viridis", "magma", "inferno", "plasma", "hot"]
#: tab label -> what it shows: a measured role of the model's profile, a heuristic pattern of view 0, or all
MEASURED_TABS = {"Object maps (measured)": "role:object", "Background maps (measured)": "role:background"}
HEURISTIC_TABS = {
    "Object (heuristic)": "object",
    "Multi-object (heuristic)": "multi-object",
    "Global (heuristic)": "global",
    "All": None,
}
IMAGE_ERRORS = ("unsupported_media_type", "too_large")  #: service error codes about the image itself
CACHE_SECONDS = 600  #: answers are reused for the same image and settings this long (a model file may change)
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff", "ppm", "tga"]


@dataclass(frozen=True)
class Picked:
    """The image the person chose: its bytes, a name, and its object mask (PNG) when the gallery knows it."""

    data: bytes
    name: str
    mask: bytes | None = None


def client() -> ApiClient:
    return ApiClient()


@st.cache_data(max_entries=16, ttl=CACHE_SECONDS, show_spinner=False)
def fetch_maps(
    base_url: str, image: bytes, name: str, model: str, params: ViewParams, mask: bytes | None = None
) -> MapsResult:
    return ApiClient(base_url).maps(image, name, model, params, mask)


@st.cache_data(max_entries=16, ttl=CACHE_SECONDS, show_spinner=False)
def fetch_embeddings(base_url: str, image: bytes, name: str, model: str, params: ViewParams) -> EmbeddingsResult:
    return ApiClient(base_url).embeddings(image, name, model, params)


def show_error(error: ServiceError, image_name: str | None = None) -> None:
    """The failure as a message (never a traceback); image errors name the file."""
    subject = f" ({image_name})" if image_name and error.code in IMAGE_ERRORS else ""
    st.error(f"**{error.title}{subject}.** {error.message}", icon=":material/error:")


def select_map(index: int, aligned: int) -> None:
    """Callback of the inspect buttons: make ``index`` the selected map and its aligned representation
    the one shown in the grouped section."""
    st.session_state["selected_map"] = index
    st.session_state["aligned_rep"] = aligned


def new_views() -> None:
    st.session_state["seed"] = int(st.session_state.get("seed", 0)) + 1


def new_scene() -> None:
    st.session_state["scene_index"] = int(st.session_state.get("scene_index", 0)) + 1


def model_label(models: dict[str, dict], model_id: str) -> str:
    info = models[model_id]
    if info["status"] == "error":
        return f"{model_id} · cannot be loaded"
    parts = [model_id, info.get("method") or "?", info.get("backbone") or "?"]
    if info.get("d"):
        parts.append(f"d={info['d']}, h={info.get('h')}")
    if not info.get("has_maps", True):
        parts.append("no maps")
    return " · ".join(parts)


def sidebar_image() -> Picked | None:
    st.sidebar.header("Image")
    source = st.sidebar.radio("Source", ["Gallery", "Upload"], horizontal=True, key="image_source")
    if source == "Upload":
        upload = st.sidebar.file_uploader("An image (PNG, JPEG, WebP, GIF, BMP, TIFF …)", type=UPLOAD_TYPES, key="upload")
        return Picked(upload.getvalue(), upload.name) if upload is not None else None
    items = gallery_items()
    labels = {item.key: item.label for item in items}
    key = st.sidebar.selectbox("Gallery", list(labels), format_func=labels.__getitem__, key="gallery_item")
    if key == SCENE_KEY:
        st.sidebar.button("New scene", on_click=new_scene, icon=":material/shuffle:")
    scene_index = int(st.session_state.get("scene_index", 0))
    data, name = load_item(key, scene_index)
    return Picked(data, name, load_mask(key, scene_index))


def sidebar_models(models: dict[str, dict], default: str | None) -> tuple[str, str | None]:
    st.sidebar.header("Model")
    ids = list(models)
    first = ids.index(default) if default in ids else 0
    model = st.sidebar.selectbox("Model", ids, index=first, format_func=lambda m: model_label(models, m), key="model")
    second = None
    if st.sidebar.toggle("Compare with a second model", key="compare"):
        others = [m for m in ids if m != model] or ids
        second = st.sidebar.selectbox(
            "Second model", others, format_func=lambda m: model_label(models, m), key="model_b"
        )
    return model, second


def sidebar_views(max_views: int) -> ViewParams:
    st.sidebar.header("Views")
    views = st.sidebar.slider("Augmented views (after view 0, the whole image)", 0, max_views, 2, key="views")
    preset = st.sidebar.selectbox("Augmentation", list(PRESETS), format_func=PRESETS.__getitem__, key="preset")
    st.session_state.setdefault("seed", 0)
    seed = st.sidebar.number_input("Seed (view i is drawn from seed and i)", min_value=0, step=1, key="seed")
    st.sidebar.button("New views", on_click=new_views, icon=":material/casino:", help="draw new augmented views")
    size = st.sidebar.select_slider("Input size (px)", SIZES, value=224, key="size")
    return ViewParams(views=int(views), preset=preset, seed=int(seed), size=int(size))


def sidebar_display() -> tuple[figures.Style, int]:
    st.sidebar.header("Display")
    cmap = st.sidebar.selectbox("Colormap", COLORMAPS, key="cmap")
    alpha = st.sidebar.slider("Overlay opacity", 0.0, 1.0, 0.5, 0.05, key="alpha")
    scale = st.sidebar.radio(
        "Colour scale",
        list(SCALES),
        format_func=SCALES.__getitem__,
        key="scale",
        help="LEWEL's maps are softmaxes at temperature 1, often close to uniform: 'each map's range' shows "
        "where a map is higher relative to itself; 'zero to peak' shows how flat it really is.",
    )
    columns = st.sidebar.slider("Maps per row", 2, 16, 6, key="per_row")
    return figures.Style(cmap=cmap, alpha=float(alpha), scale=scale), int(columns)


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
    for view in range(result.num_views):
        st.markdown(f"**{figures.view_label(result, view, presets[view])}**")
        cells = st.columns(widths, gap="small")
        cells[0].image(figures.input_with_box(small, result, view, source_size), caption="input and crop")
        cells[1].image(result.view_images[view], caption="augmented view" if view else "model input")
        for cell, index in zip(cells[2:], indices, strict=True):
            cell.image(
                figures.map_overlay(result, view, index, style),
                caption=figures.map_caption(result, view, index),
            )
            if view == 0:
                cell.button(
                    f"Inspect {index}",
                    key=f"inspect-{tab}-{index}",
                    on_click=select_map,
                    args=(index, int(result.aligned[index])),
                    type="tertiary",
                    icon=":material/zoom_in:",
                )


def tabs_for(result: MapsResult) -> dict[str, str | None]:
    """The tabs of the Figure-5 section: the measured ones first when the model has a profile."""
    return {**(MEASURED_TABS if result.profile is not None else {}), **HEURISTIC_TABS}


def indices_for(result: MapsResult, pattern: str | None) -> list[int]:
    """Every map a tab's order gives, without the page around it: measured roles or heuristic ranking."""
    if pattern is not None and pattern.startswith("role:"):
        return result.measured(pattern.removeprefix("role:"))
    return result.ranked(pattern)


def pattern_summary(result: MapsResult) -> None:
    d, grid = result.d, result.maps.shape[-2:]
    model = result.model
    kind, text = figures.profile_banner(result)
    (st.success if kind == "success" else st.warning)(text, icon=":material/verified:" if kind == "success" else ":material/warning:")
    mask_note = " · AUROC on this image from the scene's mask" if result.has_mask else ""
    st.caption(
        f"**{model['id']}** · {model['method']} · {model['backbone']} on {model['device']} · "
        f"{d} maps on a {grid[0]}×{grid[1]} grid · {result.h} channel groups × {d // result.h} aligned "
        f"representations{mask_note}"
    )
    counts = st.columns(4)
    for cell, pattern in zip(counts, ["object", "multi-object", "global"], strict=False):
        cell.metric(
            f"{pattern} maps (view 0, heuristic)",
            f"{result.count(pattern)} / {d}",
            help="classified by shape relative to each map's own range (docs/maps.md): a heuristic, not a "
            "measurement against objects",
        )
    finite = result.agreement[np.isfinite(result.agreement)]
    counts[3].metric(
        "mean cross-view agreement",
        f"{finite.mean():.3f}" if finite.size else "–",
        help=result.agreement_definition or None,
    )


def tab_indices(result: MapsResult, pattern: str | None, per_row: int, tab: str) -> list[int]:
    """The maps a tab shows: the profile's object or background maps (``role:…``) in measured order, those
    of view 0 classified as a heuristic pattern (most typical first), or all by index."""
    if pattern is not None and pattern.startswith("role:"):
        role = pattern.removeprefix("role:")
        chosen = result.measured(role)
        profile = result.profile or {}
        st.caption(
            f"The model's **{len(chosen)} {role} maps**, measured by `lewel profile`: chosen on calibration "
            f"images, {'highest' if role == 'object' else 'lowest'} held-out AUROC first (under each tile; "
            f"{profile.get('heldout_images', '?')} held-out images, 0.5 = no relation). The same map indices "
            "on every row" + ("; 'here' is the AUROC on this image, from the scene's mask." if result.has_mask else ".")
        )
        return chosen[:per_row]
    ranked = result.ranked(pattern)
    if pattern is not None:
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
    start = st.number_input(
        "First map index", 0, max(result.d - per_row, 0), 0, step=per_row, key=f"first-{tab}"
    )
    st.caption(f"Maps {start}–{min(start + per_row, result.d) - 1} of {result.d}, by index.")
    return ranked[int(start) : int(start) + per_row]


def selected_map_section(
    result: MapsResult, small: Image.Image, presets: list[str], style: figures.Style
) -> int:
    st.subheader("One map")
    d = result.d
    st.session_state.setdefault("selected_map", result.ranked("object")[0])
    if int(st.session_state["selected_map"]) >= d:
        st.session_state["selected_map"] = 0
    index = st.selectbox(
        "Selected map",
        list(range(d)),
        key="selected_map",
        format_func=lambda m: f"map {m}",  # a label that never changes with the image: the state holds the index
    )
    left, right = st.columns([1, 2])
    left.image(
        figures.map_overlay(result, 0, index, style),
        caption=f"map {index} on view 0, enlarged",
        width="stretch",
    )
    left.caption(figures.map_caption(result, 0, index) + ". " + figures.contrast_note(result, 0, index, style))
    agreement = result.agreement[index]
    with right:
        cells = st.columns(4)
        cells[0].metric("pattern (view 0)", str(result.patterns[0, index]))
        cells[1].metric("channel group", f"{result.groups[index]} of {result.h}")
        cells[2].metric("aligned representation", f"{result.aligned[index]} of {d // result.h}")
        cells[3].metric(
            "cross-view agreement",
            f"{agreement:.3f}" if np.isfinite(agreement) else "– (one view)",
            help=result.agreement_definition or None,
        )
        table = pd.DataFrame(figures.statistics_rows(result, index, presets)).set_index("view").T
        st.dataframe(table.astype(str), width="stretch")
    st.markdown("**The same map index on every view**")
    row = st.columns(max(result.num_views, 4))
    for view in range(result.num_views):
        row[view].image(
            figures.map_overlay(result, view, index, style),
            caption=f"{figures.view_label(result, view, presets[view])} · {result.patterns[view, index]}",
        )
    st.markdown("**Warped back onto the original image** (outside a view's crop the image shows unchanged)")
    row = st.columns(max(result.num_views, 4))
    for view in range(result.num_views):
        row[view].image(
            figures.frame_overlay(small, result, view, index, style),
            caption=figures.view_label(result, view, presets[view]),
        )
    return index


def grouped_section(
    result: MapsResult,
    picked: Picked,
    model: str,
    params: ViewParams,
    presets: list[str],
    style: figures.Style,
) -> None:
    st.subheader("Grouped aligned representations")
    count = result.d // result.h
    st.session_state.setdefault("aligned_rep", int(result.aligned[int(st.session_state.get("selected_map", 0))]))
    if int(st.session_state["aligned_rep"]) >= count:
        st.session_state["aligned_rep"] = 0
    aligned = st.number_input(f"Aligned representation (0–{count - 1})", 0, count - 1, step=1, key="aligned_rep")
    members = result.aligned_maps(int(aligned))
    st.caption(
        f"Aligned representation {aligned} concatenates the {result.h} channel groups of the feature map, "
        f"group g pooled with map g·{count} + {aligned}: maps {', '.join(map(str, members))}."
    )
    for view in range(result.num_views):
        st.markdown(f"**{figures.view_label(result, view, presets[view])}**")
        cells = st.columns(max(result.h, 4))
        for group, index in enumerate(members):
            cells[group].image(
                figures.map_overlay(result, view, index, style),
                caption=f"group {group} · map {index} · {result.patterns[view, index]}",
            )
    if params.views == 0:
        return
    try:
        with st.spinner("Computing the embeddings of every view …"):
            embeddings = fetch_embeddings(client().base_url, picked.data, picked.name, model, params)
    except ServiceError as error:
        show_error(error)
        return
    st.dataframe(figures.embedding_rows(embeddings, int(aligned), presets), hide_index=True)


def comparison_section(
    results: dict[str, MapsResult],
    small: Image.Image,
    source_size: tuple[int, int],
    presets: list[str],
    pattern: str | None,
    per_row: int,
    style: figures.Style,
) -> None:
    st.subheader("Two models, the same views")
    st.caption(
        f"Each model's first {per_row} maps of the {(pattern or 'index').replace('role:', 'measured ')} order "
        "(the tab selected above), on the same image and the same augmented views."
    )
    columns = st.columns(len(results))
    for column, (model, result) in zip(columns, results.items(), strict=True):
        indices = indices_for(result, pattern)[:per_row]
        fallback = not indices
        if fallback:  # a measured tab, and this model has no profile: its heuristic object maps instead
            indices = result.ranked("object")[:per_row]
        png = figures.figure_bytes(result, small, source_size, indices, presets, style)
        finite = result.agreement[np.isfinite(result.agreement)]
        column.markdown(f"**{model}** · {result.model['method']} · {result.model['backbone']}")
        column.caption(figures.profile_line(result) + (" · shown: heuristic object maps" if fallback else ""))
        column.image(png)
        column.caption(
            " · ".join(f"{p} (heuristic): {result.count(p)}/{result.d}" for p in ("object", "multi-object", "global"))
            + (f" · mean agreement {finite.mean():.3f}" if finite.size else "")
        )


def main() -> None:
    st.set_page_config(page_title="LEWEL explorer", page_icon=":material/grid_view:", layout="wide")
    st.title("LEWEL explorer")
    st.caption(
        "Where does a LEWEL model look? Its alignment maps for any image, laid out like Figure 5 of "
        "*Learning Where to Learn in Cross-View Self-Supervised Learning* (Huang et al., CVPR 2022): a row per "
        "view, each map overlaid on the view it was computed from."
    )
    api = client()
    picked = sidebar_image()
    try:
        listing = api.models()
    except ServiceError as error:
        show_error(error)
        st.stop()
    models = {info["id"]: info for info in listing["models"]}
    if not models:
        st.error(f"**No model found.** The service looked in: {'; '.join(listing.get('searched', []))}.")
        st.stop()
    model, second = sidebar_models(models, listing.get("default"))
    params = sidebar_views(8)
    style, per_row = sidebar_display()
    if picked is None:
        st.info("Upload an image in the sidebar, or pick one from the gallery.", icon=":material/upload:")
        st.stop()

    results: dict[str, MapsResult] = {}
    chosen = [model] + ([second] if second else [])
    progress = st.progress(0.0, text="Starting …")
    for done, name in enumerate(chosen):
        progress.progress(
            done / len(chosen),
            text=f"Computing the alignment maps of {params.views + 1} views with {name} "
            "(the first request to a model loads it) …",
        )
        try:
            results[name] = fetch_maps(api.base_url, picked.data, picked.name, name, params, picked.mask)
        except ServiceError as error:
            progress.empty()
            show_error(error, picked.name)
            st.stop()
    progress.empty()

    try:
        image = decode_image(picked.data)
    except ImageDecodeError as error:  # the service accepted it, so this only happens with a different Pillow
        st.error(f"**The image cannot be shown here.** {error}")
        st.stop()
    small = figures.thumbnail(image)
    source_size = image.size
    presets = ["whole image"] + [params.preset] * params.views
    result = results[model]

    pattern_summary(result)
    tab_set = tabs_for(result)
    if st.session_state.get("pattern_tab") not in tab_set:  # e.g. a measured tab, then a model without a profile
        st.session_state["pattern_tab"] = next(iter(tab_set))
    tabs = st.tabs(list(tab_set), key="pattern_tab", on_change="rerun")
    shown: tuple[str | None, list[int]] = (None, [])
    for tab, (label, pattern) in zip(tabs, tab_set.items(), strict=True):
        if not tab.open:
            continue
        with tab:
            indices = tab_indices(result, pattern, per_row, label)
            figure_rows(result, indices, small, source_size, presets, style, tab=label)
            shown = (pattern, indices)
    pattern, indices = shown

    left, right = st.columns(2)
    left.download_button(
        "Download this figure (PNG)",
        data=lambda: figures.figure_bytes(result, small, source_size, indices, presets, style),
        file_name=f"lewel_figure5_{model}_{(pattern or 'index').replace('role:', 'measured_')}.png",
        mime="image/png",
        icon=":material/image:",
        on_click="ignore",
    )
    right.download_button(
        "Download all maps (NPZ)",
        data=result.npz,
        file_name=f"lewel_maps_{model}.npz",
        mime="application/x-npz",
        icon=":material/download:",
        on_click="ignore",
    )
    if second:
        comparison_section(results, small, source_size, presets, pattern, per_row, style)
    st.divider()
    selected_map_section(result, small, presets, style)
    st.divider()
    grouped_section(result, picked, model, params, presets, style)


if __name__ == "__main__":
    main()
