"""Profiles with the control cache (lewel.maps.profiles.cached_controls): a second checkpoint of the same shape reads
its random family back with exactly the numbers an uncached run computes; damaged entries are recomputed; the
`lewel cache` command and `lewel profile --no-cache`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from checkpoint_factory import our_training_file
from conftest import needs_stamps, tiny_config

from lewel.cli import main
from lewel.maps.family_cache import CACHE_ENV, ControlCache
from lewel.maps.patterns import PatternScores
from lewel.maps.profiles import build_profile
from lewel.maps.profiles.cached_controls import network_scores, network_tensors, tensor_names
from lewel.maps.profiles.scores import ImageScores

pytestmark = needs_stamps
SETTINGS = dict(data="scenes:6", size=128, batch_size=6, control_seeds=1)  # 3 controls: one per scheme
FAMILY = 3


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> tuple[Path, Path]:
    """Two tiny LEWEL_M checkpoints of one shape with different weights (two checkpoints of one run)."""
    root = tmp_path_factory.mktemp("cached")
    torch.manual_seed(1)
    our_training_file(root / "first.pt", tiny_config("lewel_m"))
    torch.manual_seed(2)
    our_training_file(root / "second.pt", tiny_config("lewel_m"))
    return root / "first.pt", root / "second.pt"


def same(first: dict, second: dict) -> bool:
    """Equal profiles, every float to the bit (as JSON text: NaN, which a profile holds for unscored cells, is then
    equal to NaN)."""
    return json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_a_second_checkpoint_reads_its_family_back_with_the_uncached_numbers(tmp_path, checkpoints) -> None:
    first, second = checkpoints
    cache = ControlCache(tmp_path / "cache")
    build_profile(first, **SETTINGS, cache=cache)
    assert (cache.hits, cache.misses) == (0, FAMILY) and len(cache.entries()) == FAMILY
    steps: list[tuple[int, int]] = []
    cached = build_profile(second, **SETTINGS, cache=cache, progress=lambda done, total: steps.append((done, total)))
    assert (cache.hits, cache.misses) == (FAMILY, FAMILY)
    assert steps[-1][0] == steps[-1][1]  # the controls read back still count towards the progress
    computed = build_profile(second, **SETTINGS, cache=False)
    assert same(cached, computed)  # every number, the family's included, as an uncached run gives them
    assert cached["summary"]["controls"]["count"] == FAMILY and cached["summary"].get("patterns") is not None


def test_another_size_or_family_is_computed_not_read(tmp_path, checkpoints) -> None:
    first, _ = checkpoints
    cache = ControlCache(tmp_path)
    build_profile(first, **SETTINGS, cache=cache)
    build_profile(first, **{**SETTINGS, "size": 160}, cache=cache)
    assert cache.hits == 0 and cache.misses == 2 * FAMILY
    build_profile(first, **{**SETTINGS, "control_seeds": 2}, cache=cache)  # seeds 0 are there, seeds 1 are not
    assert cache.hits == FAMILY and cache.misses == 3 * FAMILY


def test_a_damaged_entry_is_recomputed_never_trusted(tmp_path, checkpoints) -> None:
    first, second = checkpoints
    cache = ControlCache(tmp_path)
    build_profile(first, **SETTINGS, cache=cache)
    entries = sorted(cache.root.glob("*.safetensors"))
    entries[0].write_bytes(entries[0].read_bytes()[:100])  # cut short
    entries[1].write_bytes(b"\0" * entries[1].stat().st_size)  # overwritten
    again = ControlCache(tmp_path)
    profile = build_profile(second, **SETTINGS, cache=again)
    assert (again.hits, again.misses) == (FAMILY - 2, 2)
    assert same(profile, build_profile(second, **SETTINGS, cache=False))
    assert len(again.entries()) == FAMILY and all(entry.parts for entry in again.entries())  # rewritten whole


def test_network_scores_round_trip_keeps_dtypes() -> None:
    n, d = 5, 8
    image = ImageScores(
        auroc=torch.rand(n, d, dtype=torch.float64), pointing=torch.rand(n, d) > 0.5,
        pattern=torch.randint(0, 3, (n, d)), peak_ratio=torch.rand(n, d), pointing_chance=torch.rand(n),
        scored=torch.tensor([True, False, True, True, True]),
    )
    c = 2
    pattern = PatternScores(
        selectivity=torch.rand(d, dtype=torch.float64), selectivity_images=3, spread=torch.rand(d, dtype=torch.float64),
        categories=("cat", "dog"), category_auroc=torch.rand(c, d, dtype=torch.float64),
        category_images=torch.tensor([2, 4]), category_vs_others=torch.rand(c, d, dtype=torch.float64),
        versus_images=torch.tensor([1, 3]), iou=torch.rand(c, d, dtype=torch.float64),
        selectivity_each=torch.rand(n, d, dtype=torch.float64), spread_each=torch.rand(n, d, dtype=torch.float64),
    )
    for patterns in (None, (pattern, pattern)):
        tensors = network_tensors(((image, image), patterns))
        assert sorted(tensors) == sorted(tensor_names(patterns is not None))
        back = network_scores(tensors, ("cat", "dog"), patterns is not None)
        for got, want in zip(back[0], (image, image)):
            for name, value in vars(want).items():
                assert getattr(got, name).dtype == value.dtype and torch.equal(getattr(got, name), value)
        if patterns is not None:
            got = back[1][1]
            assert got.categories == ("cat", "dog") and got.selectivity_images == 3
            assert torch.equal(got.iou, pattern.iou) and got.category_images.dtype == pattern.category_images.dtype
        else:
            assert back[1] is None


def test_cache_command_and_no_cache(tmp_path, checkpoints, monkeypatch, capsys) -> None:
    first, second = checkpoints
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cli-cache"))
    options = ["--data", "scenes:6", "--size", "128", "--batch-size", "6", "--control-seeds", "1", "--quiet"]
    assert main(["profile", "--checkpoint", str(first), "--out", str(tmp_path / "a.json"), *options]) == 0
    assert f"0 read from the cache {tmp_path / 'cli-cache'}, 3 computed" in capsys.readouterr().out
    assert main(["profile", "--checkpoint", str(second), "--out", str(tmp_path / "b.json"), *options]) == 0
    assert "3 read from the cache" in capsys.readouterr().out
    assert main(["profile", "--checkpoint", str(second), "--out", str(tmp_path / "c.json"), "--no-cache", *options]) == 0
    assert "read from the cache" not in capsys.readouterr().out
    cached, computed = (json.loads((tmp_path / name).read_text()) for name in ("b.json", "c.json"))
    assert same(cached, computed)
    assert main(["cache", "list"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("3 cached controls in ") and listing.count("lewel_m resnet18 d=32 h=4") == 3
    assert {"torchvision seed 0", "pytorch seed 0", "trunc_normal seed 0"} <= {
        part.strip() for line in listing.splitlines()[1:] for part in line.split(",")
    }
    assert main(["cache", "clear"]) == 0 and "removed 3 cached controls" in capsys.readouterr().out
    assert main(["cache", "list", "--dir", str(tmp_path / "cli-cache")]) == 0
    assert capsys.readouterr().out.startswith("0 cached controls")
