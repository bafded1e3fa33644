"""The sidebar's Image part: an upload or a gallery item (generated scenes with their number), and the
callbacks of its buttons. Values are kept under keys of their own, so that a detour to Upload and back finds
the gallery as it was."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import random

import streamlit as st

from app import state
from app.gallery import SCENE_KEY, gallery_items, load_item, load_mask, max_scene, thumbnail_png

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tif", "tiff", "ppm", "tga"]
GALLERY_COLUMNS = 2  #: two thumbnails a row: their labels ("one object", "three objects") fit uncut


@dataclass(frozen=True)
class Picked:
    """The image the person chose: its bytes, a name, and its object mask (PNG) when the gallery knows it."""

    data: bytes
    name: str
    mask: bytes | None = None



def new_scene(last_scene: int) -> None:
    """A scene not shown yet on this page (drawn at random among 0 … ``last_scene``), said by its number."""
    shown = set(st.session_state.get("_shown_scenes", ()))
    draw = random.Random()
    choice = next((n for n in (draw.randint(0, last_scene) for _ in range(64)) if n not in shown), None)
    if choice is None:  # nearly every scene was shown: the first one not shown, counting up
        choice = next((n for n in range(last_scene + 1) if n not in shown), draw.randint(0, last_scene))
    st.session_state["scene_index"] = choice
    st.session_state["_new_scene"] = choice


def previous_scene() -> None:
    st.session_state["scene_index"] = max(int(st.session_state.get("scene_index", 0)) - 1, 0)


def use_gallery_item(key: str) -> None:
    st.session_state["image_source"] = "Gallery"
    st.session_state["gallery_item"] = key
    remembered("gallery_item", key)


def remembered(key: str, value: Any) -> None:
    """Keep a widget's value under a key of its own: Streamlit forgets a widget's state when a run does not
    draw it (the gallery box while Source is Upload), and the page must come back to what it showed."""
    st.session_state[f"_kept_{key}"] = value


def kept(key: str) -> Any:
    return st.session_state.get(f"_kept_{key}")


def keep_upload() -> None:
    """The uploader's callback: keep the last uploaded file's bytes, so that a detour to the gallery and back
    finds it (Streamlit forgets an uploader that a run does not draw); a removed file is forgotten."""
    upload = st.session_state.get("upload")
    st.session_state["_kept_upload"] = None if upload is None else (upload.name, upload.size, upload.getvalue())


def upload_problem(name: str, size: int, cap: int) -> str | None:
    """Why an uploaded file is not sent to the service (its type or size), or None."""
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in UPLOAD_TYPES:
        return (
            f"{name} is not an image type the page sends (.{suffix or '?'}): choose a "
            f"{', '.join(t.upper() for t in UPLOAD_TYPES)} file."
        )
    if size > cap:
        return f"{name} is {size / 2**20:.1f} MB; the service takes up to {cap / 2**20:.0f} MB."
    return None


def sidebar_image(base_url: str, limits: dict[str, Any]) -> Picked | str | None:
    """The chosen image, a message saying why an upload is not used, or None (nothing uploaded yet)."""
    st.sidebar.header("Image")
    source = st.sidebar.radio("Source", ["Gallery", "Upload"], horizontal=True, key="image_source")
    if source == "Upload":
        cap = int(limits.get("max_upload_bytes") or 20 * 2**20)
        upload = st.sidebar.file_uploader(  # every type: a refused one is explained in the main area
            f"An image (PNG, JPEG, WebP, GIF, BMP, TIFF …), up to {cap / 2**20:.0f} MB (the service's limit)",
            key="upload",
            on_change=keep_upload,
        )
        if upload is not None:
            return upload_problem(upload.name, upload.size, cap) or Picked(upload.getvalue(), upload.name)
        if st.session_state.get("_kept_upload") is None:
            return None
        name, size, data = st.session_state["_kept_upload"]
        st.sidebar.caption(f"Showing your last upload, **{name}**: drop another file to replace it.")
        return upload_problem(name, size, cap) or Picked(data, name)
    items = gallery_items(base_url)
    labels = {item.key: item.label for item in items}
    current = st.session_state.get("gallery_item")
    if current not in labels:
        current = kept("gallery_item") if kept("gallery_item") in labels else items[0].key
    # set on every run: a box drawn again after an Upload detour otherwise shows its first entry while the
    # state holds another, and the next unrelated click would switch the image to what the box shows
    st.session_state["gallery_item"] = current
    if "scene_index" not in st.session_state and kept("scene_index") is not None:
        st.session_state["scene_index"] = kept("scene_index")
    last_scene = max_scene(base_url)
    st.session_state["scene_index"] = state.checked_index(st.session_state.get("scene_index", 0), last_scene + 1)
    key = st.sidebar.selectbox("Gallery", list(labels), format_func=labels.__getitem__, key="gallery_item")
    if key == SCENE_KEY:
        st.sidebar.number_input("Scene number", min_value=0, max_value=last_scene, step=1, key="scene_index")
        # one button a row: side by side in the sidebar their labels were cut ("New sce…")
        st.sidebar.button("Previous scene", on_click=previous_scene, icon=":material/arrow_back:", key="previous_scene")
        st.sidebar.button(
            "New scene", on_click=new_scene, args=(last_scene,), icon=":material/shuffle:", key="new_scene",
            help="a scene not shown yet on this page",
        )
        drawn = st.session_state.pop("_new_scene", None)
        if drawn is not None:
            st.sidebar.caption(f"New scene: **scene {drawn}**, not shown before on this page.")
    scene_index = int(st.session_state.get("scene_index", 0))
    if key == SCENE_KEY:
        st.session_state["_shown_scenes"] = sorted({*st.session_state.get("_shown_scenes", ()), scene_index})
    remembered("gallery_item", key)
    remembered("scene_index", scene_index)
    data, name = load_item(base_url, key, scene_index)
    with st.sidebar.expander("Browse the gallery", icon=":material/photo_library:"):
        cells = st.columns(GALLERY_COLUMNS)
        for position, item in enumerate(items):
            cell = cells[position % GALLERY_COLUMNS]
            cell.image(thumbnail_png(base_url, item.key, scene_index if item.key == SCENE_KEY else 0), width="stretch")
            cell.button(
                item.short,
                key=f"thumb-{item.key}",
                on_click=use_gallery_item,
                args=(item.key,),
                type="tertiary",
                help=item.label,
            )
    return Picked(data, name, load_mask(base_url, key, scene_index))
