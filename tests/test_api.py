"""The inference service in process (FastAPI TestClient): every endpoint, every error, the settings."""

from __future__ import annotations

import io
import re
import shlex
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from api_factory import build_models, image_bytes, png_declaring, wait_ready
from fastapi.testclient import TestClient
from PIL import Image

from api.encoding import decode_array
from api.main import create_app
from api.settings import Settings
from lewel.files.images import decode_image
from lewel.inference import load_model
from lewel.maps import ORDERS, PATTERNS
from lewel.views import PRESETS, original_view, views_batch

README = Path(__file__).parent.parent / "README.md"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("api") / "models")


def settings_for(models_dir: Path | None, bundled: Path | None = None, **overrides) -> Settings:
    """Settings for a test app: no bundled demo models unless given, a 64-px warm-up."""
    empty = Path(__file__).parent / "fixtures" / "no-models-here"
    values = dict(models_dir=models_dir, bundled_models_dir=bundled or empty, warmup_size=64)
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def client(models):
    with TestClient(create_app(settings_for(models["tiny"].parent, default_model="tiny"))) as test_client:
        wait_ready(test_client)
        yield test_client


def upload(data: bytes | None = None, name: str = "image.png") -> dict:
    return {"image": (name, image_bytes() if data is None else data, "application/octet-stream")}


def post_maps(client: TestClient, data: bytes | None = None, **params):
    return client.post("/v1/maps", files=upload(data), data={k: str(v) for k, v in params.items()})


def assert_error(response, status: int, code: str, *words: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code
    for word in words:
        assert word in body["message"], (word, body["message"])
    return body


# --- health, models, docs, metrics ---------------------------------------------------------------------------


def test_health_ready_and_docs(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"] == "tiny" and ready["device"] == "cpu"
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/readyz", "/v1/models", "/v1/maps", "/v1/embeddings", "/metrics"} <= set(paths)


def test_models_lists_every_file_with_its_description_or_error(client):
    body = client.get("/v1/models").json()
    assert body["default"] == "tiny" and body["device"] == "cpu"
    models = {m["id"]: m for m in body["models"]}
    assert set(models) == {"broken", "byol", "tiny", "tiny_m", "wrongkeys"}
    assert models["tiny"]["status"] == "loaded" and models["tiny"]["default"]
    assert (models["tiny"]["method"], models["tiny"]["backbone"], models["tiny"]["d"], models["tiny"]["h"]) == (
        "lewel_b",
        "resnet18",
        32,
        4,
    )
    assert (models["tiny_m"]["method"], models["tiny_m"]["d"], models["tiny_m"]["status"]) == (
        "lewel_m",
        32,
        "available",
    )
    assert models["byol"]["has_maps"] is False and models["byol"]["h"] is None
    assert models["broken"]["status"] == "error" and "broken.pt" in models["broken"]["error"]
    assert "pathlib" in models["broken"]["error"] and "arbitrary code" in models["broken"]["error"]
    assert (
        models["wrongkeys"]["status"] == "error"
        and "not a LEWEL, MoCo or ResNet checkpoint" in models["wrongkeys"]["error"]
    )
    assert all(m["source"] == "models_dir" for m in models.values())


def test_schema_value_sets_match_the_library(client):
    parameters = client.get("/openapi.json").json()["components"]["schemas"]
    maps_form = next(
        s
        for name, s in parameters.items()
        if "maps" in name.lower() and "properties" in s and "top_k" in s["properties"]
    )
    assert set(maps_form["properties"]["preset"]["enum"]) == set(PRESETS)
    assert set(maps_form["properties"]["order"]["enum"]) == set(ORDERS) | {"measured"}  # measured: the profile's


def test_metrics_count_requests_and_model_loads(client):
    post_maps(client, size=64)
    text = client.get("/metrics").text
    assert re.search(r'lewel_requests_total\{endpoint="/v1/maps",method="POST",status="200"\} [1-9]', text)
    assert 'lewel_model_load_seconds_count{model="tiny"} 1.0' in text
    assert "lewel_request_seconds_bucket" in text and "lewel_models_loaded" in text


# --- /v1/maps ------------------------------------------------------------------------------------------------


def test_maps_json_has_views_boxes_maps_statistics_frames_and_agreement(client):
    response = post_maps(client, views=2, seed=7, preset="byol2", size=64, frame_cells=16)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {
        "id": "tiny",
        "method": "lewel_b",
        "backbone": "resnet18",
        "d": 32,
        "h": 4,
        "device": "cpu",
        "source": "models_dir",
    }
    assert body["image"] == {"width": 64, "height": 48, "format": "PNG", "mode": "RGB"}
    assert body["grid"] == [2, 2] and body["frame_grid"] == [12, 16]
    assert body["selection"]["indices"] == list(range(32))
    assert [m["group"] for m in body["maps"]] == [i // 8 for i in range(32)]
    assert [m["aligned"] for m in body["maps"]] == [i % 8 for i in range(32)]
    assert all(0 <= m["agreement"] <= 1 + 1e-6 for m in body["maps"])
    assert len(body["views"]) == 3
    view0, view2 = body["views"][0], body["views"][2]
    assert view0["box"] == [0, 0, 64, 48] and not view0["flip"] and view0["preset"] is None
    assert view2["preset"] == "byol2" and view2["seed"] is not None
    x0, y0, x1, y1 = view2["box"]
    assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 48
    maps = decode_array(view2["maps"])
    assert maps.shape == (32, 2, 2) and maps.dtype == np.float16
    np.testing.assert_allclose(maps.astype(np.float64).sum(axis=(1, 2)), 1, atol=5e-3)
    frame = decode_array(view2["frame_maps"]).astype(np.float64)
    coverage = decode_array(view2["coverage"]).astype(np.float64)
    assert frame.shape == (32, 12, 16) and coverage.shape == (12, 16)
    assert np.array_equal(np.isnan(frame[0]), coverage == 0)
    np.testing.assert_allclose(np.nansum(frame, axis=(1, 2)), 1, atol=1e-2)
    assert Image.open(io.BytesIO(__import__("base64").b64decode(view2["image_png"]))).size == (64, 64)
    stats = view2["statistics"]
    assert len(stats) == 32 and {s["pattern"] for s in stats} <= set(PATTERNS)
    assert set(stats[0]["typicality"]) == set(PATTERNS) and stats[0]["entropy"] > 0


def test_maps_equal_the_library_computation(client, models):
    data = image_bytes(seed=5)
    body = post_maps(client, data, size=64).json()
    model = load_model(models["tiny"])
    expected = model.extract(views_batch([original_view(decode_image(data), 64)])).maps[0]
    np.testing.assert_allclose(decode_array(body["views"][0]["maps"]), expected.numpy(), atol=2e-3)
    assert all(m["agreement"] is None for m in body["maps"])  # one view: nothing to agree with


def test_maps_are_reproducible_from_the_seed(client):
    first = post_maps(client, views=2, seed=3, size=64).json()
    again = post_maps(client, views=3, seed=3, size=64).json()
    other = post_maps(client, views=2, seed=4, size=64).json()
    assert [v["box"] for v in first["views"]] == [v["box"] for v in again["views"][:3]]
    assert first["views"][1]["maps"] == again["views"][1]["maps"]
    assert [v["box"] for v in first["views"][1:]] != [v["box"] for v in other["views"][1:]]


def test_maps_selection_top_per_pattern_and_orders(client):
    top = post_maps(client, views=1, maps="top", top_k=3, size=64).json()
    chosen = top["selection"]["top"]
    assert set(chosen) == set(PATTERNS) and all(len(v) <= 3 for v in chosen.values())
    assert top["selection"]["indices"] == chosen["object"] + chosen["multi-object"] + chosen["global"]
    patterns0 = {s["index"]: s["pattern"] for s in top["views"][0]["statistics"]}
    assert all(patterns0[m] == p for p, ms in chosen.items() for m in ms)
    assert decode_array(top["views"][1]["maps"]).shape[0] == len(top["selection"]["indices"])
    ordered = post_maps(client, order="global", size=64).json()
    typicality = [s["typicality"]["global"] for s in ordered["views"][0]["statistics"]]
    assert typicality == sorted(typicality, reverse=True)
    assert sorted(ordered["selection"]["indices"]) == list(range(32))


def test_maps_png_is_a_figure_5_grid(client):
    response = post_maps(client, views=2, maps="top", top_k=2, format="png", size=64)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).format == "PNG"
    shown = response.headers["x-lewel-maps"].split(",")
    assert 1 <= len(shown) <= 6


def test_maps_npz_holds_the_arrays(client):
    response = post_maps(client, views=1, format="npz", size=64, maps="top", top_k=2)
    assert response.status_code == 200
    arrays = np.load(io.BytesIO(response.content), allow_pickle=False)
    k = len(arrays["indices"])
    assert arrays["maps"].shape == (2, k, 2, 2) and arrays["frame_maps"].shape[:2] == (2, k)
    assert arrays["view_images"].shape == (2, 64, 64, 3) and arrays["boxes"].shape == (2, 4)
    assert arrays["statistics_entropy"].shape == (2, k) and arrays["agreement"].shape == (k,)
    assert "tiny" in str(arrays["meta"])


@pytest.mark.parametrize(
    ("mode", "fmt"), [("L", "PNG"), ("RGBA", "PNG"), ("P", "GIF"), ("I;16", "PNG"), ("CMYK", "JPEG"), ("LA", "PNG")]
)
def test_odd_image_modes_work(client, mode, fmt):
    response = post_maps(client, image_bytes(mode, (50, 40), fmt), size=64)
    assert response.status_code == 200, response.text
    assert response.json()["image"]["mode"] == mode


def test_exif_orientation_is_honoured(client):
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to display
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((30, 60, 3), dtype=np.uint8)).save(buffer, "JPEG", exif=exif)
    body = post_maps(client, buffer.getvalue(), size=64).json()
    assert (body["image"]["width"], body["image"]["height"]) == (30, 60)
    assert body["views"][0]["box"] == [0, 0, 30, 60]


def test_other_models_by_id(client):
    body = post_maps(client, size=64, model="tiny_m").json()
    assert body["model"]["method"] == "lewel_m" and body["model"]["id"] == "tiny_m"


# --- /v1/embeddings ------------------------------------------------------------------------------------------


def test_embeddings_json(client, models):
    data = image_bytes(seed=2)
    response = client.post("/v1/embeddings", files=upload(data), data={"size": "64", "views": "1"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["d"], body["h"], body["num_aligned"], body["feature_channels"]) == (32, 4, 8, 512)
    view0 = body["views"][0]
    assert decode_array(view0["global_embedding"]).shape == (32,)
    assert decode_array(view0["pooled_feature"]).shape == (512,)
    assert decode_array(view0["aligned_embeddings"]).shape == (8, 32)
    grouped = decode_array(view0["aligned_features"])
    assert grouped.shape == (8, 4, 128) and grouped.dtype == np.float32
    extraction = load_model(models["tiny"]).extract(views_batch([original_view(decode_image(data), 64)]))
    np.testing.assert_allclose(
        decode_array(view0["global_embedding"]), extraction.global_embedding[0].numpy(), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(grouped.reshape(8, 512), extraction.aligned_features[0].numpy(), rtol=1e-4, atol=1e-5)
    assert len(body["views"]) == 2


def test_embeddings_of_a_model_without_maps_and_as_npz(client):
    body = client.post("/v1/embeddings", files=upload(), data={"size": "64", "model": "byol"}).json()
    assert body["h"] is None and body["views"][0]["aligned_embeddings"] is None
    assert decode_array(body["views"][0]["global_embedding"]).shape == (32,)
    response = client.post("/v1/embeddings", files=upload(), data={"size": "64", "format": "npz"})
    arrays = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert arrays["aligned_features"].shape == (1, 8, 4, 128) and arrays["global_embedding"].shape == (1, 32)


# --- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"views": -1}, "views"),
        ({"views": 9}, "LEWEL_MAX_VIEWS"),
        ({"views": "two"}, "views"),
        ({"size": 16}, "size"),
        ({"size": 4096}, "LEWEL_MAX_INPUT_SIZE"),
        ({"preset": "simclr"}, "preset"),
        ({"order": "size"}, "order"),
        ({"maps": "some"}, "maps"),
        ({"format": "gif"}, "format"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 33}, "top_k"),
        ({"seed": -1}, "seed"),
        ({"frame_cells": 0}, "frame_cells"),
        ({"background": "grey"}, "background"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(client, params, field):
    assert_error(post_maps(client, **params), 422, "invalid_parameters", field)


def test_missing_upload_is_422(client):
    assert_error(client.post("/v1/maps", data={"size": "64"}), 422, "invalid_parameters", "image")


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a? not really", image_bytes()[:100], b"%!PS-Adobe-3.0 EPSF-3.0\n"],
    ids=["empty", "fake-gif", "truncated", "eps"],
)
def test_not_an_image_is_415(client, data):
    body = assert_error(post_maps(client, data), 415, "unsupported_media_type", "image")
    # a sentence about the file, not about the form field ("the upload 'image' is not …")
    assert body["message"].startswith("The file is not a usable image: ") and "'image'" not in body["message"]


def test_unknown_model_is_404_and_ids_are_not_paths(client, models):
    assert_error(post_maps(client, model="nope"), 404, "model_not_found", "nope", "tiny")
    for sneaky in ("../models/tiny", str(models["tiny"]), "models_dir:tiny.pt", "tiny.pt"):
        assert_error(post_maps(client, model=sneaky), 404, "model_not_found")


def test_broken_model_is_a_json_error_naming_the_file_and_service_keeps_serving(client):
    body = assert_error(
        post_maps(client, model="broken"), 500, "model_load_failed", "broken.pt", "refused to open", "pathlib"
    )
    assert body["file"] == "broken.pt" and body["model"] == "broken"
    assert_error(post_maps(client, model="wrongkeys"), 500, "model_load_failed", "wrongkeys.pth.tar", "conv1.weight")
    assert post_maps(client, size=64).status_code == 200


def test_model_without_maps_is_422(client):
    assert_error(post_maps(client, model="byol", size=64), 422, "model_without_maps", "byol")


def test_out_of_gpu_memory_is_503_with_retry_after(client, monkeypatch):
    loaded = client.app.state.service.registry.get("tiny")

    def exhausted(images, **options):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loaded.model, "extract", exhausted)
    response = post_maps(client, size=64)
    assert_error(response, 503, "out_of_memory", "memory")
    assert response.headers["retry-after"] == "5"


def test_unknown_routes_and_methods_are_json(client):
    assert_error(client.get("/v2/maps"), 404, "not_found", "/v2/maps")
    assert_error(client.get("/v1/maps"), 405, "method_not_allowed", "GET")


@pytest.fixture(scope="module")
def limited(models):
    settings = settings_for(models["tiny"].parent, default_model="tiny", max_upload_mb=0.05, max_pixels=100 * 100)
    with TestClient(create_app(settings)) as test_client:
        wait_ready(test_client)
        yield test_client


def test_upload_cap_is_413(limited):
    big = np.random.default_rng(0).integers(0, 255, 200_000, dtype=np.uint8).tobytes()
    assert_error(post_maps(limited, big), 413, "too_large", "limit")
    # a chunked upload (no Content-Length) is cut off as soon as it passes the cap
    boundary = "lewelboundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'.encode()

    def body():
        yield head
        for _ in range(100):
            yield b"\0" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    response = limited.post(
        "/v1/maps", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert_error(response, 413, "too_large", "limit")


def test_pixel_cap_and_bombs_are_413(limited):
    assert_error(post_maps(limited, image_bytes(size=(120, 100))), 413, "too_large", "LEWEL_MAX_PIXELS")
    assert_error(post_maps(limited, png_declaring(200_000, 200_000)), 413, "too_large")
    assert post_maps(limited, image_bytes(size=(100, 100)), size=64).status_code == 200


# --- settings: token, CORS, cache, micro-batching, folders ---------------------------------------------------


def test_token_and_cors(models, monkeypatch):
    monkeypatch.setenv("LEWEL_API_TOKEN", "s3cret")
    monkeypatch.setenv("LEWEL_CORS_ORIGINS", "http://localhost:8501, http://example.org")
    monkeypatch.setenv("LEWEL_MODELS_DIR", str(models["tiny"].parent))
    monkeypatch.setenv("LEWEL_DEFAULT_MODEL", "tiny")
    monkeypatch.setenv("LEWEL_BUNDLED_MODELS_DIR", str(models["tiny"].parent / "none"))
    monkeypatch.setenv("LEWEL_WARMUP_SIZE", "64")
    settings = Settings()
    assert settings.cors_origins == ["http://localhost:8501", "http://example.org"]
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/v1/models")
        assert_error(response, 401, "unauthorized", "Bearer")
        assert response.headers["www-authenticate"] == "Bearer"
        assert_error(client.get("/metrics"), 401, "unauthorized")
        assert_error(client.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        assert_error(post_maps(client), 401, "unauthorized")
        good = {"Authorization": "Bearer s3cret"}
        assert client.get("/v1/models", headers=good).status_code == 200
        assert client.post("/v1/maps", files=upload(), data={"size": "64"}, headers=good).status_code == 200
        preflight = client.options(
            "/v1/maps", headers={"Origin": "http://localhost:8501", "Access-Control-Request-Method": "POST"}
        )
        assert preflight.headers["access-control-allow-origin"] == "http://localhost:8501"
        refused = client.get("/v1/models", headers={"Origin": "http://example.org"})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "http://example.org"


def test_cors_is_off_by_default(client):
    response = client.get("/healthz", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers


def test_cache_is_bounded(models):
    with TestClient(create_app(settings_for(models["tiny"].parent, default_model="tiny", cache_size=1))) as client:
        wait_ready(client)
        assert post_maps(client, size=64, model="tiny_m").status_code == 200
        registry = client.app.state.service.registry
        assert registry.loaded_ids() == ["tiny_m"]
        statuses = {m["id"]: m["status"] for m in client.get("/v1/models").json()["models"]}
        assert statuses["tiny"] == "available" and statuses["tiny_m"] == "loaded"


def test_micro_batching_gathers_concurrent_requests_with_the_same_results(client, models):
    settings = settings_for(models["tiny"].parent, default_model="tiny", microbatch=True, microbatch_wait_ms=300)
    images = [image_bytes(seed=s) for s in range(4)]
    expected = [post_maps(client, data, size=64).json()["views"][0]["maps"] for data in images]
    with TestClient(create_app(settings)) as batched:
        wait_ready(batched)
        results: dict[int, dict] = {}

        def work(i: int) -> None:
            results[i] = post_maps(batched, images[i], size=64).json()

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for i in range(4):
            np.testing.assert_allclose(
                decode_array(results[i]["views"][0]["maps"]).astype(np.float32),
                decode_array(expected[i]).astype(np.float32),
                atol=2e-3,
            )
        text = batched.get("/metrics").text
        calls = float(re.search(r"^lewel_batch_images_count (\S+)", text, re.M).group(1))
        images_run = float(re.search(r"^lewel_batch_images_sum (\S+)", text, re.M).group(1))
        assert images_run == 5 and calls < images_run  # the warm-up image plus four requests in fewer calls


def test_no_model_anywhere_is_alive_but_not_ready_until_one_arrives(tmp_path, models):
    folder = tmp_path / "empty"
    folder.mkdir()
    with TestClient(create_app(settings_for(folder, bundled=tmp_path / "bundled"))) as client:
        assert client.get("/healthz").status_code == 200
        client.app.state.service.readiness.wait(30)
        body = assert_error(client.get("/readyz"), 503, "not_ready", "no model found: looked in bundled; models_dir")
        assert str(tmp_path) not in body["message"]  # the folders by label; their paths only with LEWEL_EXPOSE_PATHS
        assert client.get("/v1/models").json()["models"] == []
        assert_error(post_maps(client), 404, "model_not_found")
        shutil.copy(models["tiny"], folder / "dropped.pt")
        assert wait_ready(client)["model"] == "dropped"


def test_default_passes_over_broken_files_and_duplicates_and_links_are_clear(tmp_path, models):
    bundled, user, outside = tmp_path / "bundled", tmp_path / "user", tmp_path / "outside"
    for folder in (bundled, user, outside):
        folder.mkdir()
    shutil.copy(models["broken"], bundled / "aaa.pt")
    shutil.copy(models["tiny"], bundled / "tiny.pt")
    shutil.copy(models["tiny"], user / "tiny.pth.tar")
    shutil.copy(models["tiny"], outside / "secret.pt")
    (user / "link.pt").symlink_to(outside / "secret.pt")
    (user / "notes.txt").write_text("not a checkpoint")
    with TestClient(create_app(settings_for(user, bundled=bundled))) as client:
        ready = wait_ready(client)
        assert ready["model"] == "bundled:tiny.pt"  # aaa.pt comes first but does not load
        models_listed = {m["id"]: m for m in client.get("/v1/models").json()["models"]}
        assert set(models_listed) == {"aaa", "bundled:tiny.pt", "models_dir:tiny.pth.tar", "link"}
        assert models_listed["link"]["status"] == "error" and "outside" in models_listed["link"]["error"]
        assert_error(post_maps(client, model="link"), 403, "model_refused", "outside")
        assert post_maps(client, size=64, model="models_dir:tiny.pth.tar").status_code == 200


# --- the README's examples -----------------------------------------------------------------------------------


def readme_curl_commands() -> list[list[str]]:
    text = README.read_text()
    section = text[text.index("## API") :]
    section = section[: section.index("\n## ", 4)]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("curl "):
                commands.append(shlex.split(line))
    return commands


def test_readme_curl_examples_work(client, monkeypatch):
    commands = readme_curl_commands()
    assert len(commands) >= 5
    seen = set()
    for argv in commands:
        files, data, headers, url = {}, {}, {}, None
        args = iter(argv[1:])
        for arg in args:
            if arg == "-F":
                key, value = next(args).split("=", 1)
                if value.startswith("@"):
                    files[key] = (value[1:], image_bytes(size=(80, 60)), "image/jpeg")
                else:
                    data[key] = value
            elif arg == "-H":
                name, value = next(args).split(":", 1)
                headers[name] = value.strip()
            elif arg in ("-o", "-X"):
                next(args)
            elif arg.startswith("http"):
                url = arg
        assert url and url.startswith("http://127.0.0.1:8000/"), argv
        path = url.removeprefix("http://127.0.0.1:8000")
        headers.pop("Authorization", None)  # the shared test app has no token
        data.setdefault("size", "64")  # keep the test fast; the README leaves the default 224
        if files:
            response = client.post(path, files=files, data=data, headers=headers)
        else:
            response = client.get(path, headers=headers)
        assert response.status_code == 200, (argv, response.text)
        seen.add((path, data.get("format", "json") if files else "get"))
    assert {("/v1/maps", "json"), ("/v1/maps", "png"), ("/v1/maps", "npz"), ("/v1/embeddings", "json")} <= seen
