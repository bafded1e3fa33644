"""The map monitor of ``lewel train``: scores and probe grids of the online network while it trains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import tiny_config
from image_factory import make_image_folder
from lewel.data.sources import SceneSource
from lewel.drawing.render import maps_grid
from lewel.inference import LewelModel
from lewel.models import build_model
from lewel.train.config import TrainConfig
from lewel.train.logging import png_to_array
from lewel.train.loop import train
from lewel.train.monitor import CALIBRATION_OFFSET, HELDOUT_OFFSET, MapMonitor, monitor_splits

MONITOR = dict(maps_images=6, maps_size=96, maps_controls=1)  # 3×3 maps on ResNet-18; 1 control per scheme


def scene_run(method: str, out: Path, **overrides) -> TrainConfig:
    settings = dict(
        data="scenes:32", val_data="scenes:16", out=str(out), image_size=32, batch_size=8, epochs=1, workers=0,
        log_every=1, warmup_epochs=0.0, **MONITOR,
    )
    settings.update(overrides)
    return TrainConfig.for_method(method, model=tiny_config(method), **settings)


def map_records(out: Path) -> list[dict]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if "maps" in r]


def tensorboard_tags(out: Path) -> tuple[dict[str, list[int]], dict[str, int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    scalars = {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    images = {tag: len(events.Images(tag)) for tag in events.Tags()["images"]}
    return scalars, images


def test_lewel_run_logs_the_object_maps_auroc_and_a_probe_grid(tmp_path):
    train(scene_run("lewel_m", tmp_path, epochs=2, maps_every=2, maps_controls=2))  # 4 steps per epoch
    records = map_records(tmp_path)
    assert [r["step"] for r in records] == [0, 2, 4, 6, 8]  # step 0: the random initialisation
    assert records[0]["maps"]["verdict"] == "not better than random"  # the random initialisation is one of many
    for record in records:  # every pass is judged against the same 2 × 3 controls, scored once
        assert record["maps"]["controls"] == 6 and record["maps"]["verdict"] in ("localises", "not better than random")
        assert record["maps"]["random_bound"] >= record["maps"]["best_control"]["object_auroc"]
    assert len({r["maps"]["random_bound"] for r in records}) == 1
    for record in records:
        scores = record["maps"]
        assert 0.0 <= scores["object_auroc"] <= 1.0 and 0.0 <= scores["object_pointing"] <= 1.0
        assert 0.0 < scores["pointing_chance"] < 1.0 and scores["heldout_images"] > 0
        assert len(scores["object_maps"]) == 4 and all(0 <= m < 32 for m in scores["object_maps"])  # ceil(10 % of 32)
        assert scores["seconds"] > 0
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == [f"step_{s:07d}.png" for s in (0, 2, 4, 6, 8)]
    grid = png_to_array((tmp_path / "maps" / "step_0000008.png").read_bytes())
    assert grid.ndim == 3 and grid.shape[2] == 3 and grid.std() > 10  # a picture, not a blank canvas
    scalars, images = tensorboard_tags(tmp_path)
    assert scalars["maps/object_auroc"] == [0, 2, 4, 6, 8]
    assert {"maps/object_pointing", "maps/pointing_chance", "maps/all_maps_auroc"} <= set(scalars)
    assert images["maps/probes"] == 5


def test_the_monitor_leaves_training_unchanged(tmp_path):
    """No random numbers drawn, no BatchNorm statistics moved, training mode restored: the same weights."""
    for name, every in (("on", 2), ("off", 0)):
        train(scene_run("lewel_b_eman", tmp_path / name, epochs=1, maps_every=every))
    on, off = (torch.load(tmp_path / n / "last.pt", weights_only=True)["state_dict"] for n in ("on", "off"))
    assert on.keys() == off.keys()
    assert all(torch.equal(on[k], off[k]) for k in on)
    assert map_records(tmp_path / "on") and not (tmp_path / "off" / "maps").exists()


def test_baselines_and_resumed_runs(tmp_path):
    train(scene_run("byol", tmp_path / "byol", maps_every=2))
    assert not map_records(tmp_path / "byol") and not (tmp_path / "byol" / "maps").exists()
    train(scene_run("lewel_m", tmp_path / "m", epochs=1, maps_every=4))
    train(scene_run("lewel_m", tmp_path / "m", epochs=2, maps_every=4, resume="auto"))
    assert [r["step"] for r in map_records(tmp_path / "m")] == [0, 4, 8]  # no second step-0 pass on resume


def test_validation_data_without_masks_gives_grids_only(tmp_path):
    folder = make_image_folder(tmp_path / "val", per_class=2)
    assert monitor_splits(str(folder), images=4, size=64, seed=0) is None
    assert monitor_splits(None, images=4, size=64, seed=0) is None
    train(scene_run("lewel_m", tmp_path / "run", val_data=str(folder), maps_every=4))
    records = map_records(tmp_path / "run")
    assert [r["step"] for r in records] == [0, 4] and set(records[0]["maps"]) == {"seconds"}
    assert len(list((tmp_path / "run" / "maps").iterdir())) == 2


def test_splits_come_from_the_validation_side_and_masked_folders(tmp_path):
    calibration, heldout = monitor_splits("scenes:99", images=5, size=64, seed=3)
    assert (calibration.seed, heldout.seed) == (3 + CALIBRATION_OFFSET, 3 + HELDOUT_OFFSET)
    assert len(calibration) == len(heldout) == 5
    root = tmp_path / "masked"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(4):
        Image.new("RGB", (40, 40), (i * 40, 0, 0)).save(root / "images" / f"{i}.png")
        mask = np.zeros((40, 40), np.uint8)
        mask[:20, :20] = 255
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    calibration, heldout = monitor_splits(str(root), images=8, size=64, seed=0)
    assert len(calibration) == len(heldout) == 2


def test_object_maps_are_chosen_on_calibration_only():
    model = build_model(tiny_config("lewel_m"))
    encoder = model.online_encoder
    network = LewelModel(encoder.backbone, encoder.neck, config=tiny_config("lewel_m"))
    calibration = SceneSource(6, 96, 11)
    first = MapMonitor((calibration, SceneSource(6, 96, 12)), size=96).measure(network)[0]
    second = MapMonitor((calibration, SceneSource(6, 96, 13)), size=96).measure(network)[0]
    assert first["object_maps"] == second["object_maps"]
    assert first["object_auroc"] != second["object_auroc"]


def test_config_checks_the_monitor_settings():
    for field, value in (("maps_every", -1), ("maps_images", 1), ("maps_size", 16), ("maps_controls", -1)):
        with pytest.raises(ValueError, match=field):
            TrainConfig(data="scenes:8", **{field: value}).validate()


def test_maps_grid_draws_a_row_per_image():
    images = [Image.new("RGB", (32, 32), (200, 10, 10)), Image.new("RGB", (32, 32), (10, 200, 10))]
    maps = torch.rand(2, 3, 4, 4)
    figure = maps_grid(images, maps, [["a", "b", "c"]] * 2, row_titles=["one", "two"], title="step 0")
    picture_axes = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title() for ax in picture_axes] == ["one", "a", "b", "c", "two", "a", "b", "c"]
    assert len(figure.axes) == 8 + 6  # and one colour bar per map
