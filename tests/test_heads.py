"""The coupled projection head against the authors' numbers and against explicit loops."""

from __future__ import annotations

import copy

import pytest
import torch

from lewel.models.heads import (
    MLP,
    CoupledHead,
    GlobalHead,
    alignment_maps,
    group_aggregate,
    map_aligned_index,
    map_group,
    map_index,
)


def head_from(config: dict) -> CoupledHead:
    def mlp() -> MLP:
        return MLP(config["in_channels"], config["hid_channels"], config["out_channels"], num_layers=config["num_layers"])

    return CoupledHead(mlp(), mlp(), num_groups=config["num_heads"], scale=config["scale"], l2_norm=config["l2_norm"])


@pytest.mark.parametrize("case", [0, 1, 2])
def test_neck_reproduces_the_authors_outputs(neck_reference, case):
    reference = neck_reference[case]
    head = head_from(reference["config"])
    head.load_state_dict(reference["state_dict"], strict=True)
    head.eval()
    with torch.no_grad():
        out = head(reference["input"])
    torch.testing.assert_close(out.global_projection, reference["global_projection"].squeeze(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.maps, reference["alignment_maps"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.aligned_features, reference["aligned_features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.aligned_projection, reference["aligned_projection"], atol=1e-5, rtol=0)


def test_mlp_parameter_names_are_the_authors():
    names = set(MLP(8, 6, 4).state_dict())
    assert names == {
        "mlp.0.weight",
        "mlp.1.weight",
        "mlp.1.bias",
        "mlp.1.running_mean",
        "mlp.1.running_var",
        "mlp.1.num_batches_tracked",
        "mlp.3.weight",
    }
    assert set(MLP(8, 6, 4, norm=False).state_dict()) == {"mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"}


def test_coupled_head_names_and_shapes():
    head = CoupledHead(MLP(16, 12, 8), MLP(16, 12, 8), num_groups=2)
    assert {k.split(".mlp")[0] for k in head.state_dict()} == {"proj", "proj_obj"}
    out = head(torch.randn(3, 16, 5, 6))
    assert out.global_projection.shape == (3, 8)
    assert out.maps.shape == (3, 8, 5, 6)
    assert out.aligned_features.shape == (3, 16, 4)
    assert out.aligned_projection.shape == (3, 8, 4)
    torch.testing.assert_close(out.maps.sum(dim=(2, 3)), torch.ones(3, 8))


def test_projection_is_one_call_over_pooled_vector_and_pixels():
    """BatchNorm must see [GAP(F), pixels] together (B·(1 + h·w) rows) in a single call."""
    head = CoupledHead(MLP(16, 12, 8), MLP(16, 12, 8), num_groups=2).train()
    seen = []
    head.proj.mlp[1].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].shape))
    features = torch.randn(3, 16, 4, 5)
    out = head(features)
    assert seen == [torch.Size([3 * (1 + 20), 12])]
    # the global projection equals the MLP applied to the pooled vector inside that same batch
    inputs = torch.cat([features.flatten(2).mean(2, keepdim=True), features.flatten(2)], dim=2)
    torch.testing.assert_close(out.global_projection, MLP.forward(head.proj, inputs)[:, :, 0])


def test_gradients_reach_the_projection_through_the_maps():
    head = CoupledHead(MLP(16, 12, 8), MLP(16, 12, 8), num_groups=2)
    out = head(torch.randn(3, 16, 4, 4))
    out.aligned_projection.sum().backward()  # uses the maps only, not z
    assert head.proj.mlp[0].weight.grad is not None
    assert head.proj.mlp[0].weight.grad.abs().sum() > 0


def test_alignment_maps_temperature_and_normalisation():
    logits = torch.randn(2, 4, 9)
    maps = alignment_maps(logits, scale=0.5, l2_norm=True)
    expected = torch.softmax(logits / logits.norm(dim=1, keepdim=True) / 0.5, dim=2)
    torch.testing.assert_close(maps, expected)
    torch.testing.assert_close(alignment_maps(logits, l2_norm=False), torch.softmax(logits, dim=2))


def test_grouping_is_contiguous_chunks_against_an_explicit_loop():
    batch, channels, num_maps, groups, pixels = 2, 12, 8, 4, 10
    features, maps = torch.randn(batch, channels, pixels), torch.rand(batch, num_maps, pixels)
    aligned = group_aggregate(features, maps, groups)
    per_group_maps, per_group_channels = num_maps // groups, channels // groups
    expected = torch.zeros(batch, channels, per_group_maps)
    for b in range(batch):
        for n in range(per_group_maps):
            for i in range(groups):
                weights = maps[b, i * per_group_maps + n]  # contiguous: group i holds maps i·(d/h) ... (i+1)·(d/h)-1
                for c in range(per_group_channels):
                    channel = i * per_group_channels + c
                    expected[b, channel, n] = (features[b, channel] * weights).sum()
    torch.testing.assert_close(aligned, expected)


def test_map_index_helpers_follow_the_contiguous_order():
    d, h = 256, 4
    assert map_group(0, d, h) == 0 and map_aligned_index(0, d, h) == 0
    assert map_group(63, d, h) == 0 and map_aligned_index(63, d, h) == 63
    assert map_group(64, d, h) == 1 and map_aligned_index(64, d, h) == 0
    assert map_group(255, d, h) == 3 and map_aligned_index(255, d, h) == 63
    for m in range(d):
        assert map_index(map_group(m, d, h), map_aligned_index(m, d, h), d, h) == m
    with pytest.raises(IndexError):
        map_group(256, d, h)
    with pytest.raises(IndexError):
        map_index(4, 0, d, h)


def test_bad_grouping_is_refused():
    with pytest.raises(ValueError, match="num_groups"):
        CoupledHead(MLP(16, 12, 8), MLP(16, 12, 8), num_groups=3)


def test_global_head_pools_then_projects():
    head = GlobalHead(MLP(16, 12, 8)).eval()
    features = torch.randn(2, 16, 3, 3)
    out = head(features)
    assert out.maps is None
    torch.testing.assert_close(out.global_projection, head.proj(features.mean(dim=(2, 3))[:, :, None])[:, :, 0])


@pytest.mark.parametrize("size, norm, factorised", [((2, 2), True, True), ((1, 3), False, True), ((8, 8), True, False)])
def test_factorised_aligned_projection_equals_the_direct_one(size, norm, factorised):
    """Small maps take the factorised path, large ones the direct path: both must agree, with gradients."""
    torch.manual_seed(0)
    head = CoupledHead(MLP(128, 24, 64, norm=norm), MLP(128, 24, 64, norm=norm), num_groups=4).train()
    assert head.factorised_is_faster(size[0] * size[1]) == factorised
    features = torch.randn(3, 128, *size, requires_grad=True)
    out = head(features)
    direct = head.proj_obj(out.aligned_features)
    torch.testing.assert_close(out.aligned_projection, direct, atol=1e-5, rtol=1e-5)
    (grad_fast,) = torch.autograd.grad(out.aligned_projection.square().sum(), features, retain_graph=True)
    (grad_direct,) = torch.autograd.grad(direct.square().sum(), features)
    torch.testing.assert_close(grad_fast, grad_direct, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("norm", [True, False])
@pytest.mark.parametrize("length", [1, 7])
def test_mlp_rows_equal_its_conv1d_layers(norm, length):
    """MLP.forward runs its Conv1d layers as matrix products over B·L rows: the same numbers and gradients as
    the Conv1d modules themselves (BatchNorm over rows sees the statistics it sees over B and L)."""
    mlp = MLP(6, 10, 4, norm=norm)
    twin = copy.deepcopy(mlp)
    x = torch.randn(5, 6, length, requires_grad=True)
    for mode in (True, False):
        mlp.train(mode), twin.train(mode)
        out, expected = mlp(x), twin.mlp(x)
        torch.testing.assert_close(out, expected)
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        (grad_expected,) = torch.autograd.grad(expected.square().sum(), x)
        torch.testing.assert_close(grad, grad_expected)
    if norm:
        torch.testing.assert_close(mlp.mlp[1].running_var, twin.mlp[1].running_var)
