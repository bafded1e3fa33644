"""ResNet feature-map encoders with torchvision's parameter names."""

from __future__ import annotations

import pytest
import torch
from torchvision import models

from lewel.models.backbones import BACKBONES, ResNetEncoder, infer_backbone_name


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_names_equal_torchvision_without_fc(name):
    encoder = ResNetEncoder(name)
    reference = getattr(models, name)(weights=None).state_dict()
    expected = {k: v.shape for k, v in reference.items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in encoder.state_dict().items()} == expected
    assert infer_backbone_name(encoder.state_dict()) == name


def test_feature_map_shape_follows_the_input():
    encoder = ResNetEncoder("resnet18").eval()
    with torch.no_grad():
        assert encoder(torch.randn(2, 3, 64, 96)).shape == (2, 512, 2, 3)
        assert encoder(torch.randn(1, 3, 32, 32)).shape == (1, 512, 1, 1)


def test_unknown_backbone_and_layout_are_refused():
    with pytest.raises(ValueError, match="unknown backbone"):
        ResNetEncoder("vgg16")
    state = ResNetEncoder("resnet18").state_dict()
    del_keys = [k for k in state if k.startswith("layer3.1.")]
    for key in del_keys:
        del state[key]
    with pytest.raises(ValueError, match="unsupported ResNet layout"):
        infer_backbone_name(state)
    with pytest.raises(ValueError, match="not a ResNet"):
        infer_backbone_name({"weight": torch.zeros(1)})
