"""MoCo's queue when the global batch does not divide the queue size: ours wraps round (MoCo refuses)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from conftest import tiny_config
from lewel.models import build_model
from lewel.models.queue import KeyQueue


def test_queue_keeps_the_newest_keys_when_the_batch_does_not_divide_it():
    queue = KeyQueue(dim=4, size=10)
    pushed = [F.normalize(torch.randn(3, 4), dim=1) for _ in range(7)]  # 21 keys, 10 slots, batch 3
    for keys in pushed:
        queue.push(keys)
    assert queue.pointer.item() == 21 % 10
    everything = torch.cat(pushed)
    slots = [(i % 10) for i in range(11, 21)]
    torch.testing.assert_close(queue.keys[slots], everything[11:])


def test_a_batch_larger_than_the_queue_keeps_its_last_keys():
    queue = KeyQueue(dim=2, size=3)
    keys = F.normalize(torch.randn(5, 2), dim=1)
    queue.push(keys)
    assert queue.pointer.item() == 3 % 3
    torch.testing.assert_close(queue.keys, keys[-3:])


def test_moco_trains_with_a_queue_the_batch_does_not_divide():
    model = build_model(tiny_config("mocov2", queue_size=10))
    views = torch.randn(3, 3, 32, 32), torch.randn(3, 3, 32, 32)
    for step in range(4):
        out = model(*views)
        out.loss.backward()
        assert torch.isfinite(out.loss)
    assert model.queue.pointer.item() == 4 * 3 % 10
