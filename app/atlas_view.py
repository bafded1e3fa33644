"""The Atlas section of the page: for one map index, the images of the model's atlas where that map
concentrates most (``/v1/atlas/{model}/maps/{index}`` and its thumbnails) next to the index's profile record;
when the model has no atlas, a button that has the service build one (``POST /v1/atlas/{model}/build``) and a
progress bar that follows the build. The service computes everything; this module asks and lays out."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from app import state
from app.build_progress import Guard, follow_build
from app.client import ApiClient, MapsResult, ServiceError

BUILD_SIZES = [64, 96, 128, 160, 192, 224]
DEFAULT_BUILD_SIZE = 128  #: 200 scenes at 128 px: about 15 s on one CPU thread for a demo model
DEFAULT_SCENES = 200
CACHE_SECONDS = 600


@st.cache_data(max_entries=512, ttl=CACHE_SECONDS, show_spinner=False)
def fetch_thumbnail(base_url: str, model: str, path: str, stamp: str) -> bytes:
    """A thumbnail's PNG; ``stamp`` names the atlas entry, so that a rebuilt atlas is fetched again."""
    return ApiClient(base_url).atlas_thumbnail(model, path)


def number(value: float | None, digits: int = 3) -> str:
    """``value`` rounded, or a dash when there is none."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def follow_selected_map(d: int) -> None:
    """Set the atlas selector to the One map section's selected map whenever that changes; else keep what it
    holds (within 0 … d − 1)."""
    selected = state.checked_index(st.session_state.get("selected_map", 0), d)
    if st.session_state.get("_atlas_follows") != selected:
        st.session_state["_atlas_follows"] = selected
        st.session_state["atlas_map"] = selected
    st.session_state["atlas_map"] = state.checked_index(st.session_state.get("atlas_map", selected), d, selected)


def profile_metrics(result: MapsResult, index: int) -> list[tuple[str, str, str | None]]:
    """``(label, value, delta)`` of map ``index`` in the model's profile: its measured role with its held-out
    AUROC, and its held-out pointing rate next to chance; [] without a profile."""
    if result.profile is None or result.roles is None or result.profile_auroc is None:
        return []
    pointing = float(result.profile_pointing[index]) if result.profile_pointing is not None else None
    auroc = number(float(result.profile_auroc[index]), 2)
    return [
        ("profile role", str(result.roles[index]) or "mixed", f"AUROC {auroc} held-out"),
        ("profile pointing (held-out)", number(pointing, 2), f"chance {number(result.profile.get('pointing_chance'), 2)}"),
    ]


def atlas_metrics(record: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """``(label, value, delta)`` of the atlas's own AUROC and pointing for one map index (over the atlas's
    images with masks)."""
    if record.get("auroc") is None:
        return [("atlas AUROC", "–", "no masks")]
    return [
        ("atlas AUROC", number(record["auroc"], 2), f"over {record['auroc_views']} views"),
        ("atlas pointing", number(record.get("pointing"), 2), f"chance {number(record.get('pointing_chance'), 2)}"),
    ]


def atlas_note(record: dict[str, Any]) -> str:
    """The atlas's means for one map index, in a line."""
    statistics, patterns = record["statistics"], record["patterns"]
    shares = ", ".join(f"{name} {share:.0%}" for name, share in patterns.items())
    return (
        f"Group {record['group']}, aligned representation {record['aligned']}. Over the atlas: mean peak ÷ uniform "
        f"{statistics['peak_ratio']:.4f}, normalised entropy {statistics['normalized_entropy']:.5f}; "
        f"patterns {shares}."
    )


def describe_atlas(atlas: dict[str, Any]) -> str:
    """One line on what the atlas was built over."""
    data = atlas.get("data") or {}
    what = data.get("spec") or data.get("root") or data.get("kind", "?")
    auroc = f"; mean AUROC over its indices {number(atlas['mean_auroc'])}" if atlas.get("mean_auroc") is not None else ""
    return (
        f"The atlas of **{atlas['checkpoint']['file']}** over {atlas['images']} images ({what}) at {atlas['size']} px: "
        f"for this map, the {atlas['top']} of {atlas['entries']} (image, view) pairs where it concentrates most, "
        f"by two scores{auroc}. Maps are drawn stretched to their own range, the peak cell outlined."
    )


def build_form(api: ApiClient, model: str, status: dict[str, Any], label: str) -> None:
    """Scenes and size, and the button that starts the service's build (the page then follows it)."""
    cap = int(status.get("max_scenes") or DEFAULT_SCENES)
    st.session_state["atlas_scenes"] = max(1, min(int(st.session_state.get("atlas_scenes", DEFAULT_SCENES)), cap))
    if st.session_state.get("atlas_size") not in BUILD_SIZES:
        st.session_state["atlas_size"] = DEFAULT_BUILD_SIZE
    scenes_cell, size_cell, button_cell = st.columns([1, 1, 2], vertical_alignment="bottom")
    scenes = scenes_cell.number_input("Scenes", min_value=1, max_value=cap, step=50, key="atlas_scenes")
    size = size_cell.selectbox("Atlas input size (px)", BUILD_SIZES, key="atlas_size")
    if button_cell.button(label, key="atlas_build", icon=":material/auto_awesome_mosaic:"):
        api.start_atlas_build(model, int(scenes), int(size))
        st.rerun()


def build_progress(base_url: str, model: str, guard: Guard) -> None:
    """The running build's progress bar (``app.build_progress``); the whole page reruns once the build is over."""
    follow_build(
        base_url,
        f"/v1/atlas/{model}/build",
        lambda status: f"Building the atlas of {model} over {status['scenes']} scenes at {status['size']} px: "
        f"{status['message']}",
        section="Atlas",
        guard=guard,
    )


def top_rows(api: ApiClient, model: str, atlas: dict[str, Any]) -> None:
    """Both top lists of the map: a row of thumbnails each, with their image, view and score."""
    record = atlas["map"]
    sha = atlas["checkpoint"].get("sha256", "")[:12]
    for criterion, title in atlas["criteria"].items():  # the scores the top lists are ranked by, in order
        entries = record["top"][criterion]
        st.markdown(f"**Top {len(entries)} by {title}**")
        cells = st.columns(max(len(entries), 4), gap="small")
        for cell, entry in zip(cells, entries, strict=False):
            stamp = f"{sha}:{entry['id']}:{entry['view']}:{entry['score']!r}:{atlas['size']}"
            cell.image(
                fetch_thumbnail(api.base_url, model, entry["thumbnail"], stamp),
                caption=f"{entry['rank'] + 1}. {entry['id']} v{entry['view']} · {entry['score']:.3f}",
                width="stretch",
            )


def atlas_section(api: ApiClient, result: MapsResult, *, guard: Guard) -> None:
    """The Atlas section for ``result``'s model; ``guard(name)`` turns a failure into a message (the page's
    ``section``), also inside the progress bar's own reruns."""
    st.subheader("Atlas")
    model, d = result.model["id"], result.d
    follow_selected_map(d)
    index = int(st.selectbox("Atlas map", list(range(d)), key="atlas_map", format_func=lambda m: f"map {m}"))
    status = api.atlas_build(model)
    if status["status"] == "running":
        build_progress(api.base_url, model, guard)
        return
    if status["status"] == "error":
        st.error(f"**The last atlas build of {model} failed.** {status['message']}", icon=":material/error:")
    if not status["atlas"]:
        st.info(
            f"{model} has no atlas yet. The service can build one: the model's maps over generated scenes with "
            "object masks (the held-out scenes of `lewel profile`), the top images of every map index and their "
            "AUROC against the objects.",
            icon=":material/auto_awesome_mosaic:",
        )
        build_form(api, model, status, f"Build an atlas for {model}")
        return
    try:
        atlas = api.atlas_map(model, index)
    except ServiceError as error:
        if error.code != "not_found":
            raise
        atlas = None  # an atlas with fewer maps than this model: made for another version of the file
    if atlas is None or atlas["model"].get("d") != d:
        st.warning(f"The atlas of {model} was built for another version of it (d differs): build it again.")
    else:
        st.caption(describe_atlas(atlas))
        thumbs, numbers = st.columns([3, 1], gap="medium")
        with thumbs:
            top_rows(api, model, atlas)
        with numbers:
            st.markdown(f"**Map {index}**")
            profile = profile_metrics(result, index)
            for label, value, delta in profile + atlas_metrics(atlas["map"]):
                st.metric(label, value, delta, delta_color="off", delta_arrow="off")
            if not profile:
                st.caption(f"{model} has no map profile (`lewel profile`): no measured role.")
            st.caption(atlas_note(atlas["map"]))
    with st.expander("Build the atlas again", icon=":material/refresh:"):
        build_form(api, model, status, f"Build the atlas of {model} again")
