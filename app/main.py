"""LEWEL explorer: the Streamlit page. ``streamlit run app/main.py`` (or ``python -m app``, which starts the
service too). Everything is computed by the service at ``LEWEL_API_URL``; this page only asks and draws.

This module composes the page from its sections (``app.sidebar``, ``app.image_source``, ``app.figure5``,
``app.profile_build``, ``app.downloads``, ``app.compare``, ``app.point_query``, ``app.one_map``, ``app.atlas_view``,
``app.aligned_groups``). Every section renders inside ``section(...)`` (``app.failures``): whatever the order of
clicks, a failure shows a one-line message in its place, never a traceback. Stored widget values are checked
against the current answer (``app.state``) before they are used, and the page's settings travel in the URL
(``?image=…&map=…``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import streamlit as st
from PIL import Image

from app import state
from app.aligned_groups import grouped_section
from app.answers import client, fetch_maps, model_key
from app.atlas_view import atlas_section
from app.client import ApiClient, MapsResult, ServiceError
from app.compare import comparison_section
from app.downloads import downloads
from app.failures import retry_button, section, show_error
from app.figure5 import category_section, figure5_section, indices_for, pattern_summary
from app.gallery import gallery_items
from app.image_source import sidebar_image
from app.one_map import selected_map_section
from app.point_query import looking_section
from app.profile_build import SECTION, profile_build_section
from app.sidebar import PRESETS, SIZES, sidebar_display, sidebar_models, sidebar_views

PAPER_URL = "https://arxiv.org/abs/2203.14898"
CODE_URL = "https://github.com/hlh981029/LEWEL"  #: the authors' code and checkpoint release


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


def service_listing(api: ApiClient) -> tuple[dict[str, Any] | None, bool]:
    """``/v1/models`` (asked with a short timeout: the page's health check) and whether the service answered.
    When it stops answering the page says so with a Retry at once and keeps its sidebar from the last answer
    kept in the session (None when it never answered in this session); the caller asks nothing else then."""
    try:
        listing = api.models()
    except ServiceError as error:
        show_error(error)
        retry_button()
        return st.session_state.get("_listing"), False
    st.session_state["_listing"] = listing
    return listing, True


def main() -> None:
    st.set_page_config(page_title="LEWEL explorer", page_icon=":material/grid_view:", layout="wide")
    header()
    api = client()
    listing, answered = service_listing(api)
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
    if not answered:  # fail fast: the sidebar as it was, and no request that would wait on a service that is down
        with contextlib.suppress(ServiceError):  # what it showed is cached; a new pick fails at once, said above
            sidebar_image(api.base_url, limits)
        sidebar_models(models, listing.get("default"))
        profile = models[st.session_state["model"]].get("profile")
        sidebar_views(limits, profile["size"] if profile else None, models[st.session_state["model"]].get("d"))
        sidebar_display()
        st.stop()
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
    with section(SECTION):
        profile_build_section(api, models[model], params.size, guard=section)
    with section("Figure 5"):
        pattern, indices = figure5_section(result, small, source_size, presets, style, per_row)
    if result.has_patterns and (result.profile or {}).get("categories"):
        with section("Maps that look at a category"):
            category_section(result, presets, style)
    with section("Downloads"):
        downloads(result, indices, presets, style, pattern, limits)
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
        atlas_section(api, result, guard=section)
    st.divider()
    with section("Grouped aligned representations"):
        grouped_section(result, picked, model, params, presets, style)
    st.query_params.from_dict(state.to_query(st.session_state))


if __name__ == "__main__":
    main()
