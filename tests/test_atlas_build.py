"""On-demand atlases: ``lewel.drawing.atlas_folder.make_atlas`` (a folder that appears whole or not at all) and
``POST`` / ``GET /v1/atlas/{model}/build`` (one background build at a time, its progress, its errors)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from api_factory import build_models
from fastapi.testclient import TestClient

import api.atlas_builds
from api.main import create_app
from api.settings import Settings
from lewel.data.scenes import STAMPS_DIR
from lewel.drawing.atlas_folder import MAKE_STAGES, make_atlas
from lewel.maps.atlas import ATLAS_NAME

pytestmark = pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="generated scenes need tuxpaint-stamps-default")
EMPTY = Path(__file__).parent / "fixtures" / "no-models-here"
SCENES, SIZE = 5, 64


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("atlas_build") / "models")


def settings_for(models: dict[str, Path], **changes) -> Settings:
    return Settings(
        models_dir=models["tiny"].parent, bundled_models_dir=EMPTY, default_model="tiny", warmup_size=64,
        torch_threads=1, **changes,
    )


def wait_done(client: TestClient, model: str, seconds: float = 60) -> list[dict]:
    """Poll the build's status until it is no longer running; every status seen."""
    seen, deadline = [], time.monotonic() + seconds
    while True:
        seen.append(client.get(f"/v1/atlas/{model}/build").json())
        if seen[-1]["status"] != "running":
            return seen
        assert time.monotonic() < deadline, seen[-1]
        time.sleep(0.05)


def test_make_atlas_replaces_an_atlas_whole_or_not_at_all(models, tmp_path):
    dest = tmp_path / "atlases" / "tiny"
    stages: list[str] = []
    atlas = make_atlas(models["tiny"], f"scenes:{SCENES}", dest, size=SIZE, top=2, thumb_size=32,
                       progress=lambda stage, done, total: stages.append(stage))
    assert [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s] == list(MAKE_STAGES)
    assert atlas["images"] == SCENES and atlas["has_masks"] and atlas["extraction"] is None
    assert json.loads((dest / ATLAS_NAME).read_text()) == atlas
    before = (dest / ATLAS_NAME).read_bytes()

    def fail(stage: str, done: int, total: int) -> None:
        if stage == "thumbnails":
            raise RuntimeError("stopped on purpose")

    with pytest.raises(RuntimeError, match="on purpose"):
        make_atlas(models["tiny"], "scenes:3", dest, size=SIZE, top=2, thumb_size=32, progress=fail)
    assert (dest / ATLAS_NAME).read_bytes() == before  # the old atlas, untouched
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tiny"]  # no half-built folder left over


def test_build_endpoint_starts_reports_and_serves_the_atlas(models, tmp_path):
    with TestClient(create_app(settings_for(models, atlas_build_dir=tmp_path / "built"))) as client:
        idle = client.get("/v1/atlas/tiny/build").json()
        assert idle["status"] == "idle" and not idle["atlas"] and idle["max_scenes"] == 1000
        assert client.get("/v1/atlas/tiny").status_code == 404
        started = client.post("/v1/atlas/tiny/build", data={"scenes": str(SCENES), "size": str(SIZE)})
        assert started.status_code == 200 and started.json()["status"] == "running", started.json()
        assert started.json()["scenes"] == SCENES and started.json()["size"] == SIZE
        again = client.post("/v1/atlas/tiny/build", data={"scenes": "999"})  # the same model: its status
        assert again.status_code == 200 and again.json()["scenes"] == SCENES
        other = client.post("/v1/atlas/tiny_m/build", data={"scenes": "2", "size": "64"})
        assert other.status_code == 409 and other.json()["error"] == "build_running" and "'tiny'" in other.json()["message"]
        seen = wait_done(client, "tiny")
        fractions = [s["fraction"] for s in seen]
        assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)
        done = seen[-1]
        assert done["status"] == "done" and done["atlas"] and done["fraction"] == 1.0, done
        assert f"{SCENES} scenes" in done["message"] and done["seconds"] > 0
        atlas = client.get("/v1/atlas/tiny")
        assert atlas.status_code == 200 and atlas.json()["images"] == SCENES and len(atlas.json()["maps"]) == 32
        record = client.get("/v1/atlas/tiny/maps/3").json()["map"]
        assert record["auroc"] is not None and record["auroc_views"] > 0
        thumbnail = client.get(f"/v1/atlas/tiny/{record['top']['peak_ratio'][0]['thumbnail']}")
        assert thumbnail.status_code == 200 and thumbnail.content[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / "built" / "tiny" / ATLAS_NAME).is_file()
        assert client.get("/v1/atlas/tiny_m/build").json()["status"] == "idle"  # a build is per model


@pytest.mark.parametrize(
    ("url", "form", "status", "code", "words"),
    [
        ("/v1/atlas/nope/build", {}, 404, "model_not_found", ["nope", "available"]),
        ("/v1/atlas/byol/build", {}, 422, "model_without_maps", ["no maps"]),
        ("/v1/atlas/broken/build", {}, 500, "model_load_failed", ["broken"]),
        ("/v1/atlas/tiny/build", {"scenes": "11"}, 422, "invalid_parameters", ["LEWEL_ATLAS_MAX_SCENES", "10"]),
        ("/v1/atlas/tiny/build", {"size": "1024"}, 422, "invalid_parameters", ["LEWEL_MAX_INPUT_SIZE"]),
        ("/v1/atlas/tiny/build", {"scenes": "0"}, 422, "invalid_parameters", ["scenes"]),
        ("/v1/atlas/tiny/build", {"scenes": "many"}, 422, "invalid_parameters", ["scenes"]),
        ("/v1/atlas/tiny/build", {"scenes": ""}, 422, "invalid_parameters", ["empty"]),
        ("/v1/atlas/tiny/build", {"views": "2"}, 422, "invalid_parameters", ["views"]),
    ],
)
def test_build_refusals(models, tmp_path, url, form, status, code, words):
    with TestClient(create_app(settings_for(models, atlas_build_dir=tmp_path, atlas_max_scenes=10))) as client:
        answer = client.post(url, data=form)
        assert answer.status_code == status and answer.json()["error"] == code, answer.json()
        assert all(word in answer.json()["message"] for word in words), answer.json()
        assert client.get("/v1/atlas/tiny/build").json()["status"] == "idle"  # nothing was started


def test_build_status_json_body_token_and_openapi(models, tmp_path):
    with TestClient(create_app(settings_for(models, atlas_build_dir=tmp_path, api_token="s3cret"))) as client:
        auth = {"Authorization": "Bearer s3cret"}
        assert client.get("/v1/atlas/tiny/build").status_code == 401
        assert client.post("/v1/atlas/tiny/build").status_code == 401
        assert client.get("/v1/atlas/nope/build", headers=auth).status_code == 404
        answer = client.post("/v1/atlas/tiny/build", json={"scenes": 3}, headers=auth)
        assert answer.status_code == 415 and "form fields" in answer.json()["message"]
        operation = client.get("/openapi.json", headers=auth).json()["paths"]["/v1/atlas/{model}/build"]
        assert {"409", "415", "422"} <= set(operation["post"]["responses"]) and "413" not in operation["post"]["responses"]
        assert operation["post"]["requestBody"]["required"] is False
        assert client.get("/v1/atlas/tiny/build", headers=auth).json()["status"] == "idle"


def test_a_failing_build_is_its_status_and_the_service_keeps_serving(models, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(api.atlas_builds, "make_atlas", broken)
    with TestClient(create_app(settings_for(models))) as client:
        assert client.post("/v1/atlas/tiny/build", data={"scenes": "2"}).status_code == 200
        failed = wait_done(client, "tiny")[-1]
        assert failed["status"] == "error" and "OSError: disk on fire" in failed["message"] and not failed["atlas"]
        assert client.get("/v1/models").status_code == 200
        missing = client.get("/v1/atlas/tiny")
        assert missing.status_code == 404 and "POST /v1/atlas/tiny/build" in missing.json()["message"]
        temporary = client.app.state.service.atlas_builds.root
        assert temporary is not None and temporary.name.startswith("lewel-atlases-")
    assert not temporary.exists()  # the temporary folder goes with the service
