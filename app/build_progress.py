"""A build the service runs in the background (an atlas, a profile), followed on the page: a Streamlit fragment
that asks the build's status URL every ``POLL_S`` seconds and draws its progress bar, while the rest of the page
stays usable, and does what its caller says once the build is over (by default: the whole page runs again, so
that what the build made is read)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import streamlit as st

from app.client import ApiClient

Guard = Callable[[str], AbstractContextManager[None]]
POLL_S = 1.0  #: how often the progress bar asks the service about a running build


def rerun_page(status: dict[str, Any]) -> None:
    """What a build's end does unless told otherwise: the whole page again (its answers read afresh)."""
    st.rerun()


@st.fragment(run_every=POLL_S)
def follow_build(
    base_url: str,
    status_path: str,
    describe: Callable[[dict[str, Any]], str],
    *,
    section: str,
    guard: Guard,
    on_end: Callable[[dict[str, Any]], None] = rerun_page,
) -> None:
    """The progress bar of the build at ``status_path`` (``GET``; its ``status``, ``fraction``, ``seconds``),
    its text ``describe(status)``; ``on_end(status)`` once the status is no longer ``running``. ``guard(section)``
    turns a failure into the page's one-line message, also in the fragment's own reruns."""
    with guard(section):
        status = ApiClient(base_url).build_status(status_path)
        if status["status"] != "running":
            on_end(status)
            return
        seconds = f" · {status['seconds']:.0f} s" if status.get("seconds") is not None else ""
        st.progress(float(status["fraction"]), text=f"{describe(status)}{seconds}")
