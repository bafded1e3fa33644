"""Profile builds from the service: ``POST`` / ``GET /v1/models/{model}/profile`` (``api.profile_builds``): one
background build at a time, its progress, its refusals and errors, the profile written whole beside the checkpoint
(or in ``LEWEL_PROFILE_DIR`` where that folder is not writable) and listed by ``/v1/models`` at once; a build that
fails, is stopped or whose service is killed leaves the previous profile byte for byte and no partial file."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import httpx2
import pytest
from api_factory import build_models
from fastapi.testclient import TestClient
from servers import start_service, stop, wait_until_ready

import api.profile_builds
import api.profile_files
from api.main import create_app
from api.profile_files import profile_file, service_copy
from api.settings import Settings
from lewel.data.scenes import STAMPS_DIR
from lewel.maps.profiles import build_profile, sidecar_path, write_profile

pytestmark = pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="generated scenes need tuxpaint-stamps-default")
EMPTY = Path(__file__).parent / "fixtures" / "no-models-here"
IMAGES, SIZE = 6, 128  #: 4×4 maps on the tiny ResNet-18: a build of a few seconds against one control
BODY = {"images": IMAGES, "size": SIZE}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("profile_builds") / "models")


@pytest.fixture
def models(built, tmp_path) -> dict[str, Path]:
    """A fresh copy of the models folder per test: builds write profiles into it."""
    folder = tmp_path / "models"
    shutil.copytree(built["tiny"].parent, folder)
    return {name: folder / path.name for name, path in built.items()}


def settings_for(models: dict[str, Path], **changes) -> Settings:
    return Settings(
        models_dir=models["tiny"].parent, bundled_models_dir=EMPTY, default_model="tiny", warmup_size=64,
        torch_threads=1, profile_control_seeds=1, profile_control_schemes="pytorch", **changes,
    )


def wait_done(client: TestClient, model: str, seconds: float = 90) -> list[dict]:
    """Poll the build's status until it is no longer running; every status seen."""
    seen, deadline = [], time.monotonic() + seconds
    while True:
        seen.append(client.get(f"/v1/models/{model}/profile").json())
        if seen[-1]["status"] != "running":
            return seen
        assert time.monotonic() < deadline, seen[-1]
        time.sleep(0.05)


def listed_profile(client: TestClient, model: str) -> dict | None:
    return {m["id"]: m for m in client.get("/v1/models").json()["models"]}[model]["profile"]


class Gate:
    """A ``Runner`` that holds a build at its first progress report until ``release`` (or forever)."""

    def __init__(self) -> None:
        self.reached, self.opened = threading.Event(), threading.Event()

    def release(self) -> None:
        self.opened.set()

    def __call__(self, function, *args, progress, **kwargs):
        def held(stage: str, done: int, total: int) -> None:
            progress(stage, done, total)
            if stage == "scoring":
                self.reached.set()
                while not self.opened.wait(0.05):
                    progress(stage, done, total)  # a cancelled build stops here

        return function(*args, progress=held, **kwargs)


def old_profile(models: dict[str, Path]) -> bytes:
    """Give ``tiny`` a profile sidecar (measured at 128 px on 6 scenes) and return its bytes."""
    sidecar = sidecar_path(models["tiny"])
    write_profile(build_profile(models["tiny"], data="scenes:6", size=SIZE, control_seeds=1, control_schemes=["pytorch"]), sidecar)
    return sidecar.read_bytes()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


def test_a_build_reports_its_progress_and_its_profile_is_listed_at_once(models):
    gate = Gate()
    with TestClient(create_app(settings_for(models))) as client:
        client.app.state.service.profile_builds.runner = gate
        idle = client.get("/v1/models/tiny/profile").json()
        assert idle["status"] == "idle" and idle["profile"] is None and "POST" in idle["message"], idle
        assert listed_profile(client, "tiny") is None  # the registry's answer before the build
        started = client.post("/v1/models/tiny/profile", json=BODY)
        assert started.status_code == 202 and started.json()["status"] == "running", started.json()
        assert started.json()["images"] == IMAGES and started.json()["size"] == SIZE and started.json()["controls"] == 1
        assert gate.reached.wait(60)
        for model in ("tiny", "tiny_m"):  # a second build, of this model or another, waits for this one
            again = client.post(f"/v1/models/{model}/profile", json=BODY)
            assert again.status_code == 409 and again.json()["error"] == "build_running", again.json()
            assert again.json()["build"]["model"] == "tiny" and again.json()["build"]["status"] == "running"
            assert again.json()["build"]["stage"] == "scoring" and "'tiny'" in again.json()["message"]
        assert client.get("/v1/models/tiny_m/profile").json()["status"] == "idle"
        gate.release()
        seen = wait_done(client, "tiny")
        fractions = [s["fraction"] for s in seen]
        assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)
        done = seen[-1]
        assert done["status"] == "done" and done["fraction"] == 1.0 and done["error"] is None, done
        assert done["written"] == "checkpoint_folder" and done["file"] is None and done["seconds"] > 0
        assert done["profile"]["size"] == SIZE and done["profile"]["verdict"] in done["message"]
        assert sidecar_path(models["tiny"]).is_file() and leftovers(models["tiny"].parent) == []
        listed = listed_profile(client, "tiny")  # no stale "no map profile" answer
        assert listed is not None and listed["size"] == SIZE and listed["controls"]["count"] == 1
        maps = client.post("/v1/maps", files={"image": ("x.png", _png(), "image/png")}, data={"model": "tiny", "size": "64", "views": "0", "maps": "object"})
        assert maps.status_code == 200, maps.text  # measured selections work at once


def _png() -> bytes:
    from api_factory import image_bytes

    return image_bytes(size=(64, 64))


@pytest.mark.parametrize(
    ("url", "body", "status", "code", "words"),
    [
        ("/v1/models/nope/profile", {}, 404, "model_not_found", ["nope", "available"]),
        ("/v1/models/byol/profile", {}, 422, "model_without_maps", ["no maps"]),
        ("/v1/models/broken/profile", {}, 500, "model_load_failed", ["broken"]),
        ("/v1/models/tiny/profile", {"images": 11}, 422, "invalid_parameters", ["LEWEL_PROFILE_MAX_IMAGES", "10"]),
        ("/v1/models/tiny/profile", {"size": 1024}, 422, "invalid_parameters", ["LEWEL_MAX_INPUT_SIZE"]),
        ("/v1/models/tiny/profile", {"size": 16}, 422, "invalid_parameters", ["size"]),
        ("/v1/models/tiny/profile", {"images": 0}, 422, "invalid_parameters", ["images"]),
        ("/v1/models/tiny/profile", {"images": "many"}, 422, "invalid_parameters", ["images"]),
        ("/v1/models/tiny/profile", {"data": "/etc"}, 422, "invalid_parameters", ["data", "scenes"]),
        ("/v1/models/tiny/profile", {"data": "coco:/x.json"}, 422, "invalid_parameters", ["data"]),
        ("/v1/models/tiny/profile", {"views": 2}, 422, "invalid_parameters", ["views"]),
        ("/v1/models/tiny/profile", [1], 422, "invalid_parameters", ["dictionary or object"]),
    ],
)
def test_refusals_name_the_problem_and_start_nothing(models, url, body, status, code, words):
    with TestClient(create_app(settings_for(models, profile_max_images=10))) as client:
        answer = client.post(url, json=body)
        assert answer.status_code == status and answer.json()["error"] == code, answer.json()
        assert all(word in answer.json()["message"] for word in words), answer.json()
        assert client.get("/v1/models/tiny/profile").json()["status"] == "idle"  # nothing was started


def test_token_body_type_and_openapi(models):
    with TestClient(create_app(settings_for(models, api_token="s3cret"))) as client:
        auth = {"Authorization": "Bearer s3cret"}
        assert client.get("/v1/models/tiny/profile").status_code == 401
        assert client.post("/v1/models/tiny/profile", json=BODY).status_code == 401
        assert client.get("/v1/models/nope/profile", headers=auth).status_code == 404
        form = client.post("/v1/models/tiny/profile", data={"images": "3"}, headers=auth)
        assert form.status_code == 415 and "JSON" in form.json()["message"], form.json()
        operation = client.get("/openapi.json", headers=auth).json()["paths"]["/v1/models/{model}/profile"]
        assert {"202", "409", "415", "422"} <= set(operation["post"]["responses"]), operation["post"]["responses"]
        assert "get" in operation and client.get("/v1/models/tiny/profile", headers=auth).json()["status"] == "idle"


def test_a_failing_build_is_its_status_and_the_old_profile_stays(models, monkeypatch):
    before = old_profile(models)

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(api.profile_builds, "build_profile", broken)
    with TestClient(create_app(settings_for(models))) as client:
        assert client.post("/v1/models/tiny/profile", json=BODY).status_code == 202
        failed = wait_done(client, "tiny")[-1]
        assert failed["status"] == "failed" and "OSError: disk on fire" in failed["error"], failed
        assert failed["profile"] is not None  # the old profile is still the model's
        assert client.get("/v1/models").status_code == 200
    assert sidecar_path(models["tiny"]).read_bytes() == before and leftovers(models["tiny"].parent) == []


def test_a_build_stopped_midway_leaves_the_old_profile_byte_for_byte(models):
    before = old_profile(models)
    gate = Gate()
    with TestClient(create_app(settings_for(models))) as client:
        builds = client.app.state.service.profile_builds
        builds.runner = gate
        assert client.post("/v1/models/tiny/profile", json={"images": IMAGES, "size": 160}).status_code == 202
        assert gate.reached.wait(60)
        builds.close()  # what the service does when it stops: the build's next progress report raises
        stopped = client.get("/v1/models/tiny/profile").json()
        assert stopped["status"] == "failed" and "stopped" in stopped["error"], stopped
        assert stopped["profile"]["size"] == SIZE
    assert sidecar_path(models["tiny"]).read_bytes() == before and leftovers(models["tiny"].parent) == []


def test_a_killed_service_leaves_the_old_profile_and_no_partial_file(models, monkeypatch):
    before = old_profile(models)
    for name, value in {"LEWEL_PROFILE_CONTROL_SEEDS": "3", "LEWEL_PROFILE_CONTROL_SCHEMES": "pytorch"}.items():
        monkeypatch.setenv(name, value)
    server, base = start_service(models["tiny"].parent, "tiny")
    try:
        with httpx2.Client(base_url=base, timeout=30) as client:
            wait_until_ready(server, client, seconds=90)
            assert client.post("/v1/models/tiny/profile", json={"images": 16, "size": SIZE}).status_code == 202
            deadline = time.monotonic() + 90
            while (status := client.get("/v1/models/tiny/profile").json())["done"] == 0 or status["stage"] != "scoring":
                assert status["status"] == "running" and time.monotonic() < deadline, status
                time.sleep(0.02)
            server.send_signal(signal.SIGKILL)
            server.wait(30)
    finally:
        if server.poll() is None:
            stop(server)
    assert status["fraction"] < 0.9, status  # killed midway through the passes
    assert sidecar_path(models["tiny"]).read_bytes() == before and leftovers(models["tiny"].parent) == []


def refuse_models_folder(monkeypatch, folder: Path) -> None:
    """Make writing into ``folder`` fail as on a read-only mount (the tests run as root, whom chmod does not stop)."""
    real = api.profile_files.write_profile

    def write(profile, path):
        if Path(path).parent == folder:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(profile, path)

    monkeypatch.setattr(api.profile_files, "write_profile", write)


def test_a_read_only_models_folder_writes_to_the_profile_dir_and_the_registry_reads_it(models, tmp_path, monkeypatch):
    refuse_models_folder(monkeypatch, models["tiny"].parent)
    with TestClient(create_app(settings_for(models))) as client:  # no LEWEL_PROFILE_DIR: the build says what to do
        assert client.post("/v1/models/tiny/profile", json=BODY).status_code == 202
        failed = wait_done(client, "tiny")[-1]
        assert failed["status"] == "failed" and "LEWEL_PROFILE_DIR" in failed["error"] and "not writable" in failed["error"]
    profiles = tmp_path / "profiles"
    with TestClient(create_app(settings_for(models, profile_dir=profiles))) as client:
        assert client.post("/v1/models/tiny/profile", json=BODY).status_code == 202
        done = wait_done(client, "tiny")[-1]
        assert done["status"] == "done" and done["written"] == "profile_dir", done
        assert (profiles / "models_dir" / "tiny.profile.json").is_file() and not sidecar_path(models["tiny"]).exists()
        assert listed_profile(client, "tiny")["size"] == SIZE


def test_the_newer_of_the_sidecar_and_the_service_copy_is_the_profile(tmp_path):
    checkpoint = tmp_path / "models" / "m.safetensors"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"weights")
    profiles = tmp_path / "profiles"
    copy = service_copy(checkpoint, "bundled", profiles)
    assert copy == profiles / "bundled" / "m.profile.json"
    assert profile_file(checkpoint, "bundled", profiles) == sidecar_path(checkpoint)  # none: where lewel profile writes
    copy.parent.mkdir(parents=True)
    copy.write_text("{}")
    assert profile_file(checkpoint, "bundled", profiles) == copy
    sidecar_path(checkpoint).write_text("{}")
    os.utime(copy, ns=(1, 1))
    assert profile_file(checkpoint, "bundled", profiles) == sidecar_path(checkpoint)
    assert profile_file(checkpoint, "bundled", None) == sidecar_path(checkpoint)


def test_the_status_carries_a_profile_whose_numbers_include_nan(models):
    """A version-2 profile holds NaN where it measured nothing: the status answers it as null, not a 500."""
    import json

    from test_api_profiles import version_2

    profile = build_profile(models["tiny"], data="scenes:6", size=SIZE, control_seeds=1, control_schemes=["pytorch"])
    sidecar_path(models["tiny"]).write_text(json.dumps(version_2(profile)))
    with TestClient(create_app(settings_for(models))) as client:
        answer = client.get("/v1/models/tiny/profile")
        assert answer.status_code == 200 and answer.json()["profile"]["size"] == SIZE, answer.text
        assert answer.json()["message"] == "the model has a profile"


@pytest.mark.parametrize("schemes", ["bogus", "pytorch,kaiming", " , "])
def test_an_unknown_control_scheme_is_refused_naming_the_setting(schemes):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="LEWEL_PROFILE_CONTROL_SCHEMES must name one or more of torchvision"):
        Settings(profile_control_schemes=schemes)
    assert Settings(profile_control_schemes="pytorch, trunc_normal,pytorch").profile_control_schemes == ["pytorch", "trunc_normal"]
