"""The inference contract: load_model(...).extract(images)."""

from __future__ import annotations

import pytest
import torch

from checkpoint_factory import our_training_file
from conftest import tiny_config
from lewel import load_model


@pytest.fixture(scope="module")
def tiny_lewel(tmp_path_factory):
    path = tmp_path_factory.mktemp("inference") / "lewel_b.pth"
    our_training_file(path, tiny_config("lewel_b_eman"))
    return load_model(path)


def test_extract_shapes_on_non_square_inputs(tiny_lewel):
    out = tiny_lewel.extract(torch.randn(3, 3, 64, 96))
    d, h = tiny_lewel.d, tiny_lewel.h
    assert (d, h) == (32, 4) and (out.d, out.h) == (32, 4)
    assert out.feature_map.shape == (3, 512, 2, 3)
    assert out.global_embedding.shape == (3, d)
    assert out.maps.shape == (3, d, 2, 3)
    assert out.aligned_features.shape == (3, d // h, 512)
    assert out.aligned_embeddings.shape == (3, d // h, d)
    torch.testing.assert_close(out.maps.sum(dim=(2, 3)), torch.ones(3, d))
    assert (out.maps >= 0).all()


def test_extract_is_consistent_with_the_maps(tiny_lewel):
    """Aligned feature n, channel group i, is the group-i channels of F weighted by map i·(d/h) + n."""
    out = tiny_lewel.extract(torch.randn(1, 3, 64, 64))
    n, group = 5, 2
    m = tiny_lewel.map_index(group, n)
    assert (tiny_lewel.map_group(m), tiny_lewel.map_aligned_index(m)) == (group, n)
    channels = slice(group * 128, (group + 1) * 128)
    expected = (out.feature_map[0, channels] * out.maps[0, m]).sum(dim=(1, 2))
    torch.testing.assert_close(out.aligned_features[0, n, channels], expected)


def test_extract_is_deterministic_and_batch_independent(tiny_lewel):
    images = torch.randn(2, 3, 64, 64)
    together = tiny_lewel.extract(images).maps
    alone = tiny_lewel.extract(images[1:]).maps
    torch.testing.assert_close(together[1:], alone)
    assert not tiny_lewel.training and not tiny_lewel.train().training


@pytest.mark.parametrize(
    "images, message",
    [
        (torch.randn(1, 3, 31, 64), "at least 32"),
        (torch.randn(1, 1, 64, 64), "B×3×H×W"),
        (torch.randn(3, 64, 64), "B×3×H×W"),
        (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), "floating-point"),
    ],
)
def test_bad_inputs_are_refused_clearly(tiny_lewel, images, message):
    with pytest.raises(ValueError, match=message):
        tiny_lewel.extract(images)


def test_describe_is_json_friendly(tiny_lewel):
    import json

    info = json.loads(json.dumps(tiny_lewel.describe()))
    assert info["method"] == "lewel_b_eman" and info["num_aligned"] == 8 and info["has_maps"]


def test_folded_gives_the_same_maps_without_batch_norms_and_leaves_the_model_alone(tmp_path):
    path = tmp_path / "lewel_m.pth"
    our_training_file(path, tiny_config("lewel_m"))
    model = load_model(path)
    generator = torch.Generator().manual_seed(0)
    for layer in model.backbone.modules():  # trained-looking statistics, so that folding has something to fold
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.copy_(torch.randn(layer.num_features, generator=generator) * 0.1)
            layer.running_var.copy_(torch.rand(layer.num_features, generator=generator) + 0.5)
            layer.weight.data.copy_(torch.rand(layer.num_features, generator=generator) + 0.5)
    folded = model.folded()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.backbone.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())
    assert (folded.backbone_name, folded.feature_channels, folded.d, folded.source) == (
        model.backbone_name, model.feature_channels, model.d, model.source)
    images = torch.randn(2, 3, 64, 64, generator=generator)
    reference, fast = model.extract(images), folded.extract(images)
    torch.testing.assert_close(fast.feature_map, reference.feature_map, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(fast.maps, reference.maps, rtol=1e-4, atol=1e-6)
    assert not torch.equal(model.backbone.bn1.running_mean, torch.zeros_like(model.backbone.bn1.running_mean))
