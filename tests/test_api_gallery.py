"""The gallery, in the library (``lewel.data.gallery``) and served at ``/v1/gallery`` (FastAPI TestClient): the list,
every kind of item's image, the scenes' masks, thumbnails, and the 404 and 422 answers. No model is needed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from conftest import needs_stamps
from fastapi.testclient import TestClient
from PIL import Image

import lewel.data.gallery as gallery
from api.main import create_app
from api.routes.gallery import samples_dir
from api.settings import Settings
from lewel.data.gallery import MAX_SCENE, SCENE_KEY, SCENE_SIZE, THUMB_SIDE
from lewel.data.scenes import SceneGenerator

NO_MODELS = Path(__file__).parent / "fixtures" / "no-models-here"


def make_app(**overrides):
    return create_app(Settings(models_dir=None, bundled_models_dir=NO_MODELS, warmup_size=64, **overrides))


@pytest.fixture(scope="module")
def client():
    with TestClient(make_app()) as test_client:
        yield test_client


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image


def get(client: TestClient, path: str, **params):
    return client.get(f"/v1/gallery{path}", params=params)


def assert_error(response, status: int, code: str, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    for word in words:
        assert word in body["message"], (word, body["message"])
    return body


def sample_folder(folder: Path) -> Path:
    """A samples folder with a JPEG, a WebP under a non-ASCII name, and files the gallery must skip."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (200, 10, 10)).save(folder / "red_square.jpg", "JPEG")
    Image.new("RGB", (20, 50), (10, 10, 200)).save(folder / "blå fisk.webp", "WEBP")
    (folder / "notes.txt").write_text("not an image")
    (folder / "folder.png").mkdir()
    return folder


# --- the library -------------------------------------------------------------------------------------------


def test_library_items_images_and_thumbnails(tmp_path):
    folder = sample_folder(tmp_path / "samples")
    items = gallery.gallery_items(folder)
    keys = [item.key for item in items]
    assert keys[:2] == ["static:blå fisk.webp", "static:red_square.jpg"]
    assert [i.short for i in items[:2]] == ["blå fisk", "red square"] and items[1].label == "sample · red square"
    assert "skimage:coffee" in keys and (SCENE_KEY in keys) == gallery.scenes_available()
    hubble = next(i for i in items if i.key == "skimage:hubble_deep_field")
    assert hubble.short == "Hubble field" and not hubble.has_mask and not hubble.scenes
    data, name = gallery.load_item("static:red_square.jpg", 0, folder)
    assert name == "red_square.jpg" and data == (folder / name).read_bytes()
    data, name = gallery.load_item("skimage:coffee")
    assert name == "coffee.png" and decode(data).size == (600, 400)
    small = decode(gallery.thumbnail_png("skimage:coffee"))
    assert small.mode == "RGB" and small.size == (THUMB_SIDE, 64)
    assert gallery.load_mask("skimage:coffee") is None and gallery.load_instances("skimage:coffee") is None
    with pytest.raises(FileNotFoundError):
        gallery.load_item("static:../../pyproject.toml")
    with pytest.raises(FileNotFoundError):
        gallery.load_item("static:notes.txt", 0, folder)
    with pytest.raises(KeyError):
        gallery.load_item("elsewhere:x")


@needs_stamps
def test_library_scene_masks_follow_the_scene_objects():
    index = 5
    scene = SceneGenerator(size=SCENE_SIZE, seed=0, min_objects=2, max_objects=4).scene(index)
    image = decode(gallery.load_item(SCENE_KEY, index)[0])
    assert image.size == (SCENE_SIZE, SCENE_SIZE) and np.array_equal(np.asarray(image), np.asarray(scene.image))
    instances = np.asarray(decode(gallery.load_instances(SCENE_KEY, index)))
    binary = np.asarray(decode(gallery.load_mask(SCENE_KEY, index)))
    assert instances.dtype == np.uint8 and instances.shape == (SCENE_SIZE, SCENE_SIZE)
    assert set(np.unique(instances)) == set(range(len(scene.masks) + 1))
    for k, mask in enumerate(scene.masks):  # object k (paste order) is k + 1 where it is visible
        assert np.array_equal(instances == k + 1, mask)
    assert set(np.unique(binary)) == {0, 255} and np.array_equal(binary == 255, instances > 0)
    with pytest.raises(ValueError, match="scene number"):
        gallery.load_item(SCENE_KEY, MAX_SCENE + 1)


# --- the service -------------------------------------------------------------------------------------------


def test_list_offers_samples_photos_and_scenes(client):
    response = get(client, "")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["max_scene"] == MAX_SCENE == 2**31 - 1
    assert body["items"] == [
        {"key": i.key, "label": i.label, "short": i.short, "has_mask": i.has_mask, "scenes": i.scenes}
        for i in gallery.gallery_items()
    ]
    keys = [item["key"] for item in body["items"]]
    assert keys[:2] == ["static:one_object.png", "static:three_objects.png"] and "skimage:astronaut" in keys
    assert [i["key"] for i in body["items"] if i["has_mask"] or i["scenes"]] == [SCENE_KEY] * (SCENE_KEY in keys)


def test_every_item_has_its_image_and_thumbnail(client):
    for item in get(client, "").json()["items"]:
        key = item["key"]
        response = get(client, "/image", key=key)
        assert response.status_code == 200, (key, response.text)
        data, name = gallery.load_item(key)
        assert response.content == data
        assert response.headers["content-type"] == "image/png"
        assert response.headers["content-disposition"] == f'inline; filename="{name}"'
        size = decode(response.content).size
        if key == SCENE_KEY:
            assert size == (SCENE_SIZE, SCENE_SIZE)
        elif key.startswith("skimage:"):
            assert size == Image.fromarray(getattr(skimage.data, key.partition(":")[2])()).size
        thumbnail = get(client, "/thumbnail", key=key)
        assert thumbnail.headers["content-type"] == "image/png"
        small = decode(thumbnail.content)
        assert max(small.size) <= THUMB_SIDE and max(small.size) == min(THUMB_SIDE, max(size))
        if not item["has_mask"]:
            assert_error(get(client, "/mask", key=key), 404, "no_mask", key)


def test_other_sample_files_keep_their_type_and_name(tmp_path):
    app = make_app()
    folder = sample_folder(tmp_path / "samples")
    app.dependency_overrides[samples_dir] = lambda: folder
    with TestClient(app) as client:
        jpeg = get(client, "/image", key="static:red_square.jpg", scene=7)
        assert jpeg.headers["content-type"] == "image/jpeg" and decode(jpeg.content).size == (40, 30)
        assert jpeg.headers["content-disposition"] == 'inline; filename="red_square.jpg"'
        webp = get(client, "/image", key="static:blå fisk.webp")
        assert webp.headers["content-type"] == "image/webp" and decode(webp.content).size == (20, 50)
        disposition = "inline; filename=\"bl_ fisk.webp\"; filename*=UTF-8''bl%C3%A5%20fisk.webp"
        assert webp.headers["content-disposition"] == disposition
        assert decode(get(client, "/thumbnail", key="static:blå fisk.webp").content).size == (20, 50)
        for skipped in ("static:notes.txt", "static:folder.png", "static:one_object.png"):
            assert_error(get(client, "/image", key=skipped), 404, "not_found", repr(skipped))


@needs_stamps
def test_scenes_are_deterministic_and_their_masks_match(client):
    first, again, other = (get(client, "/image", key=SCENE_KEY, scene=s) for s in (3, 3, 4))
    assert first.status_code == 200 and first.content == again.content != other.content
    assert first.headers["content-disposition"] == 'inline; filename="scene_0003.png"'
    image = decode(first.content)
    binary = get(client, "/mask", key=SCENE_KEY, scene=3)
    instances = get(client, "/mask", key=SCENE_KEY, scene=3, kind="instances")
    assert binary.headers["content-type"] == instances.headers["content-type"] == "image/png"
    binary, instances = decode(binary.content), decode(instances.content)
    assert binary.size == instances.size == image.size and binary.mode == instances.mode == "L"
    labels = np.asarray(instances)
    assert np.array_equal(np.asarray(binary), (labels > 0).astype(np.uint8) * 255)
    assert 2 <= labels.max() <= 4 and set(np.unique(labels)) == set(range(labels.max() + 1))
    default = get(client, "/mask", key=SCENE_KEY).content
    assert default == get(client, "/mask", key=SCENE_KEY, scene=0, kind="binary").content != binary
    highest = get(client, "/thumbnail", key=SCENE_KEY, scene=MAX_SCENE)
    assert highest.status_code == 200 and decode(highest.content).size == (THUMB_SIDE, THUMB_SIDE)


def test_unknown_items_and_out_of_range_parameters(client):
    keys = [item["key"] for item in get(client, "").json()["items"]]
    for path in ("/image", "/mask", "/thumbnail"):
        body = assert_error(get(client, path, key="static:nope.png"), 404, "not_found", "'static:nope.png'", keys[0])
        assert body["available"] == keys
        for scene in (-1, MAX_SCENE + 1, "two"):
            body = assert_error(get(client, path, key=SCENE_KEY, scene=scene), 422, "invalid_parameters", "scene")
            assert body["details"][0]["loc"] == ["query", "scene"]
        assert_error(client.get(f"/v1/gallery{path}"), 422, "invalid_parameters", "key")
    assert_error(get(client, "/mask", key=SCENE_KEY, kind="outline"), 422, "invalid_parameters", "kind")
    long = "x" * 500
    assert len(assert_error(get(client, "/image", key=long), 404, "not_found", "500 characters")["message"]) < 800


def test_without_cut_outs_there_is_no_scene(client, monkeypatch):
    monkeypatch.setattr(gallery, "scenes_available", lambda: False)
    keys = [item["key"] for item in get(client, "").json()["items"]]
    assert SCENE_KEY not in keys and "skimage:coffee" in keys
    for path in ("/image", "/mask", "/thumbnail"):
        assert_error(get(client, path, key=SCENE_KEY), 404, "not_found", "'scene'")


def test_openapi_documents_the_bounds_and_media_types(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/gallery/image", "/v1/gallery/mask", "/v1/gallery/thumbnail"):
        operation = paths[path]["get"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert parameters["key"]["required"] is True
        assert parameters["scene"]["schema"]["minimum"] == 0 and parameters["scene"]["schema"]["maximum"] == MAX_SCENE
        assert {"404", "422"} <= set(operation["responses"]) and "401" not in operation["responses"]
        assert operation["tags"] == ["gallery"]
    media = {"image/png", "image/jpeg", "image/webp"}
    assert set(paths["/v1/gallery/image"]["get"]["responses"]["200"]["content"]) == media
    assert set(paths["/v1/gallery/mask"]["get"]["responses"]["200"]["content"]) == {"image/png"}
    assert paths["/v1/gallery/mask"]["get"]["parameters"][2]["schema"]["enum"] == ["binary", "instances"]
    assert paths["/v1/gallery"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/GalleryResponse"
    }


def test_the_token_guards_the_gallery():
    with TestClient(make_app(api_token="s3cret")) as client:
        assert_error(get(client, ""), 401, "unauthorized")
        assert_error(get(client, "/image", key="skimage:coffee"), 401, "unauthorized")
        auth = {"Authorization": "Bearer s3cret"}
        answer = client.get("/v1/gallery/thumbnail", params={"key": "skimage:coffee"}, headers=auth)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        operation = client.get("/openapi.json").json()["paths"]["/v1/gallery"]["get"]
        assert operation["security"] and "401" in operation["responses"]


def test_warm_caches_the_list_and_every_thumbnail():
    """The service prepares the gallery beside the model's warm-up (api.main's lifespan): afterwards the list
    and every thumbnail come from the cache."""
    from lewel.data import gallery

    count = gallery.warm()
    assert count == len(gallery.gallery_items())
    hits = gallery.thumbnail_png.cache_info().hits
    for item in gallery.gallery_items():
        gallery.thumbnail_png(item.key, 0, gallery.STATIC_SAMPLES)
    assert gallery.thumbnail_png.cache_info().hits == hits + count
