"""Numbers in the text the library writes: the profile's summary lines (``lewel.maps.profiles.format_profile``) and
the atlas's page (``lewel.drawing.atlas_page``)."""

from __future__ import annotations

import math


def format_number(value: float | None, digits: int = 3, missing: str = "n/a") -> str:
    """``value`` with ``digits`` decimals, or ``missing`` for a value that is not there (``None`` or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return f"{value:.{digits}f}"
