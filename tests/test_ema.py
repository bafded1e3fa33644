"""Momentum updates (plain and EMAN) and the cosine momentum schedule."""

from __future__ import annotations

import math

import torch
from torch import nn

from lewel.models.ema import ema_update_, make_target
from lewel.train.schedules import cosine_momentum


def small_net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


def test_plain_update_moves_parameters_only():
    online = small_net()
    target = make_target(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    online.train()(torch.randn(8, 3))  # changes online BatchNorm statistics
    before = {k: v.clone() for k, v in target.state_dict().items()}
    ema_update_(online, target, 0.9)
    for (name, p_t), p_o in zip(target.named_parameters(), online.parameters()):
        torch.testing.assert_close(p_t, 0.9 * before[name] + 0.1 * p_o)
    torch.testing.assert_close(target[1].running_mean, before["1.running_mean"])
    assert target[1].num_batches_tracked.item() == 0
    assert not any(p.requires_grad for p in target.parameters())


def test_eman_update_averages_buffers_and_copies_counters():
    online = small_net()
    target = make_target(online)
    online.train()(torch.randn(8, 3))
    online.train()(torch.randn(8, 3))
    before = {k: v.clone() for k, v in target.state_dict().items()}
    ema_update_(online, target, 0.8, whole_state=True)
    torch.testing.assert_close(target[1].running_mean, 0.8 * before["1.running_mean"] + 0.2 * online[1].running_mean)
    torch.testing.assert_close(target[1].running_var, 0.8 * before["1.running_var"] + 0.2 * online[1].running_var)
    assert target[1].num_batches_tracked.item() == 2


def test_cosine_momentum_schedule():
    assert cosine_momentum(0.99, 0, 100) == 0.99
    assert math.isclose(cosine_momentum(0.99, 50, 100), 1 - 0.01 * 0.5)
    assert cosine_momentum(0.99, 100, 100) == 1.0
    values = [cosine_momentum(0.996, t, 10) for t in range(11)]
    assert values == sorted(values)
