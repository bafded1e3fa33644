"""The page's state that a URL can carry (``?image=skimage:coffee&model=lewel_m_demo&views=2&map=40``), and
the checks that keep stored values valid whatever the order of clicks. Pure functions: no Streamlit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: URL parameter -> session-state key of the widget it sets
QUERY_KEYS = {
    "image": "gallery_item",
    "scene": "scene_index",
    "model": "model",
    "compare": "model_b",
    "views": "views",
    "preset": "preset",
    "seed": "seed",
    "size": "size",
    "map": "selected_map",
    "point": "point",
}
MAX_SEED = 2**31 - 1  #: the largest seed the page offers (the service takes up to 2**63 - 1)


def valid_int(value: Any, low: int, high: int) -> int | None:
    """``value`` as an int in ``[low, high]``, or None (not a whole number, or out of range)."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if low <= number <= high else None


def from_query(
    params: Mapping[str, str],
    *,
    gallery: Sequence[str],
    models: Sequence[str],
    presets: Sequence[str],
    sizes: Sequence[int],
    max_views: int,
) -> dict[str, Any]:
    """The session values a shared URL asks for; what is unknown or out of range is left out (the widget then
    keeps its default). ``map`` is checked against the model's d later, when the maps are known."""
    values: dict[str, Any] = {}
    if params.get("image") in gallery:
        values["gallery_item"] = params["image"]
        values["image_source"] = "Gallery"
    for name, key, high in (("scene", "scene_index", MAX_SEED), ("seed", "seed", MAX_SEED), ("views", "views", max_views)):
        number = valid_int(params.get(name), 0, high)
        if number is not None:
            values[key] = number
    size = valid_int(params.get("size"), 0, 10**6)
    if size in sizes:
        values["size"] = size
    if params.get("preset") in presets:
        values["preset"] = params["preset"]
    if params.get("model") in models:
        values["model"] = params["model"]
    if params.get("compare") in models and params.get("compare") != values.get("model"):
        values["model_b"] = params["compare"]
        values["compare"] = True
    selected = valid_int(params.get("map"), 0, 10**6)
    if selected is not None:
        values["selected_map"] = selected
    point = parse_point(params.get("point"))
    if point is not None:
        values["point"] = point
    return values


def parse_point(value: Any) -> tuple[int, int] | None:
    """``"X,Y"`` (original-image pixels, whole numbers from 0) as ``(x, y)``, or None. Whether it lies inside
    the image is checked when the image is known."""
    if not isinstance(value, str) or value.count(",") != 1:
        return None
    x, y = (valid_int(part, 0, 10**6) for part in value.split(","))
    return (x, y) if x is not None and y is not None else None


def to_query(session: Mapping[str, Any]) -> dict[str, str]:
    """The URL parameters of the page as it is now (a gallery image only: uploads cannot be shared)."""
    query: dict[str, str] = {}
    if session.get("image_source", "Gallery") == "Gallery" and session.get("gallery_item"):
        query["image"] = str(session["gallery_item"])
        if str(session["gallery_item"]) == "scene":
            query["scene"] = str(int(session.get("scene_index", 0)))
    for key, name in (("model", "model"), ("views", "views"), ("preset", "preset"), ("seed", "seed"), ("size", "size")):
        if session.get(key) is not None:
            query[name] = str(session[key])
    if session.get("compare") and session.get("model_b"):
        query["compare"] = str(session["model_b"])
    if isinstance(session.get("selected_map"), int):
        query["map"] = str(session["selected_map"])
    point = session.get("point")
    if isinstance(point, tuple) and len(point) == 2:
        query["point"] = f"{int(point[0])},{int(point[1])}"
    return query


def checked_index(value: Any, count: int, default: int = 0) -> int:
    """A stored index that must lie in ``[0, count)``: ``value`` when it does (as an int), else ``default``
    (e.g. a map index kept from a model with more maps, or a label stored by an older page)."""
    number = valid_int(value, 0, max(count - 1, 0))
    return number if number is not None and count > 0 else default
