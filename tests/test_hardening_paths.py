"""What a hostile client can learn or break through names and paths (issue 24, items 2 to 4): over-long ids and
thumbnail names, the server's paths in answers, leftovers of killed atlas builds, the methods a path allows and
the bounds the OpenAPI document states for an atlas build."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from api_factory import build_models, image_bytes
from fastapi.testclient import TestClient

from api.atlas_builds import TEMPORARY_PREFIX
from api.atlas_files import NAME_MAX
from api.main import create_app
from api.redaction import PathRedactor
from api.settings import Settings
from lewel.drawing.atlas_folder import BUILDING_PREFIX, REPLACED_PREFIX, remove_stale_builds
from lewel.maps.atlas import ATLAS_FORMAT, ATLAS_NAME

EMPTY = Path(__file__).parent / "fixtures" / "no-models-here"
ELSEWHERE = "/srv/private-checkpoints"  #: a folder the service does not know: only leaving paths out hides it


def atlas_recording_paths(root: Path) -> dict:
    """An atlas as ``lewel atlas`` writes it on the command line: the checkpoint's path, the extraction folder and a
    folder source's root are the server's paths."""
    record = {"index": 0, "group": 0, "aligned": 0, "auroc": None, "top": {}}
    return {
        "format": ATLAS_FORMAT, "version": 3, "extraction": str(root / "extraction"),
        "checkpoint": {"file": "tiny.pt", "path": f"{ELSEWHERE}/tiny.pt", "sha256": "ab" * 32},
        "model": {"method": "lewel_b", "d": 1}, "data": {"kind": "folder", "root": str(root / "photos"), "classes": []},
        "size": 96, "images": 1, "maps": [record],
    }


@pytest.fixture(scope="module")
def server_files(tmp_path_factory) -> dict[str, Path]:
    """A models folder (good and broken files, a link leading out of it) and an atlas folder with one atlas."""
    root = tmp_path_factory.mktemp("paths")
    paths = build_models(root / "models")
    outside = root / "elsewhere" / "secret.pt"
    outside.parent.mkdir()
    outside.write_bytes(paths["tiny"].read_bytes())
    (root / "models" / "link.pt").symlink_to(outside)
    atlas = root / "atlases"
    (atlas / "tiny").mkdir(parents=True)
    (atlas / "tiny" / ATLAS_NAME).write_text(json.dumps(atlas_recording_paths(root)))
    return {"root": root, "models": root / "models", "atlas": atlas, "outside": outside}


def client_for(files: dict[str, Path], **overrides) -> TestClient:
    settings = Settings(
        models_dir=files["models"], bundled_models_dir=EMPTY, atlas_dir=files["atlas"], default_model="tiny",
        warmup_size=64, torch_threads=1, **overrides,
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


def test_over_long_ids_and_thumbnail_names_are_404_not_500(server_files):
    long_id, long_name = "x" * 300, "y" * 300 + ".png"
    with client_for(server_files) as client:
        for url in (
            f"/v1/atlas/{long_id}", f"/v1/atlas/{long_id}/maps/0", f"/v1/atlas/{long_id}/thumbs/a.png",
            f"/v1/atlas/tiny/thumbs/{long_name}", f"/v1/atlas/{'z' * (NAME_MAX + 1)}",
        ):
            answer = client.get(url)
            assert answer.status_code == 404, (url, answer.text)
            body = answer.json()
            assert body["error"] == "not_found" and "characters" in body["message"]
            assert str(server_files["root"]) not in answer.text and len(answer.text) < 600
        for answer in (client.get(f"/v1/atlas/{long_id}/build"), client.post(f"/v1/atlas/{long_id}/build")):
            assert answer.status_code == 404 and answer.json()["error"] == "model_not_found"  # not a model either
        assert client.get(f"/v1/atlas/{'z' * NAME_MAX}").status_code == 404  # the longest id: looked up, not there


def test_answers_name_models_and_files_by_id_never_by_server_path(server_files):
    secret = str(server_files["root"])
    with client_for(server_files) as client:
        listing = client.get("/v1/models")
        assert listing.status_code == 200 and secret not in listing.text
        assert listing.json()["searched"] == ["bundled", "models_dir"]
        entries = {m["id"]: m for m in listing.json()["models"]}
        assert "broken.pt" in entries["broken"]["error"]  # the file, by name
        assert "outside the models_dir folder" in entries["link"]["error"]
        assert "secret" not in entries["link"]["error"] and "elsewhere" not in entries["link"]["error"]
        picture = {"image": ("a.png", image_bytes(), "image/png")}
        for model, status in (("broken", 500), ("wrongkeys", 500), ("link", 403)):
            answer = client.post("/v1/maps", data={"model": model}, files=picture)
            assert answer.status_code == status and secret not in answer.text, answer.text
        for url in ("/v1/atlas/nothing", "/v1/atlas/tiny/thumbs/none.png"):
            answer = client.get(url)
            assert answer.status_code == 404 and secret not in answer.text, answer.text
        for url in ("/v1/atlas/tiny", "/v1/atlas/tiny/maps/0"):
            answer = client.get(url)
            assert answer.status_code == 200 and secret not in answer.text and ELSEWHERE not in answer.text, answer.text
            served = answer.json()
            assert served["checkpoint"] == {"model": "tiny", "file": "tiny.pt", "sha256": "ab" * 32}
            assert served["extraction"] == "extraction" and served["data"]["root"] == "photos"
        assert client.post("/v1/atlas/link/build").status_code == 403
        status = client.get("/v1/atlas/tiny/build").json()
        assert status["folder"] is None and status["atlas"] is True
        assert secret not in client.get("/readyz").text


def test_the_paths_are_shown_when_the_server_asks_for_it(server_files):
    with client_for(server_files, expose_paths=True) as client:
        searched = client.get("/v1/models").json()["searched"]
        assert searched == [f"bundled ({EMPTY})", f"models_dir ({server_files['models']})"]
        assert client.get("/v1/atlas/tiny/build").json()["folder"] == str(server_files["atlas"] / "tiny")
        link = {m["id"]: m for m in client.get("/v1/models").json()["models"]}["link"]
        assert str(server_files["outside"]) in link["error"]
        assert client.get("/v1/atlas/tiny").json()["checkpoint"]["path"] == f"{ELSEWHERE}/tiny.pt"


def test_the_redactor_cuts_known_folders_and_nothing_else(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    redactor = PathRedactor([("models_dir", models), ("atlas_dir", tmp_path / "linked")], expose=False)
    assert redactor.text(f"refused to open '{models}/r50.pt': why") == "refused to open 'r50.pt': why"
    assert redactor.text(f"looked in {models}; nothing") == "looked in <models_dir>; nothing"
    assert redactor.text(f"{tmp_path}/real/tiny/atlas.json is bad") == "tiny/atlas.json is bad"  # the resolved form
    assert redactor.text(f"{models}x/a.pt") == f"{models}x/a.pt"  # another folder that starts the same
    assert redactor.text("POST /v1/atlas/tiny/build") == "POST /v1/atlas/tiny/build"
    assert redactor.value({"a": [f"{models}/b.pt", 3]}) == {"a": ["b.pt", 3]}
    assert PathRedactor([("models_dir", models)], expose=True).text(f"{models}/r.pt") == f"{models}/r.pt"


def dead_pid() -> int:
    """The PID of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_killed_builds_are_removed_at_start_up_and_logged(server_files, tmp_path, caplog):
    gone = dead_pid()
    atlas = tmp_path / "atlases"
    atlas.mkdir()
    stale = [atlas / f".tiny{BUILDING_PREFIX}{gone}-abc", atlas / f".tiny{REPLACED_PREFIX}1234", atlas / ".old.building-xyz"]
    live = atlas / f".tiny{BUILDING_PREFIX}{os.getpid()}-def"  # a build of a running process: kept
    temporary = Path(tempfile.gettempdir()) / f"{TEMPORARY_PREFIX}{gone}-ghi"
    kept = [live, atlas / "tiny", atlas / ".hidden"]
    for folder in (*stale, *kept, temporary):
        folder.mkdir()
        (folder / "part.npy").write_bytes(b"x")
    try:
        with caplog.at_level(logging.WARNING, logger="api.atlas"):
            with client_for({**server_files, "atlas": atlas}) as client:
                assert client.get("/healthz").status_code == 200
        assert not any(folder.exists() for folder in (*stale, temporary))
        logged = {r.getMessage() for r in caplog.records if r.name == "api.atlas" and r.levelno == logging.WARNING}
        half_built = next(line for line in logged if str(stale[0]) in line)
        assert f"the half-built atlas of 'tiny' of process {gone}, which is gone" in half_built
        assert "(a build killed before it finished; 1 file, 0.0 KiB)" in half_built
        assert any(str(stale[1]) in line and "the previous atlas of 'tiny'" in line for line in logged)
        assert any(str(temporary) in line and f"temporary atlas folder of service process {gone}" in line for line in logged)
        assert not any(str(folder) in line for line in logged for folder in kept)
        assert all(folder.is_dir() for folder in kept)
        assert remove_stale_builds(atlas) == []
    finally:
        for folder in (live, temporary):
            shutil.rmtree(folder, ignore_errors=True)


def test_a_wrong_method_lists_every_allowed_one_and_the_build_states_its_bounds(server_files):
    with client_for(server_files, atlas_max_scenes=300, max_input_size=256) as client:
        for method, url, allowed in (
            ("OPTIONS", "/v1/atlas/tiny/build", "GET, POST"),
            ("DELETE", "/v1/atlas/tiny/build", "GET, POST"),
            ("PUT", "/v1/models", "GET"),
            ("GET", "/v1/maps", "POST"),
        ):
            answer = client.request(method, url)
            assert answer.status_code == 405 and answer.headers["allow"] == allowed, (method, url, answer.headers)
            assert allowed in answer.json()["message"]
        schema = client.get("/openapi.json").json()["components"]["schemas"]["AtlasBuildParams"]["properties"]
        assert schema["scenes"] == {**schema["scenes"], "type": "integer", "minimum": 1, "maximum": 300}
        assert schema["size"]["maximum"] == 256 and schema["size"]["minimum"] == 32
        assert client.post("/v1/atlas/tiny/build", data={"scenes": 301}).status_code == 422
