"""AUROC of maps against masks, role selection on calibration data only, and the profile sidecar."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from checkpoint_factory import our_training_file
from conftest import tiny_config
from PIL import Image
from sklearn.metrics import roc_auc_score

from lewel.inference import load_model
from lewel.maps import cell_labels, map_auroc, object_coverage, score_maps, summarize_scores
from lewel.maps.controls import random_like
from lewel.maps.profiles import (
    PROFILE_FORMAT,
    ImageScores,
    PreparedImages,
    ProfileError,
    build_profile,
    find_profile,
    format_profile,
    profile_data,
    read_profile,
    select_roles,
    sidecar_path,
    summarize_profile,
    write_profile,
)


def _mask(h: int = 4, w: int = 4) -> torch.Tensor:
    mask = torch.zeros(h, w)
    mask[1:3, 0:2] = 1
    return mask


def test_auroc_of_mask_complement_and_constant() -> None:
    mask = _mask()
    maps = torch.stack([mask + 0.01, (1 - mask) + 0.01, torch.ones(4, 4)])[None]
    auroc = map_auroc(maps, mask[None])
    assert auroc.tolist() == [[1.0, 0.0, 0.5]]


def test_auroc_equals_sklearn_on_random_maps() -> None:
    generator = torch.Generator().manual_seed(3)
    coverage = torch.rand(5, 6, 6, generator=generator)
    maps = torch.rand(5, 7, 6, 6, generator=generator)
    maps[0, 0, 0, :3] = maps[0, 0, 0, 3]  # ties count half in both
    auroc = map_auroc(maps, coverage)
    labels = cell_labels(coverage)
    for image in range(5):
        keep = labels[image].flatten() >= 0
        truth = labels[image].flatten()[keep].numpy()
        for m in range(7):
            values = (maps[image, m] / maps[image, m].sum()).flatten()[keep].numpy()
            assert auroc[image, m].item() == pytest.approx(roc_auc_score(truth, values), abs=1e-12)


def test_cells_in_between_are_ignored_and_images_without_both_kinds_skipped() -> None:
    coverage = torch.tensor([[[0.6, 0.3], [0.05, 0.3]], [[1.0, 1.0], [1.0, 0.3]]])
    maps = torch.tensor([[[[2.0, 9.0], [1.0, 9.0]]], [[[1.0, 2.0], [3.0, 4.0]]]])
    auroc = map_auroc(maps, coverage)
    assert auroc[0, 0].item() == 1.0  # the 0.3 cells (holding the maximum) are neither object nor background
    assert math.isnan(auroc[1, 0].item())  # no background cell
    assert cell_labels(coverage)[0].tolist() == [[1, -1], [0, -1]]


def test_auroc_is_scale_free_unlike_the_object_mass_ratio() -> None:
    mask = torch.zeros(1, 64, 64)
    mask[0, 16:48, 16:48] = 1
    coverage = object_coverage(mask, (4, 4))
    near_uniform = 1 + 0.01 * coverage[:, None]  # within 1 % of uniform, but peaked on the object
    scores = score_maps(near_uniform, mask)
    assert scores.auroc.item() == 1.0
    assert scores.object_mass_ratio.item() == pytest.approx(1.0, abs=0.01)
    summary = summarize_scores(scores)
    assert summary["auroc"] == 1.0 and summary["auroc_images"] == 1 and summary["auroc_skipped"] == 0


def _scores(auroc: torch.Tensor) -> ImageScores:
    n, d = auroc.shape
    return ImageScores(
        auroc=auroc.to(torch.float64),
        pointing=auroc > 0.5,
        pattern=torch.zeros(n, d, dtype=torch.int64),
        peak_ratio=torch.ones(n, d, dtype=torch.float64),
        pointing_chance=torch.full((n,), 0.2, dtype=torch.float64),
        scored=torch.ones(n, dtype=torch.bool),
    )


def test_select_roles_best_first_and_disjoint() -> None:
    objects, backgrounds = select_roles(torch.tensor([0.5, 0.9, 0.1, 0.7, 0.5, 0.3, 0.8, 0.6, 0.2, 0.4]), 0.2)
    assert objects == [1, 6] and backgrounds == [2, 8]
    assert select_roles(torch.tensor([0.7]), 0.1) == ([0], [])


def test_selection_uses_calibration_only() -> None:
    generator = torch.Generator().manual_seed(0)
    noise = 0.05 * torch.rand(40, 20, generator=generator)
    calibration = noise + 0.5
    calibration[:, 3] += 0.4  # index 3 looks like an object map on calibration ...
    heldout = noise + 0.5
    heldout[:, 7] += 0.4  # ... index 7 on the held-out split
    control = _scores(torch.full((40, 20), 0.5, dtype=torch.float64))
    controls = [({"scheme": "torchvision", "seed": 0}, control, control)]
    summary, records = summarize_profile(_scores(calibration), _scores(heldout), controls, fraction=0.05)
    assert summary["object_maps"] == [3]  # a selection that saw the held-out data would pick 7
    assert records[3]["role"] == "object" and records[7]["role"] == "mixed"
    assert summary["object_auroc"] == pytest.approx(float(heldout[:, 3].mean()))
    assert summary["object_auroc_calibration"] == pytest.approx(float(calibration[:, 3].mean()))
    flipped, _ = summarize_profile(_scores(heldout), _scores(calibration), controls, fraction=0.05)
    assert flipped["object_maps"] == [7]


def _family(generator: torch.Generator, levels: list[float]) -> list[tuple[dict, ImageScores, ImageScores]]:
    """Controls whose maps all score about ``level`` on 30 images (one control per level, two schemes)."""
    family = []
    for k, level in enumerate(levels):
        scores = _scores(level + 0.05 * torch.rand(30, 10, generator=generator, dtype=torch.float64))
        family.append(({"scheme": ("torchvision", "pytorch")[k % 2], "seed": k // 2}, scores, scores))
    return family


def test_verdict_compares_with_the_best_control_per_image() -> None:
    generator = torch.Generator().manual_seed(1)
    controls = _family(generator, [0.6, 0.62, 0.61, 0.63, 0.6, 0.62])
    better = _scores(0.85 + 0.05 * torch.rand(30, 10, generator=generator, dtype=torch.float64))
    same = _scores(0.6 + 0.05 * torch.rand(30, 10, generator=generator, dtype=torch.float64))
    good, _ = summarize_profile(better, better, controls)
    assert good["verdict"] == "localises" and good["difference"]["ci95"][0] > good["difference"]["spread_allowance"]
    assert good["random_control"]["object_auroc"] == max(c["object_auroc"] for c in good["controls"]["each"])
    assert good["controls"]["count"] == 6 and set(good["controls"]["by_scheme"]) == {"torchvision", "pytorch"}
    plain, _ = summarize_profile(same, same, controls)
    assert plain["verdict"] == "not better than random"


def test_verdict_needs_more_than_beating_the_best_control_when_controls_spread() -> None:
    """A model above every control on every image is still not called localising when the controls' spread
    says another random network could score as high."""
    generator = torch.Generator().manual_seed(2)
    controls = _family(generator, [0.55, 0.70, 0.60, 0.80, 0.65, 0.75])
    model = _scores(0.83 + 0.05 * torch.rand(30, 10, generator=generator, dtype=torch.float64))
    summary, _ = summarize_profile(model, model, controls)
    assert summary["difference"]["ci95"][0] > 0  # the paired interval alone would say "localises"
    assert summary["difference"]["spread_allowance"] > summary["difference"]["ci95"][0]
    assert summary["verdict"] == "not better than random"


@pytest.mark.parametrize("scheme", ["torchvision", "pytorch", "trunc_normal"])
def test_random_like_is_a_seeded_network_of_the_same_shape(tiny_checkpoint: str, scheme: str) -> None:
    model = load_model(tiny_checkpoint)
    first, second = random_like(model, 0, scheme), random_like(model, 0, scheme)
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in first.state_dict().items()} == shapes
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True))
    other = random_like(model, 1, scheme)
    assert not torch.equal(first.backbone.state_dict()["conv1.weight"], other.backbone.state_dict()["conv1.weight"])
    assert first.config == model.config and not first.training


def test_profile_round_trip_and_sidecar(tiny_checkpoint: str) -> None:
    profile = build_profile(tiny_checkpoint, data="scenes:6", size=128, batch_size=6)
    assert profile["format"] == PROFILE_FORMAT and len(profile["maps"]) == 32
    assert profile["data"]["grid"] == [4, 4]
    summary = profile["summary"]
    assert len(summary["object_maps"]) == 4 and len(summary["background_maps"]) == 4
    assert {r["role"] for r in profile["maps"]} == {"object", "background", "mixed"}
    assert summary["verdict"] in ("localises", "not better than random")
    assert profile["version"] == 4 and summary["controls"]["count"] == 15
    assert "best random network" in format_profile(profile) and "15 random networks" in format_profile(profile)
    path = write_profile(profile, sidecar_path(tiny_checkpoint))
    assert path.name == "tiny_m.profile.json"
    assert find_profile(tiny_checkpoint, d=32) == read_profile(path)
    assert read_profile(path)["summary"]["object_maps"] == summary["object_maps"]
    with pytest.raises(ProfileError, match="d = 16"):
        read_profile(path, d=16)


def test_stale_or_broken_sidecar_is_refused(tmp_path, tiny_checkpoint: str) -> None:
    checkpoint = tmp_path / "copy.pt"
    checkpoint.write_bytes(open(tiny_checkpoint, "rb").read())
    assert find_profile(checkpoint) is None
    sidecar = sidecar_path(checkpoint)
    sidecar.write_text("{not json")
    with pytest.raises(ProfileError, match="not a readable profile"):
        find_profile(checkpoint)
    write_profile(build_profile(checkpoint, data="scenes:6", size=128, control_seeds=1), sidecar)
    assert find_profile(checkpoint) is not None
    torch.manual_seed(5)
    our_training_file(checkpoint, tiny_config("lewel_m"))  # retrained: the sidecar no longer describes it
    with pytest.raises(ProfileError, match="sha256 differs"):
        find_profile(checkpoint)


def test_a_grid_too_coarse_for_the_masks_is_named(tiny_checkpoint: str) -> None:
    with pytest.raises(ValueError, match="larger --size"):
        build_profile(tiny_checkpoint, data="scenes:2", size=32)


def test_profile_data_splits_a_folder_of_images_and_masks(tmp_path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(5):
        Image.new("RGB", (40, 30), (i * 40, 0, 0)).save(tmp_path / "images" / f"im{i}.jpg")
        mask = np.zeros((30, 40), dtype=np.uint8)
        mask[10:20, 10:20] = 255
        Image.fromarray(mask).save(tmp_path / "masks" / f"im{i}.png")
    calibration, heldout = profile_data(str(tmp_path))
    assert len(calibration) == 3 and len(heldout) == 2
    sample = heldout.load(0)
    assert sample.id == "images/im1.jpg" and sample.image.size == (40, 30) and sample.binary
    assert sample.object_mask().shape == (30, 40) and sample.object_mask().sum() == 100
    assert calibration.describe()["rule"].startswith("in order")
    with pytest.raises(ValueError, match="no object masks"):
        profile_data(str(tmp_path / "images"))


def test_a_mask_of_another_size_is_skipped_and_named(tmp_path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(4):
        Image.new("RGB", (40, 30), (i * 40, 0, 0)).save(tmp_path / "images" / f"im{i}.png")
        side = (20, 15) if i == 1 else (40, 30)  # im1's mask is at half size: never resized into a wrong mask
        Image.fromarray(np.full(side[::-1], 255, np.uint8)).save(tmp_path / "masks" / f"im{i}.png")
    calibration, heldout = profile_data(str(tmp_path))
    prepared = PreparedImages(heldout, 32)
    assert len(prepared) == 1 and prepared.ids == ["images/im3.png"]
    assert prepared.skipped[0]["id"] == "images/im1.png"
    assert "im1.png is 20×15 but its image is 40×30" in prepared.skipped[0]["reason"]
    assert prepared.describe()["unreadable"] == prepared.skipped
