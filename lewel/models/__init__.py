"""Models: backbones, heads, and the four methods built from them."""

from __future__ import annotations

from ..config import ModelConfig
from .backbones import BACKBONES, ResNetEncoder, build_backbone, infer_backbone_name
from .base import Encoder, MomentumMethod, StepOutput
from .byol import BYOL
from .heads import MLP, CoupledHead, GlobalHead, HeadOutput
from .lewel_b import LEWELB
from .lewel_m import LEWELM
from .mocov2 import MoCoV2


def build_head(config: ModelConfig, in_channels: int) -> CoupledHead | GlobalHead:
    """The projection head of ``config``'s method for a backbone with ``in_channels`` feature channels."""

    def mlp() -> MLP:
        return MLP(in_channels, config.hidden_dim, config.dim, norm=config.head_norm)

    if config.is_lewel:
        return CoupledHead(mlp(), mlp(), num_groups=config.num_groups, scale=config.scale, l2_norm=config.l2_norm)
    return GlobalHead(mlp())


def build_encoder(config: ModelConfig) -> Encoder:
    """Backbone + head of ``config`` (the online network), randomly initialised."""
    backbone = build_backbone(config.backbone)
    return Encoder(backbone, build_head(config, backbone.out_channels))


def build_model(config: ModelConfig) -> MomentumMethod:
    """The full training model of ``config.method``, randomly initialised."""
    encoder = build_encoder(config)
    backbone, neck = encoder.backbone, encoder.neck
    if config.is_moco:
        if config.method == "lewel_m":
            return LEWELM(
                backbone,
                neck,
                temperature=config.temperature,
                queue_size=config.queue_size,
                loss_weight=config.loss_weight,
                aligned_negatives=config.aligned_negatives,
                aligned_queue_size=config.aligned_queue_size,
            )
        return MoCoV2(backbone, neck, temperature=config.temperature, queue_size=config.queue_size)

    def predictor() -> MLP:
        return MLP(config.dim, config.hidden_dim, config.dim, norm=True)

    if config.is_lewel:
        return LEWELB(backbone, neck, predictor(), predictor(), loss_weight=config.loss_weight, eman=config.eman)
    return BYOL(backbone, neck, predictor(), eman=config.eman)


__all__ = [
    "BACKBONES",
    "BYOL",
    "LEWELB",
    "LEWELM",
    "MLP",
    "CoupledHead",
    "Encoder",
    "GlobalHead",
    "HeadOutput",
    "MoCoV2",
    "MomentumMethod",
    "ResNetEncoder",
    "StepOutput",
    "build_backbone",
    "build_encoder",
    "build_head",
    "build_model",
    "infer_backbone_name",
]
