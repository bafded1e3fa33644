"""ResNet backbones used as feature-map encoders.

The encoders are torchvision's ResNets (built with ``weights=None``) with the global pooling and the
classifier removed, so a ``B×3×H×W`` image gives a ``B×D×h×w`` feature map (D = 512 for ResNet-18/34,
2048 for ResNet-50/101; h = H/32). Parameter names are torchvision's (``conv1.weight``,
``layer1.0.bn1.running_mean``, ...), which are also the names in the authors' checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torchvision import models

#: name -> (torchvision constructor, feature channels D, blocks per stage, bottleneck blocks?)
BACKBONES: dict[str, tuple] = {
    "resnet18": (models.resnet18, 512, (2, 2, 2, 2), False),
    "resnet34": (models.resnet34, 512, (3, 4, 6, 3), False),
    "resnet50": (models.resnet50, 2048, (3, 4, 6, 3), True),
    "resnet101": (models.resnet101, 2048, (3, 4, 23, 3), True),
}


class ResNetEncoder(nn.Module):
    """A torchvision ResNet without ``avgpool`` and ``fc``: images ``B×3×H×W`` -> features ``B×D×h×w``."""

    def __init__(self, name: str = "resnet50", *, zero_init_residual: bool = False) -> None:
        super().__init__()
        if name not in BACKBONES:
            raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
        constructor, channels, _, _ = BACKBONES[name]
        net = constructor(weights=None, zero_init_residual=zero_init_residual)
        self.name = name
        self.out_channels: int = channels
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def build_backbone(name: str) -> ResNetEncoder:
    """Build a randomly initialised feature-map encoder by torchvision name (``resnet18`` ... ``resnet101``)."""
    return ResNetEncoder(name)


def infer_backbone_name(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Tell which ResNet a torchvision-named state dict belongs to, from its keys alone.

    Arch strings in checkpoints are unreliable (the authors' files say ``BYOLEMANObj``), the layout is not:
    bottleneck blocks have a ``conv3`` and the number of blocks per stage tells the depth.
    """
    if "conv1.weight" not in state_dict:
        raise ValueError("not a ResNet state dict: no 'conv1.weight'")
    blocks = []
    for stage in range(1, 5):
        indices = {int(k.split(".")[1]) for k in state_dict if k.startswith(f"layer{stage}.")}
        blocks.append(len(indices))
    bottleneck = "layer1.0.conv3.weight" in state_dict
    for name, (_, _, layout, is_bottleneck) in BACKBONES.items():
        if tuple(blocks) == layout and bottleneck == is_bottleneck:
            return name
    kind = "bottleneck" if bottleneck else "basic"
    raise ValueError(f"unsupported ResNet layout: {kind} blocks per stage {blocks}; supported: {sorted(BACKBONES)}")
