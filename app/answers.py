"""The service's answers the page asks for, cached per image, settings and model description, so that a
rerun (a tab switch, a colour change) asks nothing again."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import streamlit as st

from app.client import ApiClient, EmbeddingsResult, MapsResult, ViewParams

CACHE_SECONDS = 600  #: answers are reused for the same image, settings and model description this long
#: the fields of a /v1/models entry that change the maps' answer (status does not: it turns "loaded" on first use)
MODEL_KEY_FIELDS = ("file", "method", "backbone", "d", "h", "has_maps", "profile", "profile_error")


def client() -> ApiClient:
    return ApiClient()


def model_key(info: dict[str, Any]) -> str:
    """A digest of what ``/v1/models`` says about a model that its maps' answer depends on (its profile
    above all): a sidecar written by ``lewel profile`` changes the key, so the page asks again at once."""
    described = {name: info.get(name) for name in MODEL_KEY_FIELDS}
    return hashlib.blake2b(json.dumps(described, sort_keys=True, default=str).encode(), digest_size=12).hexdigest()


@st.cache_data(max_entries=16, ttl=CACHE_SECONDS, show_spinner=False)
def fetch_maps(
    base_url: str,
    image: bytes,
    name: str,
    model: str,
    params: ViewParams,
    mask: bytes | None = None,
    described: str = "",
) -> MapsResult:
    """The service's maps, cached per image, settings and ``described`` (``model_key``)."""
    return ApiClient(base_url).maps(image, name, model, params, mask)


@st.cache_data(max_entries=16, ttl=CACHE_SECONDS, show_spinner=False)
def fetch_embeddings(base_url: str, image: bytes, name: str, model: str, params: ViewParams) -> EmbeddingsResult:
    return ApiClient(base_url).embeddings(image, name, model, params)
