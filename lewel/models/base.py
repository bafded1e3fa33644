"""What every method shares: an encoder (backbone + head), a step's output, and a momentum-updated copy."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .backbones import ResNetEncoder
from .ema import ema_update_
from .heads import CoupledHead, GlobalHead, HeadOutput


class Encoder(nn.Module):
    """Backbone followed by a head: images ``B×3×H×W`` -> ``HeadOutput``.

    Attribute names (``backbone``, ``neck``) are the authors' (``online_net.backbone``, ``online_net.neck``).
    """

    def __init__(self, backbone: ResNetEncoder, neck: CoupledHead | GlobalHead) -> None:
        super().__init__()
        self.backbone, self.neck = backbone, neck

    def forward(self, images: torch.Tensor) -> HeadOutput:
        return self.neck(self.backbone(images))


@dataclass
class StepOutput:
    """The loss of one training step and its parts (scalars). ``loss_aligned`` is None for baselines."""

    loss: torch.Tensor
    loss_global: torch.Tensor
    loss_aligned: torch.Tensor | None = None


class MomentumMethod(nn.Module):
    """A self-supervised method with an online network and a momentum-averaged copy of it.

    Subclasses name their parts as the original code does and list the (online, target) pairs. With
    ``eman`` the targets are averaged over their whole state and always kept in eval mode (EMAN);
    otherwise parameters only, and the targets follow ``train()`` like the rest of the model.
    """

    eman: bool = False

    def momentum_pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        raise NotImplementedError

    @property
    def online_encoder(self) -> Encoder:
        """The network kept for inference (backbone + head)."""
        return self.momentum_pairs()[0][0]  # type: ignore[return-value]

    def update_target(self, momentum: float) -> None:
        """Move each target towards its online network; call after every optimiser step."""
        for online, target in self.momentum_pairs():
            ema_update_(online, target, momentum, whole_state=self.eman)

    def train(self, mode: bool = True) -> MomentumMethod:
        super().train(mode)
        if self.eman:
            for _, target in self.momentum_pairs():
                target.eval()
        return self

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> StepOutput:  # pragma: no cover - abstract
        raise NotImplementedError
