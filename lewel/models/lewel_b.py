"""LEWEL_B: BYOL plus alignment maps from the coupled head and an aligned regression loss."""

from __future__ import annotations

from .backbones import ResNetEncoder
from .base import StepOutput
from .byol import BYOL, predict
from .heads import MLP, CoupledHead, HeadOutput
from .losses import normalized_mse, weighted_sum


class LEWELB(BYOL):
    """LEWEL on BYOL. The head is the coupled head; a second predictor ``predictor_obj`` maps the online
    aligned embeddings of one view onto the target's aligned embeddings of the other, index by index.

    Per direction the loss is ``w·L_global + (1 - w)·L_aligned`` (w = ``loss_weight``), both BYOL's
    ``2 - 2·cos`` (L_aligned averaged over all B·(d/h) pairs); the two directions are summed.
    ``eman=True`` is the released 100/200-epoch variant, ``eman=False`` the 400-epoch one.
    """

    def __init__(
        self,
        backbone: ResNetEncoder,
        neck: CoupledHead,
        predictor: MLP,
        predictor_obj: MLP,
        *,
        loss_weight: float = 0.5,
        eman: bool = True,
    ) -> None:
        if not isinstance(neck, CoupledHead):
            raise TypeError("LEWEL_B needs a CoupledHead")
        super().__init__(backbone, neck, predictor, eman=eman)
        self.predictor_obj = predictor_obj
        self.loss_weight = loss_weight

    def loss(self, online1: HeadOutput, online2: HeadOutput, target1: HeadOutput, target2: HeadOutput) -> StepOutput:
        total = loss_global = loss_aligned = 0.0
        for online, target in ((online1, target2), (online2, target1)):
            global_part = normalized_mse(predict(self.predictor, online.global_projection), target.global_projection)
            aligned_part = normalized_mse(
                predict(self.predictor_obj, online.aligned_projection), target.aligned_projection
            )
            total = total + weighted_sum(global_part, aligned_part, self.loss_weight)
            loss_global = loss_global + global_part.detach()
            loss_aligned = loss_aligned + aligned_part.detach()
        return StepOutput(loss=total, loss_global=loss_global, loss_aligned=loss_aligned)
