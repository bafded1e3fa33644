"""How the page fails: a service error or a broken section becomes a one-line message in its place (never a
traceback), with a Retry where asking again can help."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from app.client import ServiceError

IMAGE_ERRORS = ("unsupported_media_type", "too_large")  #: service error codes about the image itself
LOG = logging.getLogger("lewel.app")


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



def retry_button(where: Any = st, key: str = "retry") -> None:
    """A button that asks the service again (any click reruns the page; cached failures are not kept)."""
    where.button("Retry", key=key, icon=":material/refresh:", type="primary", help="ask the service again")
