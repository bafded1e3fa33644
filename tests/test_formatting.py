"""The one number formatter of the text the library writes (profile lines, the atlas page)."""

from __future__ import annotations

import math

from lewel.drawing.atlas_page import _number
from lewel.formatting import format_number


def test_numbers_and_missing_values():
    assert format_number(0.51234) == "0.512" and format_number(0.5, 2) == "0.50" and format_number(3) == "3.000"
    assert format_number(None) == format_number(math.nan) == "n/a"
    assert format_number(None, missing="–") == "–"


def test_the_atlas_page_shows_a_dash_for_a_missing_value():
    assert _number(None) == "–" and _number(0.71234) == "0.712" and _number(0.71234, 2) == "0.71"
