"""``lewel eval-maps`` end to end on a tiny LEWEL_B checkpoint and a tiny scenes tree; the README commands."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision import models

from checkpoint_factory import our_training_file
from conftest import needs_stamps, tiny_config
from lewel import load_model
from lewel.cli import main
from lewel.data.scenes import read_scenes
from lewel.maps import PATTERNS, score_maps
from lewel.maps.evaluation import evaluate_maps
from lewel.maps.profiles import patterns_line
from lewel.views.augmentations import eval_transform

pytestmark = needs_stamps
README = Path(__file__).parent.parent / "README.md"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("eval_maps") / "lewel_b.pth"
    our_training_file(path, tiny_config("lewel_b"))
    return path


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval_maps") / "scenes"
    assert main(["data", "scenes", "--out", str(out), "--train", "2", "--val", "6", "--size", "64", "--seed", "1"]) == 0
    return out


def test_eval_maps_cli_writes_the_scores(checkpoint, scenes, tmp_path, capsys):
    out = tmp_path / "maps.json"
    argv = ["eval-maps", "--checkpoint", str(checkpoint), "--data", str(scenes), "--size", "64", "--batch-size", "4"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "object-mass ratio" in printed and "pointing game" in printed and str(out) in printed
    result = json.loads(out.read_text())
    assert (result["method"], result["d"], result["h"], result["grid"]) == ("lewel_b", 32, 4, [2, 2])
    assert (result["images"], result["maps_per_image"], result["split"], result["size"]) == (6, 32, "val", 64)
    assert set(result["patterns"]) == set(PATTERNS) and sum(result["patterns"].values()) == pytest.approx(1.0)
    assert 0 < result["object_share"] < 1
    assert 0 <= result["pointing_game"] <= 1 and 0 <= result["pointing_chance"] <= 1
    # a freshly initialised network spreads its maps: the ratio is about that of a uniform map
    assert 0.5 < result["object_mass_ratio"] < 2
    assert len(result["per_map"]["object_mass_ratio"]) == 32 and len(result["groups"]) == 4
    assert [g["maps"] for g in result["groups"]] == [[0, 8], [8, 16], [16, 24], [24, 32]]
    assert set(result["statistics"]) >= {"entropy", "normalized_entropy", "peak", "top_mass", "blobs"}
    assert len(result["per_map"]["auroc"]) == 32 and result["auroc_images"] + result["auroc_skipped"] == 6
    assert "larger --size" in result["profile"]["error"]  # 2×2 cells at 64 px: the profile says why it is missing
    assert "map profile" in printed and "not computed" in printed
    assert result["thresholds"]["blob_threshold"] == 0.5


def test_eval_maps_prints_the_profile_summary(checkpoint, scenes, tmp_path, capsys):
    out = tmp_path / "maps.json"
    argv = ["eval-maps", "--checkpoint", str(checkpoint), "--data", str(scenes), "--size", "128", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "held-out AUROC of the object maps" in printed and "random control" in printed
    profile = json.loads(out.read_text())["profile"]
    assert profile["data"]["calibration"]["images"] == 3 and profile["data"]["heldout"]["images"] == 3
    assert profile["summary"]["verdict"] in ("localises", "not better than random")
    assert 0 <= profile["summary"]["object_auroc"] <= 1
    assert profile["version"] == 4 and profile["summary"]["patterns"] is not None  # the scenes tell instances apart
    assert f"measured patterns: {patterns_line(profile['summary'])}" in printed  # next to the controls'
    assert f"dissection: {profile['summary']['dissection']['line']}" in printed


def test_evaluate_maps_matches_scoring_by_hand(checkpoint, scenes):
    result = evaluate_maps(checkpoint, scenes, size=64, batch_size=4)
    model = load_model(checkpoint)
    records = read_scenes(scenes).records("val")
    transform = eval_transform(64)
    images = []
    for record in records:
        with Image.open(record.image) as image:
            images.append(transform(image))
    masks = torch.stack([torch.from_numpy(r.load_masks().any(axis=0)) for r in records])
    scores = score_maps(model.extract(torch.stack(images)).maps, masks)
    assert result["object_mass_ratio"] == pytest.approx(scores.object_mass_ratio.mean().item(), rel=1e-5)
    assert result["pointing_game"] == pytest.approx(scores.pointing_hit.double().mean().item())
    assert result["object_share"] == pytest.approx(masks.double().mean().item())
    train = evaluate_maps(checkpoint, scenes, split="train", size=64)
    assert train["images"] == 2 and train["object_share"] != result["object_share"]


def test_a_bare_backbone_has_no_maps_to_score(scenes, tmp_path, capsys):
    torch.save(models.resnet18(weights=None).state_dict(), tmp_path / "backbone.pth")
    argv = ["eval-maps", "--checkpoint", str(tmp_path / "backbone.pth"), "--data", str(scenes), "--size", "64"]
    assert main([*argv, "--out", str(tmp_path / "maps.json")]) == 2
    error = capsys.readouterr().err
    assert "no alignment maps" in error and "coupled head" in error
    assert not (tmp_path / "maps.json").exists()
    assert main(["eval-maps", "--checkpoint", str(tmp_path / "backbone.pth"), "--data", str(tmp_path)]) == 2
    assert "lewel data scenes" in capsys.readouterr().err


def test_readme_commands_run(checkpoint, tmp_path, monkeypatch):
    """Every command of the README's scenes section, with fewer scenes so that it stays quick."""
    text = README.read_text()
    section = text[text.index("## Multi-object scenes and map scores") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line.split("  #")[0] for line in block.splitlines() if line.startswith("lewel ")]
    assert [c.split()[1] for c in commands] == ["data", "eval-maps"]
    monkeypatch.chdir(tmp_path)
    for command in commands:
        command = re.sub(r"--(train|val) \d+", lambda m: f"--{m.group(1)} 3", command)
        argv = shlex.split(command.replace("CHECKPOINT", str(checkpoint)))[1:]
        assert main(argv) == 0, command
    result = json.loads((tmp_path / "maps.json").read_text())
    assert result["images"] == 3 and result["grid"] == [7, 7]
    assert result["profile"]["data"]["heldout"]["kind"] == "masked-folder"  # the folder named scenes, not generated scenes
