"""MoCo v2: the baseline of LEWEL_M, and the frame LEWEL_M extends."""

from __future__ import annotations

import torch

from ..distributed import shuffle_batch, unshuffle_batch
from .backbones import ResNetEncoder
from .base import Encoder, MomentumMethod, StepOutput
from .ema import make_target
from .heads import CoupledHead, GlobalHead, HeadOutput
from .losses import info_nce
from .queue import KeyQueue


class MoCoV2(MomentumMethod):
    """Query encoder ``encoder_q``, momentum key encoder ``encoder_k`` and a queue of negative keys.

    The query of view 1 must pick the key of view 2 among the queued keys (InfoNCE with ``temperature``).
    Keys are computed with MoCo's shuffling BatchNorm when distributed; the queue is gathered across
    processes.
    """

    def __init__(
        self,
        backbone: ResNetEncoder,
        neck: GlobalHead | CoupledHead,
        *,
        temperature: float = 0.2,
        queue_size: int = 65536,
    ) -> None:
        super().__init__()
        self.encoder_q = Encoder(backbone, neck)
        self.encoder_k = make_target(self.encoder_q)
        self.temperature = temperature
        self.queue = KeyQueue(neck.out_channels, queue_size)
        self.train()

    def momentum_pairs(self) -> list:
        return [(self.encoder_q, self.encoder_k)]

    @torch.no_grad()
    def keys(self, images: torch.Tensor) -> HeadOutput:
        """The key encoder's output for ``images``, computed on a shuffled batch when distributed."""
        shuffled, permutation = shuffle_batch(images)
        output = self.encoder_k(shuffled)
        aligned = output.aligned_projection
        return HeadOutput(
            global_projection=unshuffle_batch(output.global_projection, permutation),
            aligned_projection=None if aligned is None else unshuffle_batch(aligned, permutation),
        )

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> StepOutput:
        """Query view ``view1``, key view ``view2`` (``B×3×H×W`` each) -> InfoNCE against the queue."""
        query, key = self.encoder_q(view1), self.keys(view2)
        output = self.loss(query, key)
        self.queue.push(key.global_projection)
        return output

    def loss(self, query: HeadOutput, key: HeadOutput) -> StepOutput:
        loss = info_nce(
            query.global_projection, key.global_projection, self.queue.keys, self.temperature, unit_negatives=True
        )
        return StepOutput(loss=loss, loss_global=loss.detach())
