"""BYOL: the baseline of LEWEL_B, and the frame LEWEL_B extends."""

from __future__ import annotations

import torch

from .backbones import ResNetEncoder
from .base import Encoder, MomentumMethod, StepOutput
from .ema import make_target
from .heads import MLP, CoupledHead, GlobalHead, HeadOutput
from .losses import normalized_mse


def predict(predictor: MLP, projection: torch.Tensor) -> torch.Tensor:
    """Apply a Conv1d predictor to ``B×d`` (global) or ``B×d×n`` (aligned) projections, keeping the shape."""
    if projection.dim() == 2:
        return predictor(projection.unsqueeze(2)).squeeze(2)
    return predictor(projection)


class BYOL(MomentumMethod):
    """Online network (backbone + projection) with a predictor regresses the target network's projection
    of the other view; the loss is symmetrised over the two views. State-dict names are the authors':
    ``online_net``, ``target_net``, ``predictor``."""

    def __init__(
        self, backbone: ResNetEncoder, neck: GlobalHead | CoupledHead, predictor: MLP, *, eman: bool = False
    ) -> None:
        super().__init__()
        self.eman = eman
        self.online_net = Encoder(backbone, neck)
        self.target_net = make_target(self.online_net)
        self.predictor = predictor
        self.train()

    def momentum_pairs(self) -> list:
        return [(self.online_net, self.target_net)]

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> StepOutput:
        """Two augmented views ``B×3×H×W`` -> the symmetrised loss."""
        online1, online2 = self.online_net(view1), self.online_net(view2)
        with torch.no_grad():
            target1, target2 = self.target_net(view1), self.target_net(view2)
        return self.loss(online1, online2, target1, target2)

    def loss(self, online1: HeadOutput, online2: HeadOutput, target1: HeadOutput, target2: HeadOutput) -> StepOutput:
        loss_global = normalized_mse(predict(self.predictor, online1.global_projection), target2.global_projection)
        loss_global = loss_global + normalized_mse(
            predict(self.predictor, online2.global_projection), target1.global_projection
        )
        return StepOutput(loss=loss_global, loss_global=loss_global.detach())
