"""LARS, parameter groups, learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lewel.optim import LARS, build_optimizer, parameter_groups
from lewel.schedules import warmup_cosine_lr


def test_parameter_groups_exclude_batchnorm_and_bias():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv1d(4, 2, 1, bias=False))
    decayed, excluded = parameter_groups(model, 1e-4)
    assert [p.shape for p in decayed["params"]] == [torch.Size([4, 3, 3, 3]), torch.Size([2, 4, 1])]
    assert len(excluded["params"]) == 3  # conv bias, BN weight, BN bias
    assert (decayed["weight_decay"], decayed["lars"]) == (1e-4, True)
    assert (excluded["weight_decay"], excluded["lars"]) == (0.0, False)


def test_lars_step_by_hand():
    weight = nn.Parameter(torch.tensor([[3.0, 4.0]]))  # norm 5
    bias = nn.Parameter(torch.tensor([1.0]))
    weight.grad, bias.grad = torch.tensor([[0.0, 1.0]]), torch.tensor([2.0])
    groups = [{"params": [weight], "weight_decay": 0.5, "lars": True}, {"params": [bias], "weight_decay": 0.0, "lars": False}]
    optimizer = LARS(groups, lr=0.1, momentum=0.9, eta=0.001)
    optimizer.step()
    update = torch.tensor([[1.5, 3.0]])  # g + wd·p
    trust = 0.001 * 5.0 / update.norm()
    torch.testing.assert_close(weight.detach(), torch.tensor([[3.0, 4.0]]) - 0.1 * trust * update)
    torch.testing.assert_close(bias.detach(), torch.tensor([1.0 - 0.1 * 2.0]))  # plain SGD: no trust ratio
    bias.grad = torch.tensor([2.0])
    weight.grad = None
    optimizer.step()  # momentum: buf = 0.9·2 + 2
    torch.testing.assert_close(bias.detach(), torch.tensor([0.8 - 0.1 * 3.8]))


def test_lars_leaves_zero_parameters_to_plain_sgd():
    weight = nn.Parameter(torch.zeros(2, 2))
    weight.grad = torch.ones(2, 2)
    LARS([{"params": [weight], "weight_decay": 0.0, "lars": True}], lr=0.5).step()
    torch.testing.assert_close(weight.detach(), torch.full((2, 2), -0.5))


def test_build_optimizer():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    assert isinstance(build_optimizer(model, "lars", 1.0, 1e-6), LARS)
    sgd = build_optimizer(model, "sgd", 0.03, 1e-4)
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["weight_decay"] == 1e-4
    with pytest.raises(ValueError, match="unknown optimizer"):
        build_optimizer(model, "adam", 1.0, 0.0)


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
