"""Fuzzing ``/v1/maps``: random and truncated bytes, odd image modes, huge declared sizes and wrong
parameters never make the service answer 5xx, and it still answers ``/healthz`` afterwards."""

from __future__ import annotations

import struct
from datetime import timedelta

import pytest
from api_factory import build_models, image_bytes, png_declaring, wait_ready
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from api.main import create_app
from api.settings import Settings

FIELDS = ("model", "views", "seed", "preset", "size", "maps", "top_k", "order", "format", "frame_cells", "background")
MODES = [
    ("RGB", "PNG"),
    ("L", "PNG"),
    ("1", "BMP"),
    ("RGBA", "PNG"),
    ("LA", "PNG"),
    ("P", "GIF"),
    ("I;16", "PNG"),
    ("I;16", "TIFF"),
    ("F", "TIFF"),
    ("CMYK", "JPEG"),
    ("CMYK", "TIFF"),
    ("RGB", "WEBP"),
    ("YCbCr", "JPEG"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    models = build_models(tmp_path_factory.mktemp("fuzz") / "models")
    settings = Settings(
        models_dir=models["tiny"].parent,
        bundled_models_dir=models["tiny"].parent / "none",
        default_model="tiny",
        warmup_size=64,
        max_input_size=96,
        max_views=2,
        max_upload_mb=1,
    )
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def gif_declaring(width: int, height: int) -> bytes:
    return (
        b"GIF89a"
        + struct.pack("<HH", width, height)
        + b"\x00\x00\x00"
        + b"\x2c"
        + b"\x00" * 9
        + b"\x02\x02\x44\x01\x00\x3b"
    )


valid_images = st.tuples(st.sampled_from(MODES), st.integers(1, 90), st.integers(1, 90), st.integers(0, 3)).map(
    lambda t: image_bytes(t[0][0], (t[1], t[2]), t[0][1], seed=t[3])
)
images = st.one_of(
    st.binary(max_size=3000),
    valid_images,
    valid_images,
    st.tuples(st.sampled_from(MODES), st.floats(0.0, 1.0)).map(
        lambda t: (lambda data: data[: int(len(data) * t[1])])(image_bytes(t[0][0], (48, 40), t[0][1]))
    ),
    st.tuples(st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)).map(lambda wh: png_declaring(*wh)),
    st.tuples(st.integers(1, 65535), st.integers(1, 65535)).map(lambda wh: gif_declaring(*wh)),
)
VALID = {
    "model": st.sampled_from(["tiny", "tiny_m"]),
    "views": st.integers(0, 2).map(str),
    "seed": st.integers(0, 2**63 - 1).map(str),
    "preset": st.sampled_from(["byol1", "byol2", "mocov2", "cropflip"]),
    "size": st.sampled_from(["32", "48", "64", "96"]),
    "maps": st.sampled_from(["all", "top"]),
    "top_k": st.integers(1, 32).map(str),
    "order": st.sampled_from(["index", "object", "multi-object", "global"]),
    "format": st.sampled_from(["json", "json", "npz", "png"]),
    "frame_cells": st.integers(1, 64).map(str),
    "background": st.sampled_from(["white", "black"]),
}
junk = st.one_of(
    st.sampled_from(
        ["-1", "97", "31", "33", "nan", "1e9", "", "../tiny", "broken", "wrongkeys", "byol", "true", "all "]
    ),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=20),
)


@st.composite
def params(draw) -> dict[str, str]:
    """Each field omitted or valid (``size`` always given: the default 224 is over this app's limit of 96);
    half the time one of them junk, now and then an unknown field."""
    form = {field: draw(VALID[field]) for field in FIELDS if field == "size" or draw(st.booleans())}
    if draw(st.booleans()):
        form[draw(st.sampled_from(FIELDS))] = draw(junk)
    if draw(st.integers(0, 19)) == 7:
        form[draw(st.sampled_from(["colour", "image ", "SIZE"]))] = draw(junk)
    return form


@settings(
    max_examples=60, deadline=timedelta(seconds=20), suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(data=images, form=params())
def test_maps_never_answers_5xx_except_for_unloadable_files(client, data, form):
    response = client.post("/v1/maps", files={"image": ("upload", data, "application/octet-stream")}, data=form)
    event(f"status {response.status_code}")
    if form.get("model") in ("broken", "wrongkeys"):
        assert response.status_code in (413, 415, 422, 500), response.text  # 500 names the unloadable file
    else:
        assert response.status_code < 500, response.text
    if response.status_code != 200:
        body = response.json()
        assert body["error"] and body["message"]


def test_still_healthy_after_the_fuzzing(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
