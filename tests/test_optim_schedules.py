"""LARS (the authors' update and parameter groups), learning-rate schedule."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import tiny_config
from lewel.models import build_model
from lewel.train.config import TrainConfig
from lewel.train.optim import LARS, build_optimizer, excluded_by_name, parameter_groups
from lewel.train.schedules import warmup_cosine_lr

REFERENCE = Path(__file__).parent / "fixtures" / "authors_lars_reference.pt"


@pytest.fixture(scope="module")
def reference() -> dict:
    return torch.load(REFERENCE, weights_only=True)


def _replay(reference: dict, weight_decay: float) -> float:
    """Run our LARS through the fixture's gradients and learning rates; the largest deviation from the
    authors' parameters after any step."""
    params = {name: nn.Parameter(value.clone()) for name, value in reference["init"].items()}
    excluded = set(reference["excluded"])
    groups = [
        {"params": [p for n, p in params.items() if n not in excluded], "weight_decay": weight_decay, "lars": True},
        {"params": [p for n, p in params.items() if n in excluded], "weight_decay": 0.0, "lars": False},
    ]
    optimizer = LARS(groups, lr=1.0, momentum=reference["momentum"], eta=reference["eta"])
    case = next(c for c in reference["cases"].values() if c["weight_decay"] == weight_decay)
    worst = 0.0
    for grads, lr, expected in zip(reference["grads"], reference["lrs"].tolist(), case["params_after_step"], strict=True):
        for name, parameter in params.items():
            parameter.grad = grads[name].clone()
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        worst = max(worst, max((params[n].detach() - expected[n]).abs().max().item() for n in params))
    return worst


@pytest.mark.parametrize("weight_decay", [1.5e-6, 0.01])
def test_lars_reproduces_the_authors_trajectory(reference, weight_decay):
    assert _replay(reference, weight_decay) <= 1e-6


def test_the_trajectory_moves_and_depends_on_the_lr_schedule(reference):
    """The fixture is a real test: the parameters move far more than the tolerance, and the learning rate
    changes from step to step (where lr inside or outside the momentum buffer differ)."""
    case = reference["cases"]["wd=0.01"]
    moved = max((case["params_after_step"][-1][n] - reference["init"][n]).abs().max().item() for n in reference["init"])
    assert moved > 0.1
    assert len(set(reference["lrs"].tolist())) > 6


@pytest.mark.parametrize("variant", ["LEWELB_EMAN", "LEWELB"])
def test_excluded_names_match_the_authors_rule(reference, variant):
    rule = reference["group_rule"][variant]
    model = build_model(tiny_config(rule["method"]))
    names = [name for name, _ in model.named_parameters()]
    assert [n for n in names if excluded_by_name(n, head_norm=model.eman)] == rule["excluded"]
    assert [n for n in names if not excluded_by_name(n, head_norm=model.eman)] == rule["adapted"]
    trainable = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    decayed, excluded = build_optimizer(model, "lars", 1.0, 1e-6).param_groups
    assert [trainable[id(p)] for p in excluded["params"]] == [n for n in rule["excluded"] if n in trainable.values()]
    assert [trainable[id(p)] for p in decayed["params"]] == [n for n in rule["adapted"] if n in trainable.values()]
    assert (decayed["weight_decay"], decayed["lars"], excluded["weight_decay"], excluded["lars"]) == (1e-6, True, 0.0, False)


def test_plain_lewel_b_decays_the_head_batchnorm_weights():
    plain = build_model(tiny_config("lewel_b"))
    decayed, _ = parameter_groups(plain, 1e-6, eman=False)
    names = {id(p): n for n, p in plain.named_parameters()}
    head_norm = {names[id(p)] for p in decayed["params"] if "mlp.1" in names[id(p)]}
    assert head_norm == {
        "online_net.neck.proj.mlp.1.weight", "online_net.neck.proj_obj.mlp.1.weight",
        "predictor.mlp.1.weight", "predictor_obj.mlp.1.weight",
    }
    # the earlier rule (every 1-D tensor excluded), kept as lars_exclude: norm_bias
    decayed, excluded = parameter_groups(plain, 1e-6, rule="norm_bias")
    assert all(p.ndim > 1 for p in decayed["params"]) and all(p.ndim <= 1 for p in excluded["params"])
    with pytest.raises(ValueError, match="unknown exclusion rule"):
        parameter_groups(plain, 1e-6, rule="ndim")


def test_parameter_groups_by_name():
    model = nn.Sequential()
    model.add_module("conv", nn.Conv2d(3, 4, 3))
    model.add_module("bn", nn.BatchNorm2d(4))
    model.add_module("mlp", nn.Sequential(nn.Conv1d(4, 4, 1, bias=False), nn.BatchNorm1d(4)))
    names = {id(p): n for n, p in model.named_parameters()}
    for eman, expected in ((True, ["conv.bias", "bn.weight", "bn.bias", "mlp.1.weight", "mlp.1.bias"]),
                           (False, ["conv.bias", "bn.weight", "bn.bias", "mlp.1.bias"])):
        _, excluded = parameter_groups(model, 1e-4, eman=eman)
        assert [names[id(p)] for p in excluded["params"]] == expected


def test_lars_step_by_hand():
    weight = nn.Parameter(torch.tensor([[3.0, 4.0]]))  # |w| = 5
    bias = nn.Parameter(torch.tensor([1.0]))
    weight.grad, bias.grad = torch.tensor([[0.0, 2.0]]), torch.tensor([2.0])  # |g| = 2
    groups = [{"params": [weight], "weight_decay": 0.5, "lars": True}, {"params": [bias], "weight_decay": 0.0, "lars": False}]
    optimizer = LARS(groups, lr=0.1, momentum=0.9, eta=0.001)
    optimizer.step()
    local_lr = 0.001 * 5.0 / (2.0 + 0.5 * 5.0)  # eta·|w| / (|g| + wd·|w|)
    first = torch.tensor([[1.5, 4.0]]) * 0.1 * local_lr  # (g + wd·w)·lr·local_lr
    torch.testing.assert_close(weight.detach(), torch.tensor([[3.0, 4.0]]) - first)
    torch.testing.assert_close(bias.detach(), torch.tensor([1.0 - 0.1 * 2.0]))  # excluded: local_lr = 1
    for group in optimizer.param_groups:
        group["lr"] = 0.5
    bias.grad = torch.tensor([2.0])
    weight.grad = None
    optimizer.step()  # the buffer holds lr·u: 0.9·(0.1·2) + 0.5·2
    torch.testing.assert_close(bias.detach(), torch.tensor([0.8 - (0.9 * 0.2 + 0.5 * 2.0)]))


def test_lars_leaves_zero_parameters_to_plain_sgd():
    weight = nn.Parameter(torch.zeros(2, 2))
    weight.grad = torch.ones(2, 2)
    LARS([{"params": [weight], "weight_decay": 0.0, "lars": True}], lr=0.5).step()
    torch.testing.assert_close(weight.detach(), torch.full((2, 2), -0.5))


def test_lars_state_round_trip_and_refuses_the_earlier_rule():
    def stepped() -> LARS:
        torch.manual_seed(1)
        model = nn.Linear(3, 2)
        optimizer = build_optimizer(model, "lars", 0.3, 1e-4)
        model(torch.randn(4, 3)).sum().backward()
        optimizer.step()
        return optimizer

    state = stepped().state_dict()
    assert state["rule"] == "lr-in-momentum/v1"
    fresh = stepped()
    fresh.load_state_dict(state)
    assert "rule" not in torch.optim.Optimizer.state_dict(fresh)
    earlier = {key: value for key, value in state.items() if key != "rule"}
    with pytest.raises(ValueError, match="earlier version"):
        stepped().load_state_dict(earlier)


def test_build_optimizer():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    assert isinstance(build_optimizer(model, "lars", 1.0, 1e-6), LARS)
    sgd = build_optimizer(model, "sgd", 0.03, 1e-4)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["weight_decay"] == 1e-4
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(model, "adam", 1.0, 0.0)


def test_train_config_lars_exclude():
    assert TrainConfig.for_method("lewel_b").lars_exclude == "authors"
    with pytest.raises(ValueError, match="lars_exclude"):
        TrainConfig.for_method("lewel_b", data="scenes:8", lars_exclude="ndim").validate()


def test_warmup_then_cosine_per_epoch():
    lr = lambda step: warmup_cosine_lr(3.6, step, steps_per_epoch=10, warmup_epochs=2, epochs=12)  # noqa: E731
    assert lr(0) == pytest.approx(3.6 / 20)
    assert lr(19) == pytest.approx(3.6)
    assert lr(20) == pytest.approx(3.6)  # first epoch after warm-up: cosine at 0
    assert lr(25) == lr(20)  # stepped per epoch
    assert lr(70) == pytest.approx(3.6 * 0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert lr(119) == pytest.approx(3.6 * 0.5 * (1 + math.cos(math.pi * 9 / 10)))
    moco = [warmup_cosine_lr(0.03, s, 5, 0, 4) for s in range(20)]
    assert moco[0] == 0.03 and moco == sorted(moco, reverse=True)
