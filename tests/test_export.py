"""Exports: torchvision (strict), detectron2 pickle, safetensors round trip; the CLI end to end."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torchvision import models

from checkpoint_factory import our_training_file, tiny_authors_file
from conftest import tiny_config
from lewel import load_model
from lewel.cli import main
from lewel.export import detectron2_name, export_detectron2, export_safetensors, export_torchvision


@pytest.fixture(scope="module")
def lewel_m_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("export") / "lewel_m.pth"
    our_training_file(path, tiny_config("lewel_m"))
    return path


def assert_loads_into_torchvision(path: Path, name: str, backbone: torch.nn.Module) -> None:
    net = getattr(models, name)(weights=None)
    result = net.load_state_dict(torch.load(path, weights_only=True), strict=False)
    assert sorted(result.missing_keys) == ["fc.bias", "fc.weight"]
    assert result.unexpected_keys == []
    net.fc = torch.nn.Identity()
    net.eval(), backbone.eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(images), backbone(images).mean(dim=(2, 3)))


def test_torchvision_export_resnet18(tmp_path, lewel_m_file):
    model = load_model(lewel_m_file)
    export_torchvision(model, tmp_path / "r18.pth")
    assert_loads_into_torchvision(tmp_path / "r18.pth", "resnet18", model.backbone)


def test_torchvision_export_resnet50(tmp_path):
    config = tiny_config("lewel_b", backbone="resnet50")
    tiny_authors_file(tmp_path / "authors.pth", config)
    model = load_model(tmp_path / "authors.pth")
    export_torchvision(model, tmp_path / "r50.pth")
    assert_loads_into_torchvision(tmp_path / "r50.pth", "resnet50", model.backbone)


def test_detectron2_names():
    assert detectron2_name("conv1.weight") == "stem.conv1.weight"
    assert detectron2_name("bn1.running_var") == "stem.conv1.norm.running_var"
    assert detectron2_name("layer1.0.conv1.weight") == "res2.0.conv1.weight"
    assert detectron2_name("layer1.0.bn3.bias") == "res2.0.conv3.norm.bias"
    assert detectron2_name("layer4.2.bn2.weight") == "res5.2.conv2.norm.weight"
    assert detectron2_name("layer2.0.downsample.0.weight") == "res3.0.shortcut.weight"
    assert detectron2_name("layer2.0.downsample.1.running_mean") == "res3.0.shortcut.norm.running_mean"


def test_detectron2_export(tmp_path, lewel_m_file):
    model = load_model(lewel_m_file)
    export_detectron2(model, tmp_path / "r18.pkl")
    with (tmp_path / "r18.pkl").open("rb") as handle:
        payload = pickle.load(handle)  # noqa: S301 - our own file, written just above
    assert payload["matching_heuristics"] is True and "__author__" in payload
    weights = payload["model"]
    state = model.backbone.state_dict()
    assert len(weights) == len([k for k in state if not k.endswith("num_batches_tracked")])
    assert all(isinstance(v, np.ndarray) for v in weights.values())
    np.testing.assert_array_equal(weights["stem.conv1.weight"], state["conv1.weight"].numpy())
    np.testing.assert_array_equal(weights["res5.1.conv2.norm.running_var"], state["layer4.1.bn2.running_var"].numpy())
    np.testing.assert_array_equal(weights["res3.0.shortcut.norm.weight"], state["layer2.0.downsample.1.weight"].numpy())


@pytest.mark.parametrize("half", [False, True])
def test_safetensors_round_trip(tmp_path, lewel_m_file, half):
    model = load_model(lewel_m_file)
    path = export_safetensors(model, tmp_path / "model.safetensors", half=half)
    with safe_open(str(path), framework="pt") as handle:
        assert json.loads(handle.metadata()["config"])["method"] == "lewel_m"
        assert handle.get_tensor("neck.proj.mlp.0.weight").dtype == (torch.float16 if half else torch.float32)
    again = load_model(path)
    assert again.config == model.config and again.kind == "lewel-inference"
    images = torch.randn(2, 3, 64, 64)
    tolerance = dict(atol=2e-3, rtol=0) if half else dict(atol=0, rtol=0)
    torch.testing.assert_close(again.extract(images).maps, model.extract(images).maps, **tolerance)


def test_safetensors_of_a_bare_backbone(tmp_path):
    torch.save(models.resnet18(weights=None).state_dict(), tmp_path / "bb.pth")
    export_safetensors(load_model(tmp_path / "bb.pth"), tmp_path / "bb.safetensors")
    assert not load_model(tmp_path / "bb.safetensors").has_maps


def test_cli_info_and_export(tmp_path, lewel_m_file, capsys):
    assert main(["info", str(lewel_m_file)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["method"], info["d"], info["h"]) == ("lewel_m", 32, 4)
    for fmt, name in [("torchvision", "tv.pth"), ("detectron2", "d2.pkl"), ("safetensors", "m.safetensors")]:
        assert main(["export", str(lewel_m_file), "--format", fmt, "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).stat().st_size > 0
    assert main(["info", str(tmp_path / "missing.pth")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_console_script_end_to_end(tmp_path, lewel_m_file):
    lewel = Path(sys.executable).parent / "lewel"
    result = subprocess.run(
        [str(lewel), "export", str(lewel_m_file), "--format", "safetensors", "--half", "--out", str(tmp_path / "m.safetensors")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert load_model(tmp_path / "m.safetensors").has_maps
    bad = subprocess.run([str(lewel), "export", str(lewel_m_file), "--format", "onnx", "--out", "x"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
