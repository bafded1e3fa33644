"""Figures are drawn in a bounded pool of their own (issue 44, item 2): a figure that waits past the queue-time
budget, or finds the queue full, is answered 503 with Retry-After, and map requests do not wait behind figures."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from pathlib import Path

import pytest
from api_factory import build_models
from fastapi.testclient import TestClient
from PIL import Image

from api.drawing_pool import DrawingPool
from api.errors import ApiError
from api.limits import MemoryBudget
from api.main import create_app
from api.settings import Settings

EMPTY = Path(__file__).parent / "fixtures" / "no-models-here"


def pool(**overrides) -> DrawingPool:
    """A pool whose "jobs" are functions run in a thread, so that a test can hold a drawing as long as it likes."""
    values = dict(workers=1, max_queued=2, queue_s=0.3, retry_after_s=7)
    values.update(overrides)
    drawing = DrawingPool(MemoryBudget(1 << 30, max_queued=8, retry_after_s=7), **values)

    async def render(job):
        return await asyncio.to_thread(job)

    drawing._render = render
    return drawing


def test_a_figure_waiting_past_the_budget_gets_503_with_retry_after():
    async def scenario() -> None:
        drawing, release = pool(), threading.Event()
        first = asyncio.create_task(drawing.draw(lambda: release.wait(10)))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        with pytest.raises(ApiError) as refused:
            await drawing.draw(lambda: "never drawn")
        waited = time.monotonic() - start
        assert 0.25 < waited < 2, waited
        assert refused.value.status == 503 and refused.value.code == "busy"
        assert refused.value.headers == {"Retry-After": "7"} and "LEWEL_DRAWING_QUEUE_S" in refused.value.message
        assert drawing.queued == 0  # the figure that gave up is not left in the queue
        release.set()
        assert await first is True
        assert await drawing.draw(lambda: "next") == "next" and drawing.running == 0
        drawing.close()

    asyncio.run(scenario())


def test_a_full_queue_answers_at_once_and_waiting_figures_are_drawn_in_order():
    async def scenario() -> None:
        drawing, release, order = pool(max_queued=2, queue_s=10), threading.Event(), []
        first = asyncio.create_task(drawing.draw(lambda: release.wait(10)))
        await asyncio.sleep(0.05)
        waiting = [asyncio.create_task(drawing.draw(lambda n=n: order.append(n))) for n in (1, 2)]
        await asyncio.sleep(0.05)
        assert drawing.queued == 2 and drawing.running == 1
        start = time.monotonic()
        with pytest.raises(ApiError) as refused:
            await drawing.draw(lambda: order.append(3))
        assert time.monotonic() - start < 0.1 and "LEWEL_DRAWING_MAX_QUEUED" in refused.value.message
        release.set()
        await asyncio.gather(first, *waiting)
        assert order == [1, 2] and drawing.running == 0 and drawing.queued == 0
        drawing.close()

    asyncio.run(scenario())


def test_a_drawing_holds_its_memory_only_while_it_is_drawn():
    async def scenario() -> None:
        drawing, seen = pool(), []
        await drawing.draw(lambda: seen.append(drawing.budget.used), memory=12345)
        assert seen == [12345] and drawing.budget.used == 0
        drawing.close()

    asyncio.run(scenario())


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 60, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def test_maps_are_answered_while_figures_wait_and_figures_past_the_budget_get_503(tmp_path, monkeypatch):
    models = build_models(tmp_path / "models")
    drawn, release = [], threading.Event()
    original = DrawingPool._render

    async def held_render(self, job):  # the first figure is held in the drawing pool until the others are answered
        drawn.append(job.shown)
        await asyncio.to_thread(release.wait, 10)
        return await original(self, job)

    monkeypatch.setattr(DrawingPool, "_render", held_render)
    settings = Settings(
        models_dir=models["tiny"].parent, bundled_models_dir=EMPTY, default_model="tiny", warmup_size=64,
        torch_threads=1, drawing_workers=1, drawing_max_queued=1, drawing_queue_s=1.0,
    )
    form = {"size": "64", "format": "png"}
    with TestClient(create_app(settings)) as client:
        answers: dict[str, object] = {}

        def figure(name: str) -> None:
            answers[name] = client.post("/v1/maps", files={"image": ("a.png", png(), "image/png")}, data=form)

        drawing = client.app.state.service.drawing
        threads = [threading.Thread(target=figure, args=(name,)) for name in ("first", "second", "third")]
        for thread, reached in zip(threads, (lambda: drawn, lambda: drawing.queued == 1, lambda: "third" in answers)):
            thread.start()  # in this order: drawing, waiting, refused at once (the queue is full)
            deadline = time.monotonic() + 10
            while not reached() and time.monotonic() < deadline:
                time.sleep(0.01)
        start = time.monotonic()
        plain = client.post("/v1/maps", files={"image": ("a.png", png(), "image/png")}, data={"size": "64"})
        assert plain.status_code == 200 and time.monotonic() - start < 5  # not behind the figure being drawn
        threads[1].join(5)  # past the 1 s queue budget
        release.set()
        for thread in threads:
            thread.join(30)
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {"first": 200, "second": 503, "third": 503}, statuses
    first = answers["first"]
    assert first.headers["content-type"] == "image/png" and first.content.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(first.content)).size[0] > 400  # drawn by a drawing process: a whole figure
    for name, setting in (("second", "LEWEL_DRAWING_QUEUE_S"), ("third", "LEWEL_DRAWING_MAX_QUEUED")):
        body = answers[name].json()
        assert body["error"] == "busy" and setting in body["message"] and answers[name].headers["retry-after"] == "5"
    assert len(drawn) == 1 and drawn[0] == [int(m) for m in first.headers["x-lewel-maps"].split(",")]


CHILD = """
import sys, time
from pathlib import Path
from api.drawing_pool import DrawingPool
from api.limits import MemoryBudget
drawing = DrawingPool(MemoryBudget(1 << 30, max_queued=1, retry_after_s=1), workers=1, max_queued=1, queue_s=1,
                      retry_after_s=1)
drawing._processes().submit(int)  # the drawing process starts with the first job
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    kids = [c for task in Path("/proc/self/task").iterdir() for c in (task / "children").read_text().split()]
    if len(kids) >= 2:  # the resource tracker and the drawing process
        print(" ".join(kids), flush=True)
        break
    time.sleep(0.1)
time.sleep(120)
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc")
def test_the_drawing_processes_end_when_the_service_is_killed():
    import os
    import signal
    import subprocess
    import sys

    service = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True, env=os.environ)
    try:
        kids = [int(pid) for pid in service.stdout.readline().split()]
        assert len(kids) >= 2, kids
        service.send_signal(signal.SIGKILL)  # no shutdown: the drawing processes must notice on their own
        service.wait(10)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in kids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(Path(f"/proc/{pid}").exists() for pid in kids), kids
    finally:
        if service.poll() is None:
            service.kill()
