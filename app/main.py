"""LEWEL explorer: the Streamlit page. ``streamlit run app/main.py`` (or ``python -m app``, which starts the
service too). Everything is computed by the service at ``LEWEL_API_URL``; this page only asks and draws.

Every section renders inside ``section(...)``: whatever the order of clicks, a failure shows a one-line
message in its place, never a traceback. Stored widget values are checked against the current answer
(``app.state``) before they are used, and the page's settings travel in the URL (``?image=…&map=…``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from app import figures, state
from app.client import ApiClient, EmbeddingsResult, MapsResult, ServiceError, ViewParams
from app.gallery import SCENE_KEY, gallery_items, load_item, load_mask, max_scene, thumbnail_png

PAPER_URL = "https://arxiv.org/abs/2203.14898"
CODE_URL = "https://github.com/hlh981029/LEWEL"  #: the authors' code and checkpoint release
PRESETS = {
    "byol1": "BYOL view 1 (crop, flip, colour, blur)",
    "byol2": "BYOL view 2 (rarer blur, solarisation)",
    "mocov2": "MoCo v2",
    "cropflip": "crop and flip only",
}
SIZES = [64, 96, 128, 160, 192, 224, 256, 320, 384, 448, 512]
DEFAULT_SIZE = 224  #: the size the shipped profiles were measured at (7×7 maps on a ResNet)
SCALES = {"range": "each map's range (min → max)", "peak": "zero to peak"}
COLORMAPS = ["jet", "turbo", "viridis", "magma", "inferno", "plasma", "hot"]
#: the figure download's label -> lewel.drawing.render format
FORMAT_CHOICES = {"PNG": "png", "PDF": "pdf", "SVG": "svg"}
MIME = {"png": "image/png", "pdf": "application/pdf", "svg": "image/svg+xml"}
DPIS = [72, 100, 150, 200, 300, 600]
#: tab label -> what it shows: a measured role of the model's profile, a heuristic pattern of view 0, or all
MEASURED_TABS = {"Object maps (measured)": "role:object", "Background maps (measured)": "role:background"}
#: with a profile that measured Figure 5's patterns, these replace the heuristic tabs (``/v1/maps?pattern=``)
PATTERN_TABS = {
    "Object pattern (measured)": "pattern:object",
    "Multi-object pattern (measured)": "pattern:multi-object",
    "Global pattern (measured)": "pattern:global",
    "All": None,
}
PATTERN_MEANING = {
    "object": "on objects and selective to one instance",
    "multi-object": "on objects, covering several instances",
    "global": "spread over the image, no preference between objects and background",
    "background": "on the background",
    "mixed": "none of the others",
}
HEURISTIC_TABS = {
    "Object (heuristic)": "object",
    "Multi-object (heuristic)": "multi-object",
    "Global (heuristic)": "global",
    "All": None,
}
IMAGE_ERRORS = ("unsupported_media_type", "too_large")  #: service error codes about the image itself
CACHE_SECONDS = 600  #: answers are reused for the same image, settings and model description this long
#: the fields of a /v1/models entry that change the maps' answer (status does not: it turns "loaded" on first use)
MODEL_KEY_FIELDS = ("file", "method", "backbone", "d", "h", "has_maps", "profile", "profile_error")
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff", "ppm", "tga"]
COMPARE_MAPS = 4  #: maps per row in the two-model comparison (tiles stay large in half the page)
GALLERY_COLUMNS = 2  #: two thumbnails a row: their labels ("one object", "three objects") fit uncut
FRAME_CELLS = 32  #: the service's default image-frame grid (cells along the longer side), which the page asks for
LOG = logging.getLogger("lewel.app")


@dataclass(frozen=True)
class Picked:
    """The image the person chose: its bytes, a name, and its object mask (PNG) when the gallery knows it."""

    data: bytes
    name: str
    mask: bytes | None = None


def client() -> ApiClient:
    return ApiClient()


def model_key(info: dict[str, Any]) -> str:
    """A digest of what ``/v1/models`` says about a model that its maps' answer depends on (its profile
    above all): a sidecar written by ``lewel profile`` changes the key, so the page asks again at once."""
    described = {name: info.get(name) for name in MODEL_KEY_FIELDS}
    return hashlib.blake2b(json.dumps(described, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


@st.cache_data(max_entries=16, ttl=CACHE_SECONDS, show_spinner=False)
def fetch_maps(
    base_url: str,
    image: bytes,
    name: str,
    model: str,
    params: ViewParams,
    mask: bytes | None = None,
    described: str = "",
) -> MapsResult:
    """The service's maps, cached per image, settings and ``described`` (``model_key``)."""
    return ApiClient(base_url).maps(image, name, model, params, mask)


@st.cache_data(max_entries=16, ttl=CACHE_SECONDS, show_spinner=False)
def fetch_embeddings(base_url: str, image: bytes, name: str, model: str, params: ViewParams) -> EmbeddingsResult:
    return ApiClient(base_url).embeddings(image, name, model, params)


def show_error(error: ServiceError, image_name: str | None = None) -> None:
    """The failure as a message (never a traceback); image errors name the file."""
    subject = f" ({image_name})" if image_name and error.code in IMAGE_ERRORS else ""
    st.error(f"**{error.title}{subject}.** {error.message}", icon=":material/error:")


@contextmanager
def section(name: str) -> Iterator[None]:
    """Run one part of the page; a failure there becomes a short message in its place (and a log line
    with the traceback for whoever runs the app), the rest of the page still renders."""
    try:
        yield
    except ScriptControlException:  # st.stop / st.rerun: Streamlit's own control flow
        raise
    except ServiceError as error:
        show_error(error)
    except Exception as error:  # noqa: BLE001 - the point is that nothing reaches the page as a traceback
        LOG.exception("section %r failed", name)
        st.error(f"**{name} could not be drawn.** {type(error).__name__}: {error}", icon=":material/error:")


# --- callbacks (they run before the next rerun, so they may set widget keys) ---------------------------------


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


def new_views() -> None:
    st.session_state["seed"] = int(st.session_state.get("seed", 0)) + 1


def new_scene() -> None:
    st.session_state["scene_index"] = int(st.session_state.get("scene_index", 0)) + 1


def previous_scene() -> None:
    st.session_state["scene_index"] = max(int(st.session_state.get("scene_index", 0)) - 1, 0)


def use_gallery_item(key: str) -> None:
    st.session_state["image_source"] = "Gallery"
    st.session_state["gallery_item"] = key
    remembered("gallery_item", key)


# --- the sidebar --------------------------------------------------------------------------------------------


def model_label(models: dict[str, dict], model_id: str) -> str:
    info = models.get(model_id)
    if info is None:
        return model_id
    if info["status"] == "error":
        return f"{model_id} · cannot be loaded"
    parts = [model_id, info.get("method") or "?", info.get("backbone") or "?"]
    if info.get("d"):
        parts.append(f"d={info['d']}, h={info.get('h')}")
    if not info.get("has_maps", True):
        parts.append("no maps")
    profile = info.get("profile")
    if profile is not None:
        verdict = "localises" if profile["verdict"] == "localises" else "not better than random"
        best = profile["random_control"]["object_auroc"]
        parts.append(f"{verdict} ({profile['object_auroc']:.2f} vs best random {best:.2f})")
    return " · ".join(parts)


def remembered(key: str, value: Any) -> None:
    """Keep a widget's value under a key of its own: Streamlit forgets a widget's state when a run does not
    draw it (the gallery box while Source is Upload), and the page must come back to what it showed."""
    st.session_state[f"_kept_{key}"] = value


def kept(key: str) -> Any:
    return st.session_state.get(f"_kept_{key}")


def upload_problem(name: str, size: int, cap: int) -> str | None:
    """Why an uploaded file is not sent to the service (its type or size), or None."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in UPLOAD_TYPES:
        return (
            f"{name} is not an image type the page sends (.{suffix or '?'}): choose a "
            f"{', '.join(t.upper() for t in UPLOAD_TYPES)} file."
        )
    if size > cap:
        return f"{name} is {size / 2**20:.1f} MB; the service takes up to {cap / 2**20:.0f} MB."
    return None


def sidebar_image(base_url: str, limits: dict[str, Any]) -> Picked | str | None:
    """The chosen image, a message saying why an upload is not used, or None (nothing uploaded yet)."""
    st.sidebar.header("Image")
    source = st.sidebar.radio("Source", ["Gallery", "Upload"], horizontal=True, key="image_source")
    if source == "Upload":
        cap = int(limits.get("max_upload_bytes") or 20 * 2**20)
        upload = st.sidebar.file_uploader(  # every type: a refused one is explained in the main area
            f"An image (PNG, JPEG, WebP, GIF, BMP, TIFF …), up to {cap / 2**20:.0f} MB (the service's limit)",
            key="upload",
        )
        if upload is None:
            return None
        return upload_problem(upload.name, upload.size, cap) or Picked(upload.getvalue(), upload.name)
    items = gallery_items(base_url)
    labels = {item.key: item.label for item in items}
    current = st.session_state.get("gallery_item")
    if current not in labels:
        current = kept("gallery_item") if kept("gallery_item") in labels else items[0].key
    # set on every run: a box drawn again after an Upload detour otherwise shows its first entry while the
    # state holds another, and the next unrelated click would switch the image to what the box shows
    st.session_state["gallery_item"] = current
    if "scene_index" not in st.session_state and kept("scene_index") is not None:
        st.session_state["scene_index"] = kept("scene_index")
    last_scene = max_scene(base_url)
    st.session_state["scene_index"] = state.checked_index(st.session_state.get("scene_index", 0), last_scene + 1)
    key = st.sidebar.selectbox("Gallery", list(labels), format_func=labels.__getitem__, key="gallery_item")
    if key == SCENE_KEY:
        st.sidebar.number_input("Scene number", min_value=0, max_value=last_scene, step=1, key="scene_index")
        # one button a row: side by side in the sidebar their labels were cut ("New sce…")
        st.sidebar.button("Previous scene", on_click=previous_scene, icon=":material/arrow_back:", key="previous_scene")
        st.sidebar.button("New scene", on_click=new_scene, icon=":material/shuffle:", key="new_scene")
    scene_index = int(st.session_state.get("scene_index", 0))
    remembered("gallery_item", key)
    remembered("scene_index", scene_index)
    data, name = load_item(base_url, key, scene_index)
    with st.sidebar.expander("Browse the gallery", icon=":material/photo_library:"):
        cells = st.columns(GALLERY_COLUMNS)
        for position, item in enumerate(items):
            cell = cells[position % GALLERY_COLUMNS]
            cell.image(thumbnail_png(base_url, item.key, scene_index if item.key == SCENE_KEY else 0), width="stretch")
            cell.button(
                item.short,
                key=f"thumb-{item.key}",
                on_click=use_gallery_item,
                args=(item.key,),
                type="tertiary",
                help=item.label,
            )
    return Picked(data, name, load_mask(base_url, key, scene_index))


def sidebar_models(models: dict[str, dict], default: str | None) -> tuple[str, str | None]:
    st.sidebar.header("Model")
    ids = list(models)
    if st.session_state.get("model") not in ids:
        st.session_state["model"] = default if default in ids else ids[0]
    model = st.sidebar.selectbox("Model", ids, format_func=lambda m: model_label(models, m), key="model")
    second = None
    if st.sidebar.toggle("Compare with a second model", key="compare"):
        others = [m for m in ids if m != model] or ids
        if st.session_state.get("model_b") not in others:
            usable = [m for m in others if models[m]["status"] != "error" and models[m].get("has_maps") is not False]
            st.session_state["model_b"] = (usable or others)[0]
        second = st.sidebar.selectbox(
            "Second model", others, format_func=lambda m: model_label(models, m), key="model_b"
        )
    return model, second


def allowed_sizes(limits: dict[str, Any], views: int) -> list[int]:
    """The input sizes the service accepts with ``views`` augmented views: at most ``max_input_size``, and
    (views + 1) × size² at most ``max_request_pixels`` (``/v1/models``' limits)."""
    sizes = [s for s in SIZES if s <= int(limits.get("max_input_size") or SIZES[-1])]
    budget = limits.get("max_request_pixels")
    return [s for s in sizes if budget is None or (views + 1) * s * s <= int(budget)]


def allowed_views(limits: dict[str, Any], d: int | None) -> int:
    """The most augmented views the service accepts: ``max_views``, with the smallest size within
    ``max_request_pixels`` and, for a model of ``d`` maps, (views + 1) × d × 32² frame values within
    ``max_frame_values`` (32 frame cells along the image's longer side, the page's grid)."""
    most = int(limits.get("max_views", 8))
    while most > 0 and not allowed_sizes(limits, most):
        most -= 1
    frames = limits.get("max_frame_values")
    if frames is not None and d:
        most = min(most, max(int(frames) // (d * FRAME_CELLS**2) - 1, 0))
    return most


def sidebar_views(limits: dict[str, Any], profile_size: int | None, d: int | None = None) -> ViewParams:
    """Views, preset, seed and size; only the combinations the service accepts are offered, and a stored
    choice outside them (from a URL, or from more views than before) is lowered with a note saying so."""
    st.sidebar.header("Views")
    max_views = allowed_views(limits, d)
    asked_views = state.valid_int(st.session_state.get("views", 2), 0, 10**6)
    if asked_views is not None and asked_views > max_views:
        st.session_state["_clamped_views"] = asked_views
    st.session_state["views"] = min(asked_views if asked_views is not None else 2, max_views)
    views = st.sidebar.slider("Augmented views (after view 0, the whole image)", 0, max_views, key="views")
    if st.session_state.pop("_clamped_views", None) is not None:
        st.sidebar.warning(f"The service takes at most {max_views} augmented views here: views set to {max_views}.")
    if st.session_state.get("preset") not in PRESETS:
        st.session_state["preset"] = "byol1"
    preset = st.sidebar.selectbox("Augmentation", list(PRESETS), format_func=PRESETS.__getitem__, key="preset")
    st.session_state["seed"] = state.checked_index(st.session_state.get("seed", 0), state.MAX_SEED + 1)
    seed = st.sidebar.number_input(
        "Seed (view i is drawn from seed and i)", min_value=0, max_value=state.MAX_SEED, step=1, key="seed"
    )
    st.sidebar.button("New views", on_click=new_views, icon=":material/casino:", help="draw new augmented views")
    sizes = allowed_sizes(limits, int(views)) or [SIZES[0]]
    every = allowed_sizes({**limits, "max_request_pixels": None}, int(views))
    asked = st.session_state.get("size")
    if asked not in sizes:
        fallback = DEFAULT_SIZE if DEFAULT_SIZE in sizes else sizes[-1]
        if asked in every:  # a size the service takes with fewer views only
            st.session_state["_clamped_size"] = (asked, fallback)
            fallback = sizes[-1]
        st.session_state["size"] = fallback
    size = st.sidebar.select_slider("Input size (px)", sizes, key="size")
    clamped = st.session_state.pop("_clamped_size", None)
    if clamped is not None:
        st.sidebar.warning(
            f"{views} views at {clamped[0]} px would be {(views + 1) * clamped[0] ** 2:,} input pixels, over the "
            f"service's limit of {int(limits['max_request_pixels']):,} ((views + 1) × size²): size set to {size} px."
        )
    elif len(sizes) < len(every):
        st.sidebar.caption(
            f"Sizes above {sizes[-1]} px are offered with fewer views: the service takes at most "
            f"{int(limits['max_request_pixels']):,} input pixels per request ((views + 1) × size²)."
        )
    if profile_size is not None:
        note = "the same size" if size == profile_size else f"**{profile_size} px** (AUROC numbers are from that size)"
        st.sidebar.caption(
            f"The model's profile was measured at {note}. The demo models were trained on 128-px scenes; 224 px "
            "gives 7×7 maps on a ResNet."
        )
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
        "where a map is higher relative to itself; 'zero to peak' shows how flat it really is. The colour "
        "bar under every map gives the range in units of the uniform value.",
    )
    columns = st.sidebar.slider("Maps per row", 2, 8, 6, key="per_row")
    return figures.Style(cmap=cmap, alpha=float(alpha), scale=scale), int(columns)


# --- the sections -------------------------------------------------------------------------------------------


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
    measured = (result.profile or {}).get("patterns") if result.has_patterns else None
    control = (result.profile or {}).get("random_control_patterns") or {}
    for cell, pattern in zip(counts, ["object", "multi-object", "global"], strict=False):
        if measured is not None:
            cell.metric(
                f"{pattern} maps (measured)",
                f"{measured.get(pattern, 0)} / {d}",
                help=f"measured from instance masks by lewel profile ({PATTERN_MEANING[pattern]}); the best "
                f"random control has {control.get(pattern, '?')}",
            )
            continue
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
    """The maps a tab shows: the profile's object or background maps (``role:…``) in measured order, the
    maps of a measured Figure-5 pattern (``pattern:…``, as ``/v1/maps?pattern=`` orders them), those of view 0
    classified as a heuristic pattern (most typical first), or all by index."""
    if pattern is not None and pattern.startswith("pattern:"):
        name = pattern.removeprefix("pattern:")
        chosen = indices_for(result, pattern)
        counts = (result.profile or {}).get("patterns") or {}
        control = ((result.profile or {}).get("random_control_patterns") or {}).get(name)
        against = f" (the best random control: {control})" if control is not None else ""
        if not chosen:
            st.info(
                f"**No {name} maps**: `lewel profile` measured none of this model's {result.d} maps as {name} "
                f"({PATTERN_MEANING.get(name, '')}){against}. An absent pattern is a measurement, not an error."
            )
            return []
        st.caption(
            f"The model's **{counts.get(name, len(chosen))} {name} maps**, measured from instance masks by "
            f"`lewel profile` ({PATTERN_MEANING.get(name, '')}){against}; best first, as `/v1/maps?pattern={name}` "
            f"orders them. The {min(per_row, len(chosen))} first are shown; under each tile its measured pattern, "
            "held-out AUROC and the category it looks at most."
        )
        return chosen[:per_row]
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


def downloads(
    api: ApiClient,
    picked: Picked,
    params: ViewParams,
    result: MapsResult,
    indices: list[int],
    style: figures.Style,
    pattern: str | None,
    limits: dict[str, Any],
) -> None:
    """The figure of the shown maps (PNG at a chosen dpi, PDF or SVG, with titles and colour bars, drawn by the
    service when the button is pressed) and every map of every view (the service's NPZ answer, byte for byte)."""
    model = result.model["id"]
    chooser, quality, figure_button, npz_button = st.columns([1, 1, 1.3, 1.3], vertical_alignment="bottom")
    fmt = FORMAT_CHOICES[chooser.selectbox("Figure format", list(FORMAT_CHOICES), key="figure_format")]
    dpi = quality.select_slider("Figure dpi", DPIS, value=200, key="figure_dpi", disabled=fmt != "png")
    name = (pattern or "index").replace("role:", "measured_")
    refusal = figures.figure_refusal(result, indices, fmt, dpi, limits) if indices else None
    if refusal is not None:
        st.caption(f"The figure cannot be downloaded as it is: {refusal}.")
    figure_button.download_button(
        f"Download this figure ({fmt.upper()})",
        data=lambda: api.figure(
            picked.data, picked.name, model, params, indices,
            fmt=fmt, dpi=dpi, cmap=style.cmap, alpha=style.alpha, scale=style.scale,
        ),
        file_name=f"lewel_figure5_{model}_{name}.{fmt}",
        mime=MIME[fmt],
        icon=":material/image:",
        on_click="ignore",
        disabled=not indices or refusal is not None,
    )
    npz_button.download_button(
        "Download all maps (NPZ)",
        data=result.npz,
        file_name=f"lewel_maps_{model}.npz",
        mime="application/x-npz",
        icon=":material/download:",
        on_click="ignore",
    )


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
        if result.roles is not None and result.profile is not None:
            auroc = float(result.profile_auroc[index])
            label = result.pattern_of(index) or str(result.roles[index])
            cells[0].metric(
                "pattern (measured)" if result.pattern_of(index) else "role (measured)",
                label,
                help=f"held-out AUROC {auroc:.2f} (0.5 = no relation)"
                + (f"; looks most at {result.category_of(index)}" if result.category_of(index) else ""),
            )
            cells[0].caption(f"AUROC {auroc:.2f} held-out")
        else:
            cells[0].metric("pattern (view 0, heuristic)", str(result.patterns[0, index]))
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


def grouped_section(
    result: MapsResult, picked: Picked, model: str, params: ViewParams, presets: list[str], style: figures.Style
) -> None:
    st.subheader("Grouped aligned representations")
    count = result.d // result.h
    fallback = int(result.aligned[state.checked_index(st.session_state.get("selected_map", 0), result.d)])
    st.session_state["aligned_rep"] = state.checked_index(st.session_state.get("aligned_rep", fallback), count, fallback)
    aligned = st.number_input(f"Aligned representation (0–{count - 1})", 0, count - 1, step=1, key="aligned_rep")
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


def own_maps(result: MapsResult) -> tuple[list[int], str]:
    """A model's own maps for the comparison, with what they are: its measured object maps (best held-out
    AUROC first) or, without a profile, the maps of view 0 its shape heuristic calls object maps."""
    measured = result.measured("object")
    if measured:
        return measured[:COMPARE_MAPS], "its measured object maps, best held-out AUROC first"
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
    shown = indices[:COMPARE_MAPS * 2]
    st.caption(f"{len(indices)} maps look at **{chosen}**, best first (`/v1/maps?category={chosen}`); view 0.")
    cells = st.columns(max(len(shown), 4))
    for cell, index in zip(cells, shown, strict=False):
        map_cell(cell, result, 0, index, style, inspect="inspect-category")


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


def header() -> None:
    st.title("LEWEL explorer")
    st.caption(
        "Where does a LEWEL model look? Its alignment maps for any image, laid out like Figure 5 of "
        f"[*Learning Where to Learn in Cross-View Self-Supervised Learning*]({PAPER_URL}) (Huang et al., CVPR "
        f"2022): a row per view, each map overlaid on the view it was computed from. The authors' code and "
        f"ImageNet checkpoints: [{CODE_URL.removeprefix('https://')}]({CODE_URL}) — drop a checkpoint into "
        "`./scripts/app --models-dir DIR` to see it here."
    )


def apply_query(base_url: str, models: list[str], max_views: int) -> None:
    """On a session's first run, take the settings a shared URL carries (``app.state.from_query``)."""
    if st.session_state.get("_query_applied"):
        return
    values = state.from_query(
        st.query_params.to_dict(),
        gallery=[item.key for item in gallery_items(base_url)],  # first: a failure leaves the query for the next run
        models=models,
        presets=list(PRESETS),
        sizes=SIZES,
        max_views=max_views,
    )
    st.session_state["_query_applied"] = True
    st.session_state.update(values)


def retry_button(where: Any = st, key: str = "retry") -> None:
    """A button that asks the service again (any click reruns the page; cached failures are not kept)."""
    where.button("Retry", key=key, icon=":material/refresh:", type="primary", help="ask the service again")


def service_listing(api: ApiClient) -> dict[str, Any] | None:
    """``/v1/models``, kept in the session: when the service stops answering the page says so with a Retry,
    and keeps its sidebar from the last answer (None when it never answered in this session)."""
    try:
        listing = api.models()
    except ServiceError as error:
        show_error(error)
        kept_listing = st.session_state.get("_listing")
        if kept_listing is None:
            retry_button()
        return kept_listing
    st.session_state["_listing"] = listing
    return listing


def main() -> None:
    st.set_page_config(page_title="LEWEL explorer", page_icon=":material/grid_view:", layout="wide")
    header()
    api = client()
    listing = service_listing(api)
    if listing is None:
        st.sidebar.header("Service")
        st.sidebar.warning(f"No answer from {api.base_url} yet: the controls appear once it answers.")
        retry_button(st.sidebar, key="retry-sidebar")
        st.stop()
    models = {info["id"]: info for info in listing["models"]}
    if not models:
        st.error(f"**No model found.** The service looked in: {'; '.join(listing.get('searched', []))}.")
        retry_button()
        st.stop()
    limits = listing.get("limits") or {}
    gallery_error = None
    try:  # the gallery comes from the service too: when it fails, the rest of the sidebar is still drawn
        apply_query(api.base_url, list(models), int(limits.get("max_views", 8)))
        picked = sidebar_image(api.base_url, limits)
    except ServiceError as error:
        gallery_error, picked = error, None
    model, second = sidebar_models(models, listing.get("default"))
    profile = models[model].get("profile")
    params = sidebar_views(limits, profile["size"] if profile else None, models[model].get("d"))
    style, per_row = sidebar_display()
    st.query_params.from_dict(state.to_query(st.session_state))
    if gallery_error is not None:
        show_error(gallery_error)
        retry_button(key="retry-gallery")
        st.stop()
    if isinstance(picked, str):
        st.error(f"**The upload is not used.** {picked}", icon=":material/error:")
        st.stop()
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
            results[name] = fetch_maps(
                api.base_url, picked.data, picked.name, name, params, picked.mask, model_key(models[name])
            )
        except ServiceError as error:
            progress.empty()
            show_error(error, picked.name)
            retry_button(key="retry-maps")
            st.stop()
    progress.empty()

    result = results[model]
    small = Image.fromarray(result.source_image)  # the image as the service decoded it, downscaled
    source_size = result.source_size
    presets = ["whole image"] + [params.preset] * params.views

    pattern, indices = None, []
    with section("The summary"):
        pattern_summary(result, picked.name)
    with section("Figure 5"):
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
    if result.has_patterns and (result.profile or {}).get("categories"):
        with section("Maps that look at a category"):
            category_section(result, presets, style)
    with section("Downloads"):
        downloads(api, picked, params, result, indices, style, pattern, limits)
    if second:
        with section("The comparison"):
            comparison_section(results, indices or indices_for(result, pattern)[:per_row], presets, style)
    st.divider()
    with section("Maps that look here"):
        looking_section(api, picked, model, model_key(models[model]), params, small, source_size, result, style)
    st.divider()
    with section("One map"):
        selected_map_section(result, small, presets, style)
    st.divider()
    with section("Atlas"):
        from app.atlas_view import atlas_section

        atlas_section(api, result, guard=section)
    st.divider()
    with section("Grouped aligned representations"):
        grouped_section(result, picked, model, params, presets, style)
    st.query_params.from_dict(state.to_query(st.session_state))


if __name__ == "__main__":
    main()
