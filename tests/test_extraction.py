"""Batch extraction (``lewel maps``): shards and index, unreadable files, resuming, and torchrun with 2 processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_factory import our_training_file
from conftest import tiny_config
from image_factory import make_image_folder
from PIL import Image
from test_cli import run_probe

from lewel import cli
from lewel.data.sources import FolderSource
from lewel.inference import MapsUnavailableError, load_model
from lewel.maps import map_statistics
from lewel.maps.extraction import extract_maps
from lewel.maps.shards import CONFIG_NAME, INDEX_NAME, STATISTICS, iter_shards, read_index, shard_name
from lewel.views import PRESETS, make_views, view_seed, views_batch

BIN = Path(sys.executable).parent
SETTINGS = dict(size=64, views=1, preset="cropflip", seed=3, shard_size=4, batch_size=3, workers=0, device="cpu")
CORRUPT = ("class0/broken.png", "class1/truncated.png")


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    """A tiny LEWEL_B checkpoint, 12 readable images in 2 classes plus 2 corrupt ones, and a reference run."""
    root = tmp_path_factory.mktemp("extraction")
    checkpoint = root / "tiny.pt"
    torch.manual_seed(0)
    our_training_file(checkpoint, tiny_config("lewel_b"))
    data = make_image_folder(root / "data", per_class=6, size=40)
    Image.new("RGB", (80, 30), (200, 10, 10)).save(data / "class0" / "wide.jpg")
    (data / CORRUPT[0]).write_bytes(b"this is not an image")
    (data / CORRUPT[1]).write_bytes((data / "class1" / "0.png").read_bytes()[:60])
    reference = root / "reference"
    extract_maps(checkpoint, str(data), reference, **SETTINGS)
    return {"root": root, "checkpoint": checkpoint, "data": data, "reference": reference}


def shard_arrays(out: Path) -> dict[str, np.ndarray]:
    """All shards' arrays concatenated along the image axis."""
    parts = list(iter_shards(out))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def test_every_image_once_corrupt_files_skipped_and_listed(setup):
    index = read_index(setup["reference"])
    source = FolderSource(setup["data"])
    assert index["images"] == len(source) == 15
    assert sorted(entry["id"] for entry in index["skipped"]) == sorted(CORRUPT)
    assert all(entry["reason"] for entry in index["skipped"])
    arrays = shard_arrays(setup["reference"])
    assert index["extracted"] == len(arrays["ids"]) == 13
    listed = list(arrays["ids"]) + [entry["id"] for entry in index["skipped"]]
    assert sorted(listed) == sorted(source.ids)  # no image missing, none twice
    assert list(arrays["index"]) == sorted(arrays["index"])
    assert [s["file"] for s in index["shards"]] == [shard_name(i) for i in range(4)]
    assert sum(s["count"] for s in index["shards"]) == 15
    d, grid = index["model"]["d"], tuple(index["grid"])
    assert arrays["maps"].dtype == np.float16 and arrays["maps"].shape == (13, 2, d, *grid)
    np.testing.assert_allclose(arrays["maps"].astype(np.float64).sum(axis=(-2, -1)), 1.0, atol=2e-3)
    assert all(arrays[f"stat_{name}"].shape == (13, 2, d) for name in STATISTICS)
    assert "coverage" not in arrays  # no masks in a plain ImageFolder tree
    wide = list(arrays["ids"]).index("class0/wide.jpg")
    assert tuple(arrays["sizes"][wide]) == (80, 30) and tuple(arrays["boxes"][wide, 0]) == (0, 0, 80, 30)
    assert set(arrays["labels"]) == {0, 1} and index["data"]["classes"] == ["class0", "class1"]


def test_shards_hold_what_the_library_computes_for_one_image(setup):
    arrays = shard_arrays(setup["reference"])
    source = FolderSource(setup["data"])
    model = load_model(setup["checkpoint"])
    for row in (0, 7):
        position = int(arrays["index"][row])
        sample = source.load(position)
        image, label = sample.image, sample.label
        views = make_views(image, count=1, preset="cropflip", size=64, seed=view_seed(3, position))
        maps = model.extract(views_batch(views), aligned_projection=False).maps
        np.testing.assert_allclose(arrays["maps"][row].astype(np.float32), maps.numpy(), atol=1e-3, rtol=0)
        assert [tuple(b) for b in arrays["boxes"][row]] == [v.box for v in views]
        assert list(arrays["flips"][row]) == [v.flip for v in views]
        assert arrays["labels"][row] == label
        stats = map_statistics(maps)
        np.testing.assert_allclose(arrays["stat_peak_ratio"][row], stats.peak_ratio.numpy(), rtol=1e-5)
        np.testing.assert_array_equal(arrays["stat_pattern"][row], stats.pattern.numpy())


def test_interrupted_run_resumes_without_recomputing_written_shards(setup, tmp_path):
    out = tmp_path / "out"
    calls = []

    def stop_after_two_shards(done: int, total: int) -> None:
        calls.append(done)
        if done >= 8:
            raise KeyboardInterrupt  # as a kill would, between two shards

    with pytest.raises(KeyboardInterrupt):
        extract_maps(setup["checkpoint"], str(setup["data"]), out, **SETTINGS, progress=stop_after_two_shards)
    assert not (out / INDEX_NAME).exists() and (out / CONFIG_NAME).exists()
    written = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.npz")}
    # shards 0 and 1 were reported; shard 2 may have been in a writer thread then, shard 3 cannot have been
    assert {"shard_00000.npz", "shard_00001.npz"} <= set(written) <= {f"shard_0000{i}.npz" for i in range(3)}
    seen = []
    extract_maps(setup["checkpoint"], str(setup["data"]), out, **SETTINGS, progress=lambda done, total: seen.append(done))
    assert seen[0] == 4 * len(written) and seen[-1] == 15  # the shards on disk count as done from the start
    assert {name: (out / "shards" / name).stat().st_mtime_ns for name in written} == written
    resumed, reference = shard_arrays(out), shard_arrays(setup["reference"])
    assert resumed.keys() == reference.keys()
    for name, value in reference.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)
    assert read_index(out)["skipped"] == read_index(setup["reference"])["skipped"]


def test_deleted_index_and_unfinished_shard_are_redone(setup, tmp_path):
    out = tmp_path / "out"
    extract_maps(setup["checkpoint"], str(setup["data"]), out, **SETTINGS)
    before = read_index(out)
    (out / INDEX_NAME).unlink()
    (out / shard_name(2)).unlink()
    leftover = out / "shards" / ".shard_00002.npz.abcd1234.tmp"  # what a kill during a write leaves
    leftover.write_bytes(b"half a shard")
    kept = (out / shard_name(1)).stat().st_mtime_ns
    extract_maps(setup["checkpoint"], str(setup["data"]), out, **SETTINGS)
    assert not leftover.exists() and (out / shard_name(1)).stat().st_mtime_ns == kept
    assert read_index(out) == before
    for name, value in shard_arrays(setup["reference"]).items():
        np.testing.assert_array_equal(shard_arrays(out)[name], value, err_msg=name)


def test_other_settings_in_the_same_folder_are_refused(setup):
    with pytest.raises(ValueError, match="another extraction"):
        extract_maps(setup["checkpoint"], str(setup["data"]), setup["reference"], **{**SETTINGS, "views": 2})


def test_model_without_maps_is_refused(setup, tmp_path):
    byol = tmp_path / "byol.pt"
    our_training_file(byol, tiny_config("byol"))
    with pytest.raises(MapsUnavailableError, match="no maps"):
        extract_maps(byol, str(setup["data"]), tmp_path / "out", size=64, device="cpu")
    assert cli.main(["maps", "--checkpoint", str(byol), "--data", str(setup["data"]), "--out", str(tmp_path / "o"),
                     "--size", "64", "--workers", "0", "--device", "cpu", "--quiet"]) == 2


def test_torchrun_two_processes_write_the_same_maps_as_one(setup, tmp_path):
    out = tmp_path / "parallel"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    command = [
        str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "lewel.cli", "maps",
        "--checkpoint", str(setup["checkpoint"]), "--data", str(setup["data"]), "--out", str(out),
        "--size", "64", "--views", "1", "--preset", "cropflip", "--seed", "3", "--shard-size", "4",
        "--batch-size", "3", "--workers", "0", "--device", "cpu", "--quiet",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "wrote the maps of 13 images in 4 shards" in done.stdout
    index, reference = read_index(out), read_index(setup["reference"])
    assert index["skipped"] == reference["skipped"] and index["shards"] == reference["shards"]
    parallel, single = shard_arrays(out), shard_arrays(setup["reference"])
    for name, value in single.items():
        if name == "maps" or (name.startswith("stat_") and value.dtype.kind == "f"):
            np.testing.assert_allclose(parallel[name], value, atol=1e-3, rtol=1e-3, err_msg=name)
        elif name not in ("stat_pattern", "stat_blobs"):  # heuristics that a rounding difference may flip
            np.testing.assert_array_equal(parallel[name], value, err_msg=name)


def test_cli_help_loads_no_torch_and_presets_match():
    assert run_probe(["maps", "--help"]) == {"code": 0, "heavy": []}
    assert run_probe(["atlas", "--help"]) == {"code": 0, "heavy": []}
    parser = cli.build_parser()
    commands = next(action for action in parser._actions if action.dest == "command")
    preset = next(action for action in commands.choices["maps"]._actions if action.dest == "preset")
    assert tuple(preset.choices) == PRESETS
    for name in ("maps", "atlas"):
        for action in commands.choices[name]._actions:
            if action.dest != "help" and not action.required and action.option_strings:
                assert "default" in action.help, (name, action.option_strings)


def test_an_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        FolderSource(tmp_path / "empty")
