"""The sidebar's Model, Views and Display parts: the models the service lists, the views it accepts within its
limits (``/v1/models``), and how maps are drawn."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import figures, state
from app.client import ViewParams

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
FRAME_CELLS = 32  #: the service's default image-frame grid (cells along the longer side), which the page asks for


def new_views() -> None:
    st.session_state["seed"] = int(st.session_state.get("seed", 0)) + 1



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
