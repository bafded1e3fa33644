"""The serving seams without Ray (``api.serving``, ``api.batching.run_groups``, ``api.ray_batching``, the atlas
builds' runner): the replica id on plain uvicorn, batching several models' requests in one batch method, and
a build run through another runner. The Ray deployment itself: tests/test_ray_serve.py."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient

from api.atlas_builds import AtlasBuilds
from api.batching import Job, images_in, run_groups
from api.main import create_app
from api.ray_batching import ServeBatcher
from api.settings import Settings
from lewel.inference import Extraction

EMPTY = Path(__file__).parent / "fixtures" / "no-models-here"


def test_plain_service_names_its_process_in_every_answer_and_in_v1_health():
    settings = Settings(models_dir=None, bundled_models_dir=EMPTY, api_token="s3cret")
    with TestClient(create_app(settings)) as client:
        replica = f"{socket.gethostname()}:{os.getpid()}"
        assert client.get("/healthz").headers["x-lewel-replica"] == replica
        refused = client.get("/v1/health")
        assert refused.status_code == 401 and refused.headers["x-lewel-replica"] == replica
        assert client.get("/nowhere").headers["x-lewel-replica"] == replica
        health = client.get("/v1/health", headers={"Authorization": "Bearer s3cret"})
        assert health.json() == {"status": "ok", "replica": replica, "engine": "uvicorn", "version": "0.1.0"}


class Model:
    """A stand-in for ``LewelModel.extract``: the feature map is the images times ``scale``; calls counted."""

    def __init__(self, scale: float) -> None:
        self.scale, self.calls = scale, []

    def extract(self, images: torch.Tensor, **options) -> Extraction:
        self.calls.append((images.shape[0], options))
        if images.shape[-1] == 13:
            raise ValueError("thirteen pixels")
        return Extraction(images * self.scale, None, None, "no head")


def test_run_groups_runs_each_model_shape_and_options_once_and_slices_the_answers():
    a, b = Model(2.0), Model(3.0)
    jobs = [
        Job(torch.full((2, 3, 8, 8), 1.0), {"aligned_projection": False}, run=a.extract),
        Job(torch.full((1, 3, 8, 8), 2.0), {"aligned_projection": True}, run=b.extract),
        Job(torch.full((3, 3, 8, 8), 3.0), {"aligned_projection": False}, run=a.extract),
        Job(torch.full((1, 3, 13, 13), 4.0), {"aligned_projection": False}, run=a.extract),
        Job(torch.full((1, 3, 8, 8), 5.0), {"aligned_projection": True}, run=b.extract),
    ]
    outcomes = run_groups(jobs)
    assert a.calls == [(5, {"aligned_projection": False}), (1, {"aligned_projection": False})]
    assert b.calls == [(2, {"aligned_projection": True})]
    for job, outcome, scale in zip(jobs[:3], outcomes[:3], (2.0, 3.0, 2.0), strict=True):
        torch.testing.assert_close(outcome.feature_map, job.images * scale)
    assert isinstance(outcomes[3], ValueError)  # that group's failure is its own: the other groups ran
    torch.testing.assert_close(outcomes[4].feature_map, jobs[4].images * 3.0)
    assert images_in(jobs) == 8


@pytest.fixture
def loop():
    """An event loop running in its own thread, as a Ray replica's is."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_serve_batcher_gathers_concurrent_submits_into_one_call_on_the_loop(loop):
    """A hand-written gathering batch method (what ``@serve.batch`` does) behind two models' batchers."""
    pending: list[tuple[Job, asyncio.Future]] = []

    async def batched(job: Job):
        future = loop.create_future()
        pending.append((job, future))
        if len(pending) == 4:
            ready = pending[:]
            pending.clear()
            for (_, waiting), outcome in zip(ready, run_groups([j for j, _ in ready]), strict=True):
                waiting.set_result(outcome)
        return await future

    a, b = Model(2.0), Model(3.0)
    sizes: list[int] = []
    batchers = [ServeBatcher(batched, loop, a.extract, sizes.append), ServeBatcher(batched, loop, b.extract)]
    results: dict[int, Extraction | Exception] = {}

    def submit(i: int) -> None:
        images = torch.full((1, 3, 8, 8), float(i)) if i != 3 else torch.zeros(1, 3, 13, 13)
        try:
            results[i] = batchers[i % 2].submit(images, aligned_projection=False)
        except ValueError as error:
            results[i] = error

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert a.calls == [(2, {"aligned_projection": False})] and sizes == [2]  # requests 0 and 2 in one pass
    torch.testing.assert_close(results[2].feature_map, torch.full((1, 3, 8, 8), 4.0))
    torch.testing.assert_close(results[1].feature_map, torch.full((1, 3, 8, 8), 3.0))
    assert isinstance(results[3], ValueError)


def test_serve_batcher_refuses_the_loop_thread_and_a_closed_batcher(loop):
    batcher = ServeBatcher(lambda job: asyncio.sleep(0), loop, Model(1.0).extract)

    async def on_the_loop():
        return batcher.submit(torch.zeros(1, 3, 8, 8))

    with pytest.raises(RuntimeError, match="worker thread"):
        asyncio.run_coroutine_threadsafe(on_the_loop(), loop).result(5)
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(torch.zeros(1, 3, 8, 8))


def test_atlas_builds_run_through_their_runner(tmp_path):
    """The runner is handed ``make_atlas`` and the build's arguments; its progress reports are the status's."""
    calls = []

    def runner(function, checkpoint, data, dest, *, progress, **options):
        calls.append((function.__name__, checkpoint, data, dest, options))
        progress("maps", 1, 2)
        return {"images": 2, "maps": [{}] * 5}

    builds = AtlasBuilds(tmp_path, None, device="cpu", max_scenes=10, runner=runner)
    builds.start("tiny", tmp_path / "tiny.pt", scenes=2, size=32)
    assert builds.wait(10)
    assert calls == [("make_atlas", tmp_path / "tiny.pt", "scenes:2", tmp_path / "tiny", {"size": 32, "device": "cpu"})]
    status = builds.status("tiny")
    assert status["status"] == "done" and status["message"] == "atlas of 2 scenes at 32 px, 5 maps"
    assert status["done"] == 1 and status["total"] == 2  # the last progress the runner reported


def test_a_runner_that_fails_is_the_builds_error(tmp_path):
    def runner(function, *args, progress, **options):
        raise OSError("no worker left")

    builds = AtlasBuilds(tmp_path, None, device="cpu", max_scenes=10, runner=runner)
    builds.start("tiny", tmp_path / "tiny.pt", scenes=2, size=32)
    deadline = time.monotonic() + 10
    while builds.status("tiny")["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert builds.status("tiny")["message"] == "the atlas build failed: OSError: no worker left"


def test_ray_serve_refuses_bad_settings_and_options_before_ray_starts(monkeypatch, capsys):
    from api import ray_serve

    monkeypatch.setenv("LEWEL_API_TOKEN", " ")
    assert ray_serve.main(["--replicas", "2"]) == 2
    assert "LEWEL_API_TOKEN is set but empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ray_serve.main(["--replicas", "0"])
    assert "--replicas: must be above 0, not 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ray_serve.main(["--num-gpus", "-1"])
    assert "must be 0 or more" in capsys.readouterr().err
