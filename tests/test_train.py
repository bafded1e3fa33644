"""lewel train end to end on generated images (ResNet-18, 32-48 px, CPU)."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from conftest import needs_stamps, tiny_config
from image_factory import make_image_folder
from lewel import MapsUnavailableError, load_model
from lewel.cli import main
from lewel.data.folders import DataError, ImageFiles
from lewel.files.checkpoints import safe_load
from lewel.models import build_model
from lewel.train import TrainingDiverged
from lewel.train.config import TrainConfig
from lewel.train.loop import train
from lewel.train.optim import build_optimizer

METHODS = ["lewel_b", "lewel_b_eman", "lewel_m", "byol", "mocov2"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return make_image_folder(root / "train", per_class=8), make_image_folder(root / "val", per_class=4, seed=1)


def tiny_run(method: str, data, out, **overrides) -> TrainConfig:
    settings = dict(data=str(data), out=str(out), image_size=32, batch_size=8, epochs=1, workers=0, log_every=1, warmup_epochs=0.0)
    settings.update(overrides)
    return TrainConfig.for_method(method, model=tiny_config(method), **settings)


@pytest.mark.parametrize("method", METHODS)
def test_each_method_trains_and_its_checkpoint_opens(tmp_path, images, method):
    train_dir, val_dir = images
    summary = train(tiny_run(method, train_dir, tmp_path, epochs=2, val_data=str(val_dir), knn_every=1))
    assert summary["steps"] == 4 and summary["epochs"] == 2
    assert (tmp_path / "epoch_0002.pt").is_file() and (tmp_path / "last.pt").is_file()
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all({"loss_global", "lr", "momentum"} <= set(r) for r in steps)
    assert ("loss_aligned" in steps[0]) == method.startswith("lewel")
    assert len([r for r in records if "knn_top1" in r]) == 2
    assert any((tmp_path / "tensorboard").iterdir())
    model = load_model(tmp_path / "last.pt")
    out = model.extract(torch.randn(1, 3, 64, 64))
    if method.startswith("lewel"):
        assert out.maps.shape == (1, 32, 2, 2)
    else:
        with pytest.raises(MapsUnavailableError):
            out.maps
    state = safe_load(tmp_path / "last.pt")
    assert {"optimizer", "scaler", "rng", "config", "step", "epoch"} <= set(state)
    assert state["step"] == 4 and state["config"]["data"] == str(train_dir)


@pytest.mark.parametrize("method", METHODS)
def test_loss_falls_on_a_repeated_batch(method):
    config = tiny_config(method, queue_size=4096, aligned_queue_size=4096)
    model = build_model(config).train()
    optimizer = build_optimizer(model, "sgd", lr=0.05, weight_decay=0.0)
    view1, view2 = torch.randn(8, 3, 32, 32), torch.randn(8, 3, 32, 32)
    losses = []
    for _ in range(12):
        output = model(view1, view2)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        model.update_target(0.9)
        losses.append(output.loss.item())
    assert losses[-1] < losses[0] * 0.95, losses


def test_missing_empty_and_corrupt_data(tmp_path, images):
    with pytest.raises(DataError, match="does not exist"):
        train(tiny_run("byol", tmp_path / "nowhere", tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        train(tiny_run("byol", tmp_path / "empty", tmp_path / "out"))
    corrupt = make_image_folder(tmp_path / "corrupt", classes=1, per_class=8)
    (corrupt / "class0" / "3.png").write_bytes(b"this is not a png")
    with pytest.warns(RuntimeWarning, match=r"skipping unreadable image .*3\.png"):
        summary = train(tiny_run("byol", corrupt, tmp_path / "out"))
    assert summary["steps"] == 1
    assert main(["train", "--method", "byol", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2


def test_flat_folder_is_unlabelled(tmp_path):
    make_image_folder(tmp_path / "tree", classes=1, per_class=3)
    flat = tmp_path / "tree" / "class0"
    dataset = ImageFiles(flat)
    assert len(dataset) == 3 and not dataset.labelled and dataset[0][1] == -1


def test_nan_loss_stops_the_run_keeping_the_last_good_checkpoint(tmp_path, images):
    train_dir, _ = images
    config = tiny_run("mocov2", train_dir, tmp_path, epochs=40, optimizer="sgd", lr=1e25, save_every_steps=1)
    with pytest.raises(TrainingDiverged, match="loss became .* at step"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            train(config)
    state = safe_load(tmp_path / "last.pt")
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
    load_model(tmp_path / "last.pt")


def test_resume_refuses_another_model(tmp_path, images):
    train_dir, _ = images
    train(tiny_run("byol", train_dir, tmp_path))
    with pytest.raises(ValueError, match="different model"):
        train(tiny_run("mocov2", train_dir, tmp_path, resume="auto"))


def test_cli_train_with_a_recipe_and_overrides(tmp_path, images):
    train_dir, val_dir = images
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "method: lewel_m\nmodel: {backbone: resnet18, hidden_dim: 64, dim: 32, queue_size: 64, aligned_queue_size: 64}\n"
        "image_size: 32\nbatch_size: 8\nepochs: 3\nworkers: 0\n"
    )
    code = main(["train", "--config", str(recipe), "--data", str(train_dir), "--epochs", "1", "--out", str(tmp_path / "run"), "--num-groups", "8"])
    assert code == 0
    model = load_model(tmp_path / "run" / "last.pt")
    assert (model.method, model.h, model.d) == ("lewel_m", 8, 32)
    state = safe_load(tmp_path / "run" / "last.pt")
    assert state["config"]["epochs"] == 1 and state["step"] == 2
    assert main(["knn", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--train", str(train_dir), "--val", str(val_dir), "--image-size", "32", "--workers", "0"]) == 0
    assert main(["linear", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--train", str(train_dir), "--val", str(val_dir), "--image-size", "32", "--workers", "0", "--epochs", "2", "--batch-size", "8"]) == 0


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_runs(tmp_path, images, amp):
    train_dir, _ = images
    summary = train(tiny_run("lewel_b", train_dir, tmp_path, amp=amp))
    assert summary["steps"] == 2 and summary["loss"] == summary["loss"]  # finite, not NaN
    state = safe_load(tmp_path / "last.pt")
    assert state["scaler"]["scale"] > 0 if amp == "fp16" else state["scaler"] == {}
    assert load_model(tmp_path / "last.pt").has_maps


@pytest.mark.parametrize("stop", [1, 2])  # inside the first epoch, and at its end
def test_stop_after_steps_then_resume_equals_one_run(tmp_path, images, stop):
    train_dir, _ = images
    whole = train(tiny_run("lewel_b_eman", train_dir, tmp_path / "whole", epochs=2))
    first = train(tiny_run("lewel_b_eman", train_dir, tmp_path / "parts", epochs=2, stop_after_steps=stop))
    assert first["steps"] == stop and whole["steps"] == 4
    assert safe_load(tmp_path / "parts" / "last.pt")["step"] == stop
    rest = train(tiny_run("lewel_b_eman", train_dir, tmp_path / "parts", epochs=2, resume="auto"))
    assert rest["steps"] == 4
    a, b = (safe_load(tmp_path / n / "last.pt")["state_dict"] for n in ("whole", "parts"))
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def test_init_starts_a_fresh_run_from_a_model_file(tmp_path, images, monkeypatch):
    """--init copies a model file's backbone and head into the online and target encoders before step 1;
    a file of another shape is refused by name; a resumed run keeps its own weights."""
    train_dir, _ = images
    train(tiny_run("lewel_m", train_dir, tmp_path / "first"))
    source = load_model(tmp_path / "first" / "last.pt")
    seen = {}
    from lewel.train import loop

    original = loop._initialise

    def spy(run):
        original(run)
        seen["online"] = {k: v.clone() for k, v in run.model.online_encoder.backbone.state_dict().items()}
        seen["targets"] = [
            ({k: v.clone() for k, v in o.state_dict().items()}, {k: v.clone() for k, v in t.state_dict().items()})
            for o, t in run.model.momentum_pairs()
        ]

    monkeypatch.setattr(loop, "_initialise", spy)
    train(tiny_run("lewel_m", train_dir, tmp_path / "second", init=str(tmp_path / "first" / "last.pt")))
    for name, value in source.backbone.state_dict().items():
        assert torch.equal(seen["online"][name], value), name
    for online, target in seen["targets"]:
        assert all(torch.equal(online[k], target[k]) for k in online)
    with pytest.raises(ValueError, match="does not fit"):
        other = TrainConfig.for_method("lewel_m", model=tiny_config("lewel_m", dim=24), data=str(train_dir),
                                       out=str(tmp_path / "third"), image_size=32, batch_size=8, epochs=1, workers=0,
                                       init=str(tmp_path / "first" / "last.pt"))  # fmt: skip
        train(other)
    seen.clear()
    train(tiny_run("lewel_m", train_dir, tmp_path / "second", epochs=2, resume="auto", init=str(tmp_path / "first" / "last.pt")))
    assert not seen  # resumed: --init is not applied again


@needs_stamps
def test_cli_train_on_scenes_with_shared_backdrops(tmp_path, images):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "method: mocov2\nmodel: {backbone: resnet18, hidden_dim: 64, dim: 32, queue_size: 64}\n"
        "image_size: 32\nbatch_size: 4\nepochs: 1\nworkers: 0\n"
    )
    out = tmp_path / "run"
    assert main(["train", "--config", str(recipe), "--data", "scenes:4+textured:4", "--shared-backdrops", "2", "--out", str(out)]) == 0
    state = safe_load(out / "last.pt")
    assert state["config"]["shared_backdrops"] == 2 and state["step"] == 2
    with pytest.raises(ValueError, match="for generated scenes"):
        train(tiny_run("byol", images[0], tmp_path / "folder", shared_backdrops=2))
    with pytest.raises(ValueError, match="shared_backdrops must be >= 0"):
        tiny_run("byol", "scenes:4", tmp_path / "bad", shared_backdrops=-1).validate()
