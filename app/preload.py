"""Streamlit with the page's imports already loaded: ``python -m app.preload run app/main.py …`` takes
Streamlit's own arguments. The page's modules (matplotlib, pandas, Streamlit's widgets) take a second or two to
import; done here, before the launcher prints the address, a fresh page's first render does not wait for them.
The gallery is not warmed here: it comes from the service, which starts beside this process."""

from __future__ import annotations

import sys


def warm() -> None:
    """Import what the page imports. Not the click component: it registers itself with the running
    Streamlit, which does not exist yet here."""
    import pandas  # noqa: F401

    import app.client  # noqa: F401
    import app.figures  # noqa: F401
    import app.gallery  # noqa: F401


def main() -> int:
    warm()
    from streamlit.web.cli import main as streamlit

    sys.argv[0] = "streamlit"
    return streamlit()


if __name__ == "__main__":
    sys.exit(main())
