"""The family of random controls: initialisation schemes, seeds, prediction bounds and the verdict that
no random network may pass."""

from __future__ import annotations

import math

import pytest
import torch
from checkpoint_factory import our_training_file, tiny_authors_file
from conftest import tiny_config
from scipy import stats

from lewel.export import export_safetensors
from lewel.inference import load_model
from lewel.maps.controls import INIT_SCHEMES, control_family, initialise, prediction_bound, random_like, verdict
from lewel.maps.profiles import build_profile


def test_family_is_every_seed_of_every_scheme() -> None:
    assert control_family(("torchvision", "pytorch"), 3) == [
        ("torchvision", 0), ("torchvision", 1), ("torchvision", 2), ("pytorch", 0), ("pytorch", 1), ("pytorch", 2),
    ]
    assert len(control_family()) == 15 and set(INIT_SCHEMES) == {"torchvision", "pytorch", "trunc_normal"}
    with pytest.raises(ValueError, match="unknown initialisation scheme 'xavier'"):
        control_family(("xavier",), 2)
    with pytest.raises(ValueError, match="at least 1 seed"):
        control_family(("pytorch",), 0)


def test_schemes_draw_the_weights_they_name() -> None:
    conv = torch.nn.Conv2d(64, 64, 3).requires_grad_(False)
    fan_in = 64 * 9
    torch.manual_seed(0)
    initialise(conv, "pytorch")  # Kaiming-uniform with a = √5: U(±1/√fan_in)
    assert conv.weight.abs().max() <= 1 / math.sqrt(fan_in) and conv.weight.std() == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.05)
    initialise(conv, "trunc_normal")
    assert conv.weight.std() == pytest.approx(0.02, rel=0.05) and torch.all(conv.bias == 0)
    norm = torch.nn.BatchNorm2d(4)
    norm.weight.data.fill_(3.0)
    norm.running_var.fill_(7.0)
    initialise(norm, "trunc_normal")
    assert torch.all(norm.weight == 1) and torch.all(norm.running_var == 1)
    with pytest.raises(ValueError, match="unknown initialisation scheme"):
        initialise(conv, "orthogonal")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("controls") / "tiny_m.pt"
    our_training_file(path, tiny_config("lewel_m"))
    return load_model(path)


def test_random_like_leaves_the_global_generator_alone(tiny_model) -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    networks = [random_like(tiny_model, seed, scheme) for scheme in INIT_SCHEMES for seed in (0, 1)]
    assert torch.equal(torch.rand(3), expected)
    first_convs = [n.backbone.conv1.weight for n in networks]
    assert all(not torch.equal(a, b) for i, a in enumerate(first_convs) for b in first_convs[i + 1 :])
    assert "trunc_normal init, seed 1" in networks[-1].source


def test_prediction_bound_is_the_t_interval_for_one_more_draw() -> None:
    scores = [0.70, 0.72, 0.68, 0.75, 0.71]
    mean, sd, n = sum(scores) / 5, float(torch.tensor(scores, dtype=torch.float64).std()), 5
    assert prediction_bound(scores) == pytest.approx(mean + stats.t.ppf(0.975, n - 1) * sd * math.sqrt(1 + 1 / n))
    assert prediction_bound([0.7]) == 0.7
    with pytest.raises(ValueError):
        prediction_bound([])


def test_verdict_takes_the_highest_bound_of_any_scheme() -> None:
    heldout = torch.full((20,), 0.80, dtype=torch.float64) + 0.01 * torch.arange(20) / 20
    members = [{"scheme": s, "seed": k, "object_auroc": a} for s, k, a in
               [("torchvision", 0, 0.66), ("torchvision", 1, 0.67), ("pytorch", 0, 0.70), ("pytorch", 1, 0.78)]]
    per_image = [torch.full((20,), m["object_auroc"], dtype=torch.float64) for m in members]
    family, difference, result = verdict(heldout, members, per_image)
    assert family["best"] == {"scheme": "pytorch", "seed": 1, "object_auroc": 0.78}
    assert family["random_bound"] == family["by_scheme"]["pytorch"]["bound"] > 0.9  # two seeds: t(0.975, 1) = 12.7
    assert difference["spread_allowance"] == pytest.approx(family["random_bound"] - 0.78)
    assert result == "not better than random"
    with pytest.raises(ValueError):
        verdict(heldout, members, per_image[:2])


def test_no_random_network_localises(tmp_path) -> None:
    """Files with random weights, as a user would profile them: a LEWEL_B file in the authors' layout and
    copies of its shape drawn by every scheme with seeds outside the family's (0..2): none "localises"."""
    authors = tmp_path / "authors_random.pth.tar"
    tiny_authors_file(authors, tiny_config("lewel_b_eman"))
    files = [authors]
    for scheme, seed in (("torchvision", 11), ("pytorch", 12), ("trunc_normal", 13)):
        files.append(export_safetensors(random_like(load_model(authors), seed, scheme), tmp_path / f"random_{scheme}.safetensors"))
    for path in files:
        summary = build_profile(path, data="scenes:16", size=96, batch_size=16, control_seeds=3)["summary"]
        assert summary["controls"]["count"] == 9
        assert summary["verdict"] == "not better than random", (path.name, summary["object_auroc"], summary["controls"]["random_bound"])
