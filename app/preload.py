"""Streamlit with the page's imports and gallery already loaded: ``python -m app.preload run app/main.py …``
takes Streamlit's own arguments. The page's modules (torch, matplotlib, pandas, lewel) take seconds to import;
done here, before the launcher prints the address, a fresh page's first render does not wait for them."""

from __future__ import annotations

import sys


def warm() -> None:
    """Import what the page imports and draw the gallery's thumbnails (cached by ``app.gallery``). Not the
    click component: it registers itself with the running Streamlit, which does not exist yet here."""
    import pandas  # noqa: F401

    import app.client  # noqa: F401
    import app.figures  # noqa: F401
    import lewel.images  # noqa: F401
    from app.gallery import gallery_items, load_item, thumbnail_png

    items = gallery_items()
    for item in items:
        thumbnail_png(item.key)
    load_item(items[0].key)


def main() -> int:
    warm()
    from streamlit.web.cli import main as streamlit

    sys.argv[0] = "streamlit"
    return streamlit()


if __name__ == "__main__":
    sys.exit(main())
