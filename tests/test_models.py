"""The four methods on tiny inputs: forward, backward, momentum updates, state-dict names, queues."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_config
from lewel.config import ModelConfig
from lewel.models import BYOL, LEWELB, LEWELM, MoCoV2, build_model
from lewel.models.queue import KeyQueue

METHODS = ["lewel_b", "lewel_b_eman", "lewel_m", "byol", "mocov2"]
CLASSES = {"lewel_b": LEWELB, "lewel_b_eman": LEWELB, "lewel_m": LEWELM, "byol": BYOL, "mocov2": MoCoV2}


def views(batch: int = 4, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(batch, 3, size, size), torch.randn(batch, 3, size, size)


@pytest.mark.parametrize("method", METHODS)
def test_forward_backward_and_momentum_update(method):
    model = build_model(tiny_config(method))
    assert type(model) is CLASSES[method]
    out = model(*views())
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    if method.startswith("lewel"):
        assert out.loss_aligned is not None
        # LEWEL_B sums w·Lg + (1-w)·La over both directions, so the parts (summed too) combine the same way
        torch.testing.assert_close(out.loss.detach(), 0.5 * out.loss_global + 0.5 * out.loss_aligned)
    else:
        assert out.loss_aligned is None
    out.loss.backward()
    online, target = model.momentum_pairs()[0]
    assert all(p.grad is not None for p in online.parameters() if p.requires_grad)
    assert all(not p.requires_grad and p.grad is None for p in target.parameters())
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    before = [p.clone() for p in target.parameters()]
    model.update_target(0.9)
    for old, new, p_online in zip(before, target.parameters(), online.parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * p_online)


def test_eman_target_stays_in_eval_mode():
    eman = build_model(tiny_config("lewel_b_eman")).train()
    assert eman.online_net.training and not eman.target_net.training
    plain = build_model(tiny_config("lewel_b")).train()
    assert plain.target_net.training
    assert not plain.eval().target_net.training


def test_lewel_b_state_dict_matches_the_official_manifest(official_manifest):
    """A default LEWEL_B (ResNet-50, hid 4096, d 256) has exactly the authors' keys and shapes."""
    model = build_model(ModelConfig.for_method("lewel_b_eman"))
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    theirs = {e["key"].removeprefix("module."): e["shape"] for e in official_manifest["state_dict"]}
    assert ours == theirs


def test_lewel_m_parts_and_queues():
    config = tiny_config("lewel_m")
    model = build_model(config)
    names = set(model.state_dict())
    for prefix in ("encoder_q.backbone.", "encoder_q.neck.proj.", "encoder_q.neck.proj_obj.", "encoder_k.neck.proj_obj."):
        assert any(k.startswith(prefix) for k in names), prefix
    assert {"queue.keys", "queue.pointer", "aligned_queue.keys", "aligned_queue.pointer"} <= names
    assert model.queue.keys.shape == (config.queue_size, config.dim)
    assert model.aligned_queue.keys.shape == (config.aligned_queue_size, config.dim)
    # MoCo v2's head has no BatchNorm and uses biases
    assert "encoder_q.neck.proj.mlp.0.bias" in names
    assert not any("running_mean" in k for k in names if k.startswith("encoder_q.neck"))
    model(*views(batch=4))
    assert model.queue.pointer.item() == 4
    assert model.aligned_queue.pointer.item() == 4 * config.dim // config.num_groups % config.aligned_queue_size


def test_lewel_m_enqueues_the_key_views_aligned_embeddings():
    model = build_model(tiny_config("lewel_m", aligned_queue_size=1000))
    view1, view2 = views(batch=2)
    model(view1, view2)
    with torch.no_grad():
        keys = model.encoder_k(view2)
    expected = torch.nn.functional.normalize(keys.aligned_projection.transpose(1, 2).reshape(-1, 32), dim=1)
    torch.testing.assert_close(model.aligned_queue.keys[: expected.shape[0]], expected, atol=1e-5, rtol=1e-4)


def test_lewel_m_in_batch_negatives_has_no_aligned_queue():
    model = build_model(tiny_config("lewel_m", aligned_negatives="batch"))
    assert model.aligned_queue is None
    out = model(*views())
    out.loss.backward()
    assert torch.isfinite(out.loss_aligned)


def test_queue_wraps_around():
    queue = KeyQueue(dim=2, size=5)
    first = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    queue.push(first)
    queue.push(torch.tensor([[0.0, 2.0], [3.0, 0.0], [0.0, 4.0]]))
    assert queue.pointer.item() == 1
    expected_rows = {0: [0.0, 1.0], 1: [0.0, 1.0], 2: [1.0, 0.0], 3: [0.0, 1.0], 4: [1.0, 0.0]}
    for row, value in expected_rows.items():
        torch.testing.assert_close(queue.keys[row], torch.tensor(value))


def test_config_validation_and_defaults():
    moco = ModelConfig.for_method("lewel_m")
    assert (moco.hidden_dim, moco.dim, moco.head_norm, moco.num_groups) == (2048, 128, False, 4)
    assert ModelConfig.for_method("lewel_b_eman").eman and not ModelConfig.for_method("lewel_b").eman
    with pytest.raises(ValueError, match="unknown method"):
        ModelConfig.for_method("simclr")
    with pytest.raises(ValueError, match="num_groups"):
        ModelConfig.for_method("lewel_b", dim=30, num_groups=4)
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({"method": "byol", "depth": 3})
    assert ModelConfig.from_dict(moco.to_dict()) == moco
