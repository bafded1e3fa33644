"""The service on Ray Serve as it runs for real: ``python -m api.ray_serve --replicas 2`` in its own process, on a
local Ray instance it starts (one for the whole module, CPU only, half a core per replica so that two fit on two
cores), serving the bundled demo model. Concurrent requests are answered by both replicas, as the plain service
answers them, with their forward passes shared (``@serve.batch``); an atlas build and a profile build run as Ray
tasks whose progress every replica reports, one profile build in the whole deployment; SIGTERM stops the command,
Serve and Ray."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from api_factory import build_models
from fastapi.testclient import TestClient

pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install '.[ray]'; ./scripts/setup installs it)")
httpx2 = pytest.importorskip("httpx2")

from api.encoding import decode_array  # noqa: E402
from api.main import create_app  # noqa: E402
from api.settings import Settings  # noqa: E402
from servers import ROOT, free_port  # noqa: E402

import ray  # noqa: E402
import tomllib  # noqa: E402
import yaml  # noqa: E402

from api.ray_deployment import DEPLOYMENT_NAME, AppArgs, build_app  # noqa: E402

MODEL = "lewel_b_demo"
IMAGE = (ROOT / "static" / "samples" / "one_object.png").read_bytes()
REQUESTS = 24
START_S = 240  #: Ray's start, two replicas and their warm-up, on two busy cores
ENVIRONMENT = {
    "LEWEL_DEFAULT_MODEL": MODEL, "LEWEL_WARMUP_SIZE": "64", "LEWEL_TORCH_THREADS": "1",
    "LEWEL_PROFILE_CONTROL_SEEDS": "1", "LEWEL_PROFILE_CONTROL_SCHEMES": "pytorch",  # a profile build of one control
}
PROFILED = "tiny"  #: a small model of LEWEL_MODELS_DIR whose profile a build writes (the bundled ones keep theirs)


def maps_params(seed: int) -> dict[str, str]:
    return {"model": MODEL, "size": "64", "views": "1", "seed": str(seed), "order": "index"}


class RayService:
    """The command's process, its output file and its base URL."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "ray_serve.log"
        models = tmp / "models"
        models.mkdir()
        shutil.copy(build_models(tmp / "built")[PROFILED], models)
        env = {
            **os.environ, **ENVIRONMENT, "LEWEL_ATLAS_BUILD_DIR": str(tmp / "atlases"), "LEWEL_MODELS_DIR": str(models),
            "RAY_DEDUP_LOGS": "0",
        }
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        with self.log.open("w") as out:  # a file, not a pipe: Ray's logs would fill a pipe no one reads yet
            self.process = subprocess.Popen(
                [sys.executable, "-m", "api.ray_serve", "--replicas", "2", "--num-cpus", "0.5", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_both_ready(self, client: httpx2.Client) -> None:
        """Poll ``/readyz`` until two different replicas have answered 200."""
        ready: set[str] = set()
        deadline = time.monotonic() + START_S
        while len(ready) < 2:
            assert self.process.poll() is None, self.output()[-5000:]
            assert time.monotonic() < deadline, f"two replicas were not ready in {START_S} s:\n{self.output()[-5000:]}"
            try:
                response = client.get("/readyz")
                if response.status_code == 200:
                    ready.add(response.headers["x-lewel-replica"])
            except httpx2.TransportError:
                pass
            time.sleep(0.3)


@pytest.fixture(scope="module")
def ray_service(tmp_path_factory):
    service = RayService(tmp_path_factory.mktemp("ray"))
    try:
        with httpx2.Client(base_url=service.base, timeout=120) as client:
            service.wait_until_both_ready(client)
        yield service
    finally:
        if service.process.poll() is None:
            service.process.send_signal(signal.SIGTERM)
            try:
                service.process.wait(60)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait()


@pytest.fixture(scope="module")
def client(ray_service):
    with httpx2.Client(base_url=ray_service.base, timeout=120) as client:
        yield client


def assert_same_answer(got, expected, where: str = "answer") -> None:
    """Equal structure and values; encoded arrays and floats within float16 rounding (a batch of several
    requests runs other kernels than one request alone)."""
    if isinstance(expected, dict) and {"dtype", "shape", "data"} <= expected.keys():
        np.testing.assert_allclose(
            decode_array(got).astype(np.float32), decode_array(expected).astype(np.float32), atol=2e-3, err_msg=where
        )
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), where
        for key in expected:
            assert_same_answer(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            assert_same_answer(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-3, abs=2e-3), where
    else:
        assert got == expected, where


def test_concurrent_maps_are_answered_by_both_replicas_as_the_plain_service_answers(client):
    def post(seed: int) -> httpx2.Response:
        return client.post("/v1/maps", files={"image": ("one.png", IMAGE, "image/png")}, data=maps_params(seed))

    with ThreadPoolExecutor(REQUESTS) as pool:
        answers = list(pool.map(post, [i % 3 for i in range(REQUESTS)]))
    assert [a.status_code for a in answers] == [200] * REQUESTS, [a.text[:300] for a in answers if a.status_code != 200]
    assert len({a.headers["x-lewel-replica"] for a in answers}) == 2

    settings = Settings(default_model=MODEL, warmup_size=64, torch_threads=1)
    with TestClient(create_app(settings)) as plain:
        expected = [
            plain.post("/v1/maps", files={"image": ("one.png", IMAGE, "image/png")}, data=maps_params(s)).json()
            for s in range(3)
        ]
    for i, answer in enumerate(answers):
        body = answer.json()
        body["model"]["device"] = expected[i % 3]["model"]["device"]
        assert_same_answer(body, expected[i % 3], f"request {i}")


def test_replicas_share_forward_passes_through_serve_batch(client):
    """Each replica's ``/metrics``: fewer forward passes than requests (after the warm-up's one image, each
    request's two views ran in some pass)."""
    counts: dict[str, tuple[float, float]] = {}
    for _ in range(40):
        response = client.get("/metrics")
        calls = float(re.search(r"^lewel_batch_images_count (\S+)", response.text, re.M).group(1))
        images = float(re.search(r"^lewel_batch_images_sum (\S+)", response.text, re.M).group(1))
        counts[response.headers["x-lewel-replica"]] = (calls, images)
        if len(counts) == 2:
            break
    assert sum(images for _, images in counts.values()) >= 2 * REQUESTS  # two views each, seen by some replica
    assert any(calls - 1 < (images - 1) / 2 for calls, images in counts.values()), counts


def test_health_names_the_ray_replica_that_answers(client):
    response = client.get("/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["engine"] == "ray" and body["replica"] == response.headers["x-lewel-replica"]
    assert body["replica"].startswith("LewelService#")


def test_an_atlas_build_is_a_ray_task_that_every_replica_reports(client):
    started = client.post(f"/v1/atlas/{MODEL}/build", data={"scenes": "2", "size": "32"})
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "running"
    seen: set[str] = set()
    deadline = time.monotonic() + 180
    while True:
        response = client.get(f"/v1/atlas/{MODEL}/build")
        body = response.json()
        seen.add(response.headers["x-lewel-replica"])
        assert body["status"] in ("running", "done"), body  # never idle: the state is the coordinator's, not a replica's
        if body["status"] == "done" and len(seen) == 2:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.3)
    assert body["atlas"] and "2 scenes at 32 px" in body["message"]
    atlas = client.get(f"/v1/atlas/{MODEL}")
    assert atlas.status_code == 200 and len(atlas.json()["maps"]) == 128


def test_a_profile_build_is_one_ray_task_for_the_deployment_that_every_replica_reports(client):
    body = {"images": 6, "size": 128}  # 4×4 maps on the tiny ResNet-18, as tests/test_api_profile_builds.py
    started = client.post(f"/v1/models/{PROFILED}/profile", json=body)
    assert started.status_code == 202 and started.json()["status"] == "running", started.text
    refused: set[str] = set()
    for _ in range(20):  # while it runs (its task is still starting), every replica refuses a second build
        again = client.post(f"/v1/models/{PROFILED}/profile", json=body)
        assert again.status_code == 409 and again.json()["build"]["status"] == "running", again.text
        refused.add(again.headers["x-lewel-replica"])
        if len(refused) == 2:
            break
    assert len(refused) == 2
    profiled: set[str] = set()
    deadline = time.monotonic() + 180
    while len(profiled) < 2:
        response = client.get(f"/v1/models/{PROFILED}/profile")
        status = response.json()
        assert status["status"] in ("running", "done"), status["message"]  # never idle: the state is the coordinator's
        if status["status"] == "done":
            assert status["profile"] is not None and status["profile"]["size"] == 128, status
            profiled.add(response.headers["x-lewel-replica"])
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    assert status["controls"] == 1 and status["written"] == "checkpoint_folder"


def test_sigterm_stops_the_command_serve_and_ray(ray_service):
    ray_service.process.send_signal(signal.SIGTERM)
    assert ray_service.process.wait(90) == 0, ray_service.output()[-5000:]
    output = ray_service.output()
    assert "lewel ray serve: stopped" in output and "Traceback" not in output, output[-5000:]
    with pytest.raises(httpx2.TransportError):
        httpx2.get(f"{ray_service.base}/healthz", timeout=5)


def test_the_rayservice_of_the_docs_deploys_this_application_with_the_pinned_ray():
    """docs/ray.md's KubeRay manifest: its application is ``build_app`` with arguments it accepts, its deployment
    ``LewelService``, its Ray the version ``[ray]`` pins and this environment runs."""
    manifest = yaml.safe_load(re.search(r"```yaml\n(.*?)```", (ROOT / "docs" / "ray.md").read_text(), re.S).group(1))
    application = yaml.safe_load(manifest["spec"]["serveConfigV2"])["applications"][0]
    module, name = application["import_path"].split(":")
    assert getattr(importlib.import_module(module), name) is build_app
    AppArgs.model_validate(application["args"])
    assert [d["name"] for d in application["deployments"]] == [DEPLOYMENT_NAME]
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ray"]
    assert f"ray[serve]=={ray.__version__}" in extra and manifest["spec"]["rayClusterConfig"]["rayVersion"] == ray.__version__
    with pytest.raises(ValueError, match="batchng"):
        AppArgs.model_validate({"batchng": True})
