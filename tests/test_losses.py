"""Each loss against values computed by hand."""

from __future__ import annotations

import math

import torch

from lewel.losses import in_batch_info_nce, info_nce, normalized_mse, weighted_sum


def test_normalized_mse_hand_values():
    prediction = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    target = torch.tensor([[0.0, 3.0], [2.0, 2.0]])
    # pair 1: orthogonal -> 2 - 0 = 2; pair 2: parallel -> 0. Mean = 1.
    assert normalized_mse(prediction, target).item() == 1.0
    # opposite vectors give the maximum, 4
    assert normalized_mse(torch.tensor([[1.0, 0.0]]), torch.tensor([[-5.0, 0.0]])).item() == 4.0


def test_normalized_mse_averages_over_aligned_positions():
    prediction = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])  # 1×d=2×n=2: position 0 = (1,0), position 1 = (1,1)
    target = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # position 0 = (1,0), position 1 = (0,1)
    cos1 = 1 / math.sqrt(2)
    expected = ((2 - 2 * 1.0) + (2 - 2 * cos1)) / 2
    assert math.isclose(normalized_mse(prediction, target).item(), expected, rel_tol=1e-6)


def test_info_nce_hand_values():
    query = torch.tensor([[1.0, 0.0]])
    positive = torch.tensor([[2.0, 0.0]])  # cos 1
    negatives = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])  # cos 0 and -1
    temperature = 0.5
    logits = torch.tensor([1.0, 0.0, -1.0]) / temperature
    expected = -logits[0] + torch.logsumexp(logits, 0)
    assert math.isclose(info_nce(query, positive, negatives, temperature).item(), expected.item(), rel_tol=1e-6)


def test_in_batch_info_nce_hand_values():
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    keys = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    temperature = 1.0
    c = 1 / math.sqrt(2)
    row0 = -1.0 + math.log(math.exp(1.0) + math.exp(c))
    row1 = -c + math.log(math.exp(0.0) + math.exp(c))
    assert math.isclose(in_batch_info_nce(query, keys, temperature).item(), (row0 + row1) / 2, rel_tol=1e-6)


def test_weighted_sum():
    assert weighted_sum(torch.tensor(2.0), torch.tensor(4.0), 0.25).item() == 0.25 * 2 + 0.75 * 4
