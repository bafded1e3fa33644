"""*Measure this model*: for a model without a map profile, or with one measured at another input size than the
page's, a button that has the service measure one (``POST /v1/models/{model}/profile``), a progress bar that
follows the build while the rest of the page stays usable (a Streamlit fragment that polls ``GET`` on its own),
and, once the build is over, the page again: the measured tabs and banner when it is done, its error when it
failed. The service measures and writes the profile; this module asks and shows."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.build_progress import Guard, follow_build
from app.client import ApiClient

DEFAULT_IMAGES = 64  #: scenes per split the button asks for: a first measurement in minutes on a CPU
SECTION = "Measure this model"


def measure_reason(info: dict[str, Any], size: int) -> str | None:
    """Why the page offers to measure the model of ``/v1/models`` entry ``info`` at the page's ``size``: it has
    no profile, or one measured at another size; ``None`` when it has one at this size or cannot be measured
    (no maps, a file that does not load)."""
    if info.get("status") == "error" or info.get("has_maps") is False:
        return None
    profile = info.get("profile")
    if profile is None:
        broken = f" (its profile file cannot be used: {info['profile_error']})" if info.get("profile_error") else ""
        return f"{info['id']} has no map profile{broken}"
    if profile.get("size") != size:
        return f"{info['id']}'s profile was measured at {profile.get('size')} px, the page shows {size} px"
    return None


def build_progress(base_url: str, model: str, guard: Guard) -> None:
    """The running build's progress bar (``app.build_progress``); the whole page reruns once the build is over,
    so that its profile (tabs, banner, sidebar) is read again."""
    follow_build(
        base_url,
        f"/v1/models/{model}/profile",
        lambda status: f"Measuring {model} on {status['images']} scenes per split at {status['size']} px: "
        f"{status['message']}",
        section=SECTION,
        guard=guard,
    )


def measure_form(api: ApiClient, model: str, size: int, status: dict[str, Any]) -> None:
    """Scenes per split, and the button that starts the service's build at the page's ``size``."""
    cap = int(status.get("max_images") or DEFAULT_IMAGES)
    stored = st.session_state.get("profile_images", DEFAULT_IMAGES)
    st.session_state["profile_images"] = max(1, min(int(stored) if isinstance(stored, int) else DEFAULT_IMAGES, cap))
    images_cell, button_cell = st.columns([1, 3], vertical_alignment="bottom")
    images = images_cell.number_input("Scenes per split", min_value=1, max_value=cap, step=16, key="profile_images")
    if button_cell.button(SECTION, key="profile_measure", icon=":material/straighten:", type="primary"):
        api.start_profile_build(model, int(images), int(size))
        st.rerun()


def profile_build_section(api: ApiClient, info: dict[str, Any], size: int, *, guard: Guard) -> None:
    """For the model of ``/v1/models`` entry ``info`` on a page at ``size`` px: the running build's progress, the
    last build's error, or the button when the model lacks a profile at this size (``measure_reason``)."""
    if info.get("status") == "error" or info.get("has_maps") is False:
        return
    model, reason = info["id"], measure_reason(info, size)
    status = api.profile_build(model)
    if status["status"] == "running":
        build_progress(api.base_url, model, guard)
        return
    if status["status"] == "failed":
        st.error(f"**Measuring {model} failed.** {status['error']}", icon=":material/error:")
    if reason is None:
        if status["status"] == "done":
            st.caption(f"The service measured this profile in {status['seconds']:.0f} s: {status['message']}.")
        return
    st.info(
        f"**{reason}.** The service can measure it: the model's maps and those of random "
        f"networks of its shape on generated scenes with object masks (a calibration and a held-out split) at "
        f"{size} px, as `lewel profile` does; the measured tabs and banner appear when it is done.",
        icon=":material/straighten:",
    )
    measure_form(api, model, size, status)
