"""The names of the paper's three kinds of alignment maps, in index order: the labels of ``lewel.maps.statistics``'s
pattern indices. A module of its own, without torch, so that what only draws or names the patterns (the
pictures of ``lewel.drawing.render``, the front end) can read them without loading torch."""

from __future__ import annotations

PATTERNS = ("object", "multi-object", "global")  #: the paper's three kinds of maps, in index order
