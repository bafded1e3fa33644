"""The service with map profiles: /v1/models summaries, roles and AUROC per map, measured selections, and
per-image AUROC from an uploaded mask (good and bad masks)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from api_factory import build_models, image_bytes, wait_ready
from fastapi.testclient import TestClient
from PIL import Image
from test_api import assert_error, settings_for

from api.encoding import decode_array
from api.main import create_app
from lewel.data.scenes import STAMPS_DIR
from lewel.images import decode_image
from lewel.inference import load_model
from lewel.maps import map_auroc, object_coverage
from lewel.profiles import build_profile, profile_indices, sidecar_path, write_profile
from lewel.views import original_view, views_batch

pytestmark = pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="the profile's scenes need tuxpaint-stamps-default")
SIZE = (64, 48)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    paths = build_models(tmp_path_factory.mktemp("api_profiles") / "models")
    profile = build_profile(paths["tiny"], data="scenes:6", size=128, batch_size=6, control_seeds=1)
    write_profile(profile, sidecar_path(paths["tiny"]))
    stale = dict(profile, checkpoint={"file": "byol.pth", "sha256": "0" * 64})
    sidecar_path(paths["byol"]).write_text(json.dumps(stale))
    return paths, profile


@pytest.fixture(scope="module")
def client(models):
    paths, _ = models
    with TestClient(create_app(settings_for(paths["tiny"].parent, default_model="tiny"))) as test_client:
        wait_ready(test_client)
        yield test_client


def mask_bytes(mask: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, fmt)
    return buffer.getvalue()


def left_half(size: tuple[int, int] = SIZE, value: int = 255) -> np.ndarray:
    width, height = size
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[:, : width // 2] = value
    return mask


def post(client, mask: bytes | None = None, **params):
    files = {"image": ("image.png", image_bytes(size=SIZE, seed=2), "image/png")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return client.post("/v1/maps", files=files, data={k: str(v) for k, v in params.items()})


def test_models_carry_their_profile_summary_or_null(client, models):
    _, profile = models
    listed = {m["id"]: m for m in client.get("/v1/models").json()["models"]}
    summary = listed["tiny"]["profile"]
    assert summary["object_maps"] == profile["summary"]["object_maps"]
    assert summary["verdict"] == profile["summary"]["verdict"]
    assert summary["random_control"] == profile["summary"]["random_control"] and len(summary["difference"]["ci95"]) == 2
    assert summary["controls"]["count"] == 3 and summary["controls"]["schemes"] == ["torchvision", "pytorch", "trunc_normal"]
    assert summary["size"] == 128 and summary["grid"] == [4, 4] and "held-out" in summary["data"]
    assert listed["tiny_m"]["profile"] is None and listed["tiny_m"]["profile_error"] is None
    assert listed["byol"]["profile"] is None and "sha256 differs" in listed["byol"]["profile_error"]


def test_maps_carry_role_and_profile_auroc(client, models):
    _, profile = models
    body = post(client, size=64).json()
    roles = {m["index"]: m for m in body["maps"]}
    for record in profile["maps"]:
        assert roles[record["index"]]["role"] == record["role"]
        assert roles[record["index"]]["auroc_heldout"] == pytest.approx(record["auroc_heldout"])
    assert body["profile"]["object_maps"] == profile["summary"]["object_maps"]
    assert body["mask"] is False and body["views"][0]["mask"] is None
    assert body["views"][0]["statistics"][0]["auroc"] is None
    plain = post(client, size=64, model="tiny_m").json()
    assert plain["profile"] is None and all(m["role"] is None for m in plain["maps"])


def test_measured_selections_follow_the_profile(client, models):
    _, profile = models
    objects = post(client, size=64, maps="object").json()
    assert objects["selection"]["indices"] == profile_indices(profile, "object")
    assert {m["role"] for m in objects["maps"]} == {"object"}
    heldout = [m["auroc_heldout"] for m in objects["maps"]]
    assert heldout == sorted(heldout, reverse=True)
    background = post(client, size=64, maps="background").json()
    assert {m["role"] for m in background["maps"]} == {"background"}
    measured = post(client, size=64, order="measured").json()
    assert measured["selection"]["indices"][: len(heldout)] == objects["selection"]["indices"]
    assert sorted(measured["selection"]["indices"]) == list(range(32))
    assert_error(post(client, size=64, model="tiny_m", maps="object"), 422, "no_profile", "lewel profile", "tiny_m")


def test_a_mask_adds_this_images_auroc_and_pointing(client, models):
    paths, _ = models
    mask = left_half()
    body = post(client, mask_bytes(mask), size=64, views=2, seed=1).json()
    assert body["mask"] is True
    view0 = body["views"][0]
    assert view0["mask"]["object_share"] == pytest.approx(0.5) and view0["mask"]["scored"]
    model = load_model(paths["tiny"])
    maps = model.extract(views_batch([original_view(decode_image(image_bytes(size=SIZE, seed=2)), 64)])).maps
    expected = map_auroc(maps, object_coverage(torch.from_numpy(mask > 0), (2, 2))[None])[0]
    got = [s["auroc"] for s in view0["statistics"]]
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)
    assert all(isinstance(s["pointing_hit"], bool) for s in body["views"][2]["statistics"])
    npz = post(client, mask_bytes(mask), size=64, views=1, format="npz")
    arrays = np.load(io.BytesIO(npz.content), allow_pickle=False)
    assert arrays["mask_auroc"].shape == (2, 32) and arrays["roles"].shape == (32,)
    np.testing.assert_allclose(arrays["mask_auroc"][0], expected.numpy(), atol=1e-6)
    assert set(arrays["roles"]) == {"object", "background", "mixed"}


def test_masks_of_another_size_and_zero_one_masks_work(client):
    small = left_half((32, 24))
    assert post(client, mask_bytes(small), size=64).json()["views"][0]["mask"]["object_share"] == pytest.approx(0.5)
    ones = left_half(value=1)
    assert post(client, mask_bytes(ones), size=64).json()["views"][0]["mask"]["object_share"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("mask", "words"),
    [
        (mask_bytes(np.zeros((48, 64), np.uint8)), ("no object pixels",)),
        (mask_bytes(np.full((48, 64), 255, np.uint8)), ("no background pixels",)),
        (mask_bytes(left_half((64, 64))), ("64×64", "64×48", "aspect ratio")),
        (mask_bytes((np.arange(48 * 64).reshape(48, 64) % 200 + 20).astype(np.uint8)), ("not binary",)),
        (b"not an image at all", ("mask", "not an image")),
        (b"", ("mask", "empty")),
    ],
)
def test_bad_masks_are_422_naming_the_problem(client, mask, words):
    assert_error(post(client, mask, size=64), 422, "invalid_mask", "'mask'", *words)
    assert post(client, size=64).status_code == 200  # and the service keeps serving


@pytest.mark.parametrize(("fmt", "magic", "media"), [("png", b"\x89PNG", "image/png"), ("pdf", b"%PDF-", "application/pdf"), ("svg", b"<?xml", "image/svg+xml")])
def test_figures_as_png_pdf_svg_with_the_profile_in_the_titles(client, fmt, magic, media):
    response = post(client, size=64, views=1, maps="object", format=fmt, cmap="viridis", scale="peak", dpi=72)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media) and response.content.startswith(magic)
    assert response.headers["content-disposition"] == f'inline; filename="figure5.{fmt}"'
    if fmt == "svg":
        text = response.content.decode()
        assert "AUROC" in text and "object" in text and "random network" in text  # titles are text in SVG


def test_png_resolution_follows_dpi(client):
    small = Image.open(io.BytesIO(post(client, size=64, maps="object", format="png", dpi=60).content))
    large = Image.open(io.BytesIO(post(client, size=64, maps="object", format="png", dpi=120).content))
    assert large.width == pytest.approx(2 * small.width, rel=0.05)


@pytest.mark.parametrize(("field", "value"), [("cmap", "rainbowz"), ("scale", "log"), ("dpi", "5000"), ("format", "gif")])
def test_bad_figure_parameters_are_422(client, field, value):
    response = post(client, size=64, **{field: value})
    assert response.status_code == 422 and field in response.text
