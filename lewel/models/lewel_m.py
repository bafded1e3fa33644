"""LEWEL_M: MoCo v2 plus alignment maps from the coupled head and an aligned InfoNCE term.

The paper does not publish how LEWEL_M draws negatives for the aligned embeddings. Our default
(``aligned_negatives="queue"``) keeps a second queue of aligned KEYS, in the aligned projection's own
embedding space, filled with every aligned key of every image of the (gathered) batch, exactly as
MoCo's queue is filled with global keys: the aligned query (image b, index n) must pick its positive,
the key encoder's aligned embedding n of the other view of image b, among those queued keys. Reasons: the
global queue lives in g's space, not in the aligned projection p's, so its keys would be easy negatives;
a queue gives many negatives at a small cost per step, as it does for MoCo. The alternative
``"batch"`` uses the other B·(d/h) - 1 aligned keys of the current batch as negatives, with no queue.
"""

from __future__ import annotations

import torch

from .backbones import ResNetEncoder
from .base import StepOutput
from .heads import CoupledHead, HeadOutput
from .losses import in_batch_info_nce, info_nce, weighted_sum
from .mocov2 import MoCoV2
from .queue import KeyQueue


def flatten_aligned(aligned_projection: torch.Tensor) -> torch.Tensor:
    """``B×d×n`` aligned embeddings -> ``(B·n)×d`` rows ordered image by image."""
    return aligned_projection.transpose(1, 2).reshape(-1, aligned_projection.shape[1])


class LEWELM(MoCoV2):
    """LEWEL on MoCo v2: loss ``w·InfoNCE_global + (1 - w)·InfoNCE_aligned`` (w = ``loss_weight``)."""

    def __init__(
        self,
        backbone: ResNetEncoder,
        neck: CoupledHead,
        *,
        temperature: float = 0.2,
        queue_size: int = 65536,
        loss_weight: float = 0.5,
        aligned_negatives: str = "queue",
        aligned_queue_size: int = 65536,
    ) -> None:
        if not isinstance(neck, CoupledHead):
            raise TypeError("LEWEL_M needs a CoupledHead")
        if aligned_negatives not in ("queue", "batch"):
            raise ValueError(f"aligned_negatives must be 'queue' or 'batch', got {aligned_negatives!r}")
        super().__init__(backbone, neck, temperature=temperature, queue_size=queue_size)
        self.loss_weight = loss_weight
        self.aligned_negatives = aligned_negatives
        self.aligned_queue = KeyQueue(neck.out_channels, aligned_queue_size) if aligned_negatives == "queue" else None

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> StepOutput:
        query, key = self.encoder_q(view1), self.keys(view2)
        output = self.loss(query, key)
        self.queue.push(key.global_projection)
        if self.aligned_queue is not None:
            self.aligned_queue.push(flatten_aligned(key.aligned_projection))
        return output

    def loss(self, query: HeadOutput, key: HeadOutput) -> StepOutput:
        loss_global = info_nce(
            query.global_projection, key.global_projection, self.queue.keys, self.temperature, unit_negatives=True
        )
        aligned_query = flatten_aligned(query.aligned_projection)
        aligned_key = flatten_aligned(key.aligned_projection)
        if self.aligned_queue is not None:
            loss_aligned = info_nce(
                aligned_query, aligned_key, self.aligned_queue.keys, self.temperature, unit_negatives=True
            )
        else:
            loss_aligned = in_batch_info_nce(aligned_query, aligned_key, self.temperature)
        return StepOutput(
            loss=weighted_sum(loss_global, loss_aligned, self.loss_weight),
            loss_global=loss_global.detach(),
            loss_aligned=loss_aligned.detach(),
        )
