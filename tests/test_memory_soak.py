"""Memory that comes back (issue 44, item 3): glibc's freed memory is returned after large requests, and a short
soak (the same mixed requests three times) levels off. The full soak against a live service is
``benchmarks/mixed_load.py --rounds 3`` (numbers in docs/api.md)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from api_factory import build_models
from fastapi.testclient import TestClient
from PIL import Image

from api.main import create_app
from api.memory_trim import MemoryTrimmer, _glibc, limit_arenas, trim
from api.settings import Settings

EMPTY = Path(__file__).parent / "fixtures" / "no-models-here"
MIB = 1024 * 1024
glibc = pytest.mark.skipif(_glibc() is None, reason="malloc_trim is glibc's")


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@glibc
def test_a_trim_gives_freed_heap_memory_back():
    """200 MiB of 64 KiB blocks (below glibc's mmap threshold: on the heap), all freed but the last, which pins
    the top of the heap: the freed pages stay resident until ``trim``."""

    def allocate(out: list) -> None:
        out.extend(bytearray(64 * 1024) for _ in range(3200))

    blocks: list = []
    thread = threading.Thread(target=allocate, args=(blocks,))  # a thread's own arena, as a request's would be
    thread.start()
    thread.join()
    for block in blocks:
        block[::4096] = b"\x01" * len(block[::4096])  # touched: resident
    last = blocks.pop()
    blocks.clear()
    before = rss()
    assert trim() is True
    assert before - rss() > 100 * MIB, (before / MIB, rss() / MIB)
    del last


def test_the_trimmer_runs_only_after_large_requests():
    trimmer = MemoryTrimmer(64 * MIB)
    trimmer.note(10 * MIB)
    trimmer.run()
    assert trimmer.trims == 0 and not trimmer.pending
    trimmer.note(64 * MIB)
    assert trimmer.pending
    trimmer.run()
    assert trimmer.trims == 1 and not trimmer.pending
    never = MemoryTrimmer(0)
    never.note(10**12)
    assert not never.pending


@glibc
def test_the_arena_limit_is_set_unless_the_environment_sets_it(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert limit_arenas(2) is True and limit_arenas(0) is False and limit_arenas(None) is False
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas(2) is False


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.radial_gradient("L").convert("RGB").resize((320, 240)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_short_soak_levels_off_and_trims(tmp_path):
    """Three rounds of the same maps (JSON, NPZ), figure and point requests: the resident memory after the
    third round is within a few MiB of the second's (a leak of a request's arrays would add tens per round), and
    the large requests were followed by trims."""
    models = build_models(tmp_path / "models")
    settings = Settings(
        models_dir=models["tiny"].parent, bundled_models_dir=EMPTY, default_model="tiny", warmup_size=64,
        torch_threads=1, malloc_trim_mb=16,
    )
    files = {"image": ("a.jpg", photo(), "image/jpeg")}
    requests = [
        ("/v1/maps", {"views": "2", "size": "128"}),
        ("/v1/maps", {"views": "1", "size": "64", "maps": "top", "top_k": "1", "format": "png", "dpi": "50"}),
        ("/v1/point", {"x": "100", "y": "100", "views": "1", "size": "128"}),
        ("/v1/maps", {"views": "1", "size": "128", "format": "npz"}),
    ]
    after = []
    with TestClient(create_app(settings)) as client:
        for _ in range(3):
            for _ in range(2):
                for path, form in requests:
                    answer = client.post(path, files=files, data=form)
                    assert answer.status_code == 200, answer.text
            after.append(rss())
        trims = client.app.state.service.trimmer.trims
    assert trims >= 6, trims
    assert after[2] - after[1] < 24 * MIB, [round(a / MIB) for a in after]
