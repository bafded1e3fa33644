"""The control family's cache (lewel.maps.family_cache): keys, round trips, damaged entries, concurrency."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch

from lewel.maps.family_cache import CACHE_ENV, ControlCache, cache_root, entry_key, fingerprint

PARTS = {"backbone": "resnet18", "scheme": "pytorch", "seed": 3, "images": "abc", "size": 64}


def tensors() -> dict[str, torch.Tensor]:
    return {
        "auroc": torch.rand(5, 8, dtype=torch.float64),
        "scored": torch.tensor([True, False, True, True, True]),
        "pattern": torch.randint(0, 3, (5, 8)),
        "count": torch.tensor(4),
    }


def test_round_trip_and_keys(tmp_path: Path) -> None:
    cache = ControlCache(tmp_path)
    assert cache.load(PARTS, ["auroc"]) is None and cache.misses == 1
    stored = tensors()
    path = cache.store(PARTS, stored)
    assert path is not None and path.parent == tmp_path and path.name == entry_key(PARTS) + ".safetensors"
    loaded = cache.load(PARTS, stored)
    assert loaded is not None and cache.hits == 1
    for name, value in stored.items():
        assert loaded[name].dtype == value.dtype and torch.equal(loaded[name], value)
    # any other input is another entry
    for change in ({"seed": 4}, {"scheme": "torchvision"}, {"images": "abd"}, {"size": 65}):
        assert entry_key({**PARTS, **change}) != entry_key(PARTS)
        assert cache.load({**PARTS, **change}, ["auroc"]) is None
    assert entry_key(dict(reversed(list(PARTS.items())))) == entry_key(PARTS)  # order-free


def test_damaged_or_mismatched_entries_are_removed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = ControlCache(tmp_path)
    path = cache.store(PARTS, tensors())
    assert path is not None
    path.write_bytes(path.read_bytes()[:40])  # truncated
    assert cache.load(PARTS, ["auroc"]) is None and not path.exists()
    assert "damaged" in caplog.text
    path.write_bytes(b"not a safetensors file at all")
    assert cache.load(PARTS, ["auroc"]) is None and not path.exists()
    # an entry under the right name but for other parts (a copied file) is not trusted
    other = cache.store({**PARTS, "seed": 9}, tensors())
    assert other is not None
    other.rename(path)
    assert cache.load(PARTS, ["auroc"]) is None and not path.exists()
    # an entry lacking a tensor the caller needs
    cache.store(PARTS, {"auroc": torch.zeros(2)})
    assert cache.load(PARTS, ["auroc", "scored"]) is None and not path.exists()


def test_disabled_cache_reads_and_writes_nothing(tmp_path: Path) -> None:
    ControlCache(tmp_path).store(PARTS, tensors())
    off = ControlCache(tmp_path, enabled=False)
    assert off.load(PARTS, ["auroc"]) is None and off.store(PARTS, tensors()) is None


def test_list_and_clear(tmp_path: Path) -> None:
    cache = ControlCache(tmp_path / "controls")
    assert cache.entries() == [] and cache.clear() == 0
    cache.store(PARTS, tensors())
    cache.store({**PARTS, "seed": 4}, tensors())
    listed = cache.entries()
    assert len(listed) == 2 and {e.parts["seed"] for e in listed} == {3, 4} and all(e.bytes > 0 for e in listed)
    assert cache.clear() == 2 and cache.entries() == []


def test_root_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "here"))
    assert cache_root() == tmp_path / "here" and ControlCache().root == tmp_path / "here"
    monkeypatch.delenv(CACHE_ENV)
    assert cache_root().name == "controls" and "lewel" in cache_root().parts


def test_unwritable_cache_does_not_fail(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert ControlCache(blocker / "controls").store(PARTS, tensors()) is None


def test_fingerprint_sees_every_byte() -> None:
    pixels = np.zeros((2, 3, 4, 4), np.uint8)
    base = fingerprint([pixels, "cat"])
    changed = pixels.copy()
    changed[1, 2, 3, 3] = 1
    assert fingerprint([changed, "cat"]) != base
    assert fingerprint([pixels.astype(np.int16), "cat"]) != base
    assert fingerprint([pixels.reshape(2, 3, 16), "cat"]) != base
    assert fingerprint([pixels, "dog"]) != base
    assert fingerprint([torch.from_numpy(pixels), "cat"]) == base


def _write(root: str, seed: int) -> None:
    torch.manual_seed(0)
    ControlCache(root).store(PARTS, tensors())


def test_concurrent_writers_leave_one_whole_entry(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write, args=(str(tmp_path), k)) for k in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    cache = ControlCache(tmp_path)
    assert len(cache.entries()) == 1 and not list(tmp_path.glob(".*.tmp"))
    torch.manual_seed(0)
    expected = tensors()
    loaded = cache.load(PARTS, expected)
    assert loaded is not None and all(torch.equal(loaded[n], expected[n]) for n in expected)
