"""Inference: ``load_model`` opens any supported checkpoint as an online network in eval mode, and
``LewelModel.extract`` turns normalised images into feature maps, alignment maps and aligned representations.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

import torch
from torch import nn
from torch.fx.experimental.optimization import fuse

from .config import ModelConfig
from .files.checkpoints import CheckpointContents, CheckpointError, read_checkpoint, strip_prefix
from .models import build_backbone, build_head, infer_backbone_name
from .models.heads import CoupledHead, GlobalHead, map_aligned_index, map_group, map_index

DEFAULT_NUM_GROUPS = 4  #: h of every released run; the authors' files do not store it
MIN_SIZE = 32  #: the smallest input side that still gives a 1×1 feature map


class MapsUnavailableError(RuntimeError):
    """Asked for head outputs (maps, embeddings) of a model loaded without the corresponding head."""


class Extraction:
    """What ``LewelModel.extract`` computes for a batch of B images (D feature channels, d maps, h groups).

    - ``feature_map``: ``B×D×h'×w'`` backbone features;
    - ``global_embedding``: ``B×d``, the projection z of the pooled feature;
    - ``maps``: ``B×d×h'×w'`` alignment maps, each summing to 1;
    - ``aligned_features``: ``B×(d/h)×D``, the channel-grouped aggregations of the feature map;
    - ``aligned_embeddings``: ``B×(d/h)×d``, those through the aligned projection;
    - ``d`` and ``h`` (``None`` without a LEWEL head).

    Fields the loaded model cannot compute raise ``MapsUnavailableError`` saying why.
    """

    def __init__(
        self, feature_map: torch.Tensor, d: int | None, h: int | None, reason: str, *, skipped: tuple[str, ...] = (),
        **outputs: Any,
    ) -> None:
        self.feature_map = feature_map
        self.d, self.h = d, h
        self._outputs = outputs
        self._reason = reason
        self._skipped = skipped

    def _get(self, name: str) -> torch.Tensor:
        value = self._outputs.get(name)
        if value is None:
            if name in self._skipped:
                raise MapsUnavailableError(f"{name} was not computed: extract(..., aligned_projection=False)")
            raise MapsUnavailableError(f"{name} is unavailable: {self._reason}")
        return value

    @property
    def global_embedding(self) -> torch.Tensor:
        return self._get("global_embedding")

    @property
    def maps(self) -> torch.Tensor:
        return self._get("maps")

    @property
    def aligned_features(self) -> torch.Tensor:
        return self._get("aligned_features")

    @property
    def aligned_embeddings(self) -> torch.Tensor:
        return self._get("aligned_embeddings")

    @property
    def has_maps(self) -> bool:
        return self._outputs.get("maps") is not None

    def __len__(self) -> int:
        return int(self.feature_map.shape[0])

    def select(self, images: slice) -> Extraction:
        """The images ``images`` (a slice of the batch axis) of this extraction, e.g. one request's share
        of a batch that several requests ran together."""
        outputs = {k: (v[images] if v is not None else None) for k, v in self._outputs.items()}
        return Extraction(self.feature_map[images], self.d, self.h, self._reason, skipped=self._skipped, **outputs)

    def to(self, device: str | torch.device) -> Extraction:
        """The same extraction with every tensor on ``device``."""
        outputs = {k: (v.to(device) if v is not None else None) for k, v in self._outputs.items()}
        return Extraction(self.feature_map.to(device), self.d, self.h, self._reason, skipped=self._skipped, **outputs)


class LewelModel(nn.Module):
    """The online network of a trained model (backbone and, when the checkpoint has it, its head), for
    inference only. ``neck`` is a ``CoupledHead`` for LEWEL models, a ``GlobalHead`` for the baselines and
    ``None`` for a bare backbone."""

    def __init__(
        self,
        backbone: nn.Module,
        neck: CoupledHead | GlobalHead | None,
        *,
        config: ModelConfig | None = None,
        source: str = "",
        kind: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.backbone, self.neck = backbone, neck
        self.config, self.source, self.kind = config, source, kind
        self.metadata = dict(metadata or {})
        self.eval()

    @property
    def has_maps(self) -> bool:
        return isinstance(self.neck, CoupledHead)

    @property
    def d(self) -> int | None:
        """Projection size = number of alignment maps (None for a bare backbone)."""
        return None if self.neck is None else self.neck.out_channels

    @property
    def h(self) -> int | None:
        """Number of channel groups (None without a LEWEL head)."""
        return self.neck.num_groups if isinstance(self.neck, CoupledHead) else None

    @property
    def num_aligned(self) -> int | None:
        """d/h, the number of aligned representations (None without a LEWEL head)."""
        return self.neck.num_aligned if isinstance(self.neck, CoupledHead) else None

    @property
    def feature_channels(self) -> int:
        return self.backbone.out_channels

    @property
    def method(self) -> str:
        return self.config.method if self.config is not None else "backbone"

    @property
    def backbone_name(self) -> str:
        return self.backbone.name

    def _require_maps(self) -> CoupledHead:
        if not isinstance(self.neck, CoupledHead):
            raise MapsUnavailableError(self._missing_reason())
        return self.neck

    def _missing_reason(self) -> str:
        if self.neck is None:
            return f"{self.source or 'this model'} holds a backbone only (no projection head), so it has no maps"
        return f"{self.source or 'this model'} is a {self.method} model without LEWEL's coupled head"

    def folded(self) -> LewelModel:
        """A copy for inference whose backbone has every BatchNorm folded into the convolution before it
        (``torch.fx.experimental.optimization.fuse``: in eval mode ``BN(conv(x))`` is one convolution with
        rescaled weights and a bias): the same maps up to float rounding (about 1e-6 of a feature), with one pass
        over each layer's output less (``benchmarks/control_batching.py``). The head is shared, not copied.
        ``self`` is left as it is."""
        backbone = fuse(self.backbone.eval())
        backbone.name, backbone.out_channels = self.backbone_name, self.feature_channels
        return LewelModel(
            backbone, self.neck, config=self.config, source=self.source, kind=self.kind, metadata=self.metadata
        )

    def map_group(self, index: int) -> int:
        """Channel group of map ``index`` (contiguous grouping, as the released code: ``index // (d/h)``)."""
        return map_group(index, self._require_maps().out_channels, self._require_maps().num_groups)

    def map_aligned_index(self, index: int) -> int:
        """Aligned representation built with map ``index`` (``index % (d/h)``)."""
        return map_aligned_index(index, self._require_maps().out_channels, self._require_maps().num_groups)

    def map_index(self, group: int, aligned: int) -> int:
        """Map used by channel group ``group`` for aligned representation ``aligned``."""
        return map_index(group, aligned, self._require_maps().out_channels, self._require_maps().num_groups)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary: method, backbone, d, h, D, where it came from."""
        return {
            "method": self.method,
            "backbone": self.backbone_name,
            "feature_channels": self.feature_channels,
            "d": self.d,
            "h": self.h,
            "num_aligned": self.num_aligned,
            "has_maps": self.has_maps,
            "kind": self.kind,
            "source": self.source,
            **{k: v for k, v in self.metadata.items() if isinstance(v, (int, float, str))},
        }

    def train(self, mode: bool = True) -> LewelModel:
        """An inference model stays in eval mode (BatchNorm uses its running statistics)."""
        return super().train(False)

    @torch.inference_mode()
    def extract(self, images: torch.Tensor, *, aligned_projection: bool = True) -> Extraction:
        """``images``: ``B×3×H×W`` float, already normalised, H and W >= 32 -> ``Extraction``.

        ``aligned_projection=False`` skips the aligned projection p (``aligned_embeddings`` then raises),
        which saves about half of the LEWEL head's cost when only maps and aligned features are needed.
        """
        if not isinstance(images, torch.Tensor) or not images.is_floating_point():
            raise ValueError("images must be a floating-point tensor B×3×H×W (normalised)")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape B×3×H×W, got {tuple(images.shape)}")
        if min(images.shape[2:]) < MIN_SIZE:
            raise ValueError(f"images must be at least {MIN_SIZE}×{MIN_SIZE} pixels, got {tuple(images.shape[2:])}")
        parameter = next(self.parameters())
        feature_map = self.backbone(images.to(device=parameter.device, dtype=parameter.dtype))
        if self.neck is None:
            return Extraction(feature_map, None, None, self._missing_reason())
        if isinstance(self.neck, CoupledHead):
            head = self.neck(feature_map, aligned_projection=aligned_projection)
        else:
            head = self.neck(feature_map)
        outputs: dict[str, Any] = {"global_embedding": head.global_projection}
        skipped: tuple[str, ...] = ()
        if head.maps is not None:
            outputs.update(
                maps=head.maps,
                aligned_features=head.aligned_features.transpose(1, 2),
                aligned_embeddings=None if head.aligned_projection is None else head.aligned_projection.transpose(1, 2),
            )
            skipped = () if aligned_projection else ("aligned_embeddings",)
        return Extraction(feature_map, self.d, self.h, self._missing_reason(), skipped=skipped, **outputs)


def _mlp_shape(state: dict[str, torch.Tensor], prefix: str, source: str) -> tuple[int, int, int, bool]:
    """(in, hidden, out, has BatchNorm) of a 2-layer MLP stored under ``prefix`` (e.g. ``neck.proj.mlp.``)."""
    weights = sorted(
        (int(m.group(1)), v)
        for k, v in state.items()
        if (m := re.fullmatch(re.escape(prefix) + r"(\d+)\.weight", k)) and v.dim() == 3
    )
    if len(weights) != 2:
        raise CheckpointError(f"{source}: expected a 2-layer MLP under {prefix!r}, found {len(weights)} conv layers")
    (_, first), (_, last) = weights
    has_norm = f"{prefix}1.running_mean" in state
    return first.shape[1], first.shape[0], last.shape[0], has_norm


def _infer_config(contents: CheckpointContents, source: str) -> ModelConfig | None:
    """Rebuild the model config of a file that does not store one, from its tensor shapes."""
    state = contents.online_state
    backbone = infer_backbone_name(strip_prefix(state, "backbone."))
    if not contents.has_head:
        return None
    _, hidden, dim, has_norm = _mlp_shape(state, "neck.proj.mlp.", source)
    coupled = any(k.startswith("neck.proj_obj.") for k in state)
    if contents.kind == "moco":
        method = "lewel_m" if coupled else "mocov2"
    else:
        method = ("lewel_b_eman" if "EMAN" in str(contents.metadata.get("arch", "")).upper() else "lewel_b") if coupled else "byol"
    num_groups = DEFAULT_NUM_GROUPS if coupled and dim % DEFAULT_NUM_GROUPS == 0 else 1
    return ModelConfig.for_method(
        method, backbone=backbone, hidden_dim=hidden, dim=dim, head_norm=has_norm, num_groups=num_groups
    )


def _load_strict(module: nn.Module, state: dict[str, torch.Tensor], part: str, source: str) -> None:
    expected, given = set(module.state_dict()), set(state)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{source}: the {part} does not match the model: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f"{source}: the {part} has tensors of the wrong shape: {error}") from None


def model_from_contents(
    contents: CheckpointContents, *, num_groups: int | None = None, source: str = ""
) -> LewelModel:
    """Build and fill a ``LewelModel`` from recognised checkpoint contents (see ``read_checkpoint``)."""
    config = contents.config or _infer_config(contents, source)
    if num_groups is not None:
        if config is None or not config.is_lewel:
            raise CheckpointError(f"{source}: num_groups applies to LEWEL models only; this file has no coupled head")
        try:
            config = replace(config, num_groups=num_groups)
        except ValueError as error:
            raise CheckpointError(f"{source}: {error}") from None
    stray = sorted(k for k in contents.online_state if not k.startswith(("backbone.", "neck.")))
    if stray:
        raise CheckpointError(f"{source}: unexpected keys in the online network: {stray[:5]}")
    backbone_state = strip_prefix(contents.online_state, "backbone.")
    name = config.backbone if config is not None else infer_backbone_name(backbone_state)
    backbone = build_backbone(name)
    _load_strict(backbone, backbone_state, "backbone", source)
    neck = None
    if config is not None:
        try:
            neck = build_head(config, backbone.out_channels)
        except ValueError as error:
            raise CheckpointError(f"{source}: {error}") from None
        _load_strict(neck, strip_prefix(contents.online_state, "neck."), "projection head", source)
    return LewelModel(backbone, neck, config=config, source=source, kind=contents.kind, metadata=contents.metadata)


def describe_checkpoint(path: str | os.PathLike, *, num_groups: int | None = None) -> dict[str, Any]:
    """What ``load_model(path).describe()`` would say about method, backbone, d, h and kind, read from the
    file's config or tensor shapes without building the network (cheaper, for listing many files).

    Raises ``CheckpointError`` for files ``load_model`` refuses at the reading stage; a file that passes here
    can still fail ``load_model`` on misshapen tensors.
    """
    source = os.fspath(path)
    contents = read_checkpoint(path)
    config = contents.config or _infer_config(contents, source)
    if num_groups is not None and config is not None and config.is_lewel:
        try:
            config = replace(config, num_groups=num_groups)
        except ValueError as error:
            raise CheckpointError(f"{source}: {error}") from None
    lewel = config is not None and config.is_lewel
    if config is not None:
        backbone = config.backbone
    else:
        backbone = infer_backbone_name(strip_prefix(contents.online_state, "backbone."))
    return {
        "method": config.method if config is not None else "backbone",
        "backbone": backbone,
        "d": config.dim if config is not None else None,
        "h": config.num_groups if lewel else None,
        "num_aligned": config.dim // config.num_groups if lewel else None,
        "has_maps": lewel,
        "kind": contents.kind,
        "source": source,
    }


def load_model(
    path: str | os.PathLike,
    *,
    num_groups: int | None = None,
    map_location: str | torch.device = "cpu",
) -> LewelModel:
    """Open a checkpoint as an inference model (online network only, eval mode) on ``map_location``.

    Accepts the authors' LEWEL_B files, this project's training and inference checkpoints, MoCo-style
    ``encoder_q`` files and bare backbone state dicts. ``num_groups`` (h) defaults to the checkpoint's config,
    else 4 as in the released runs. Unreadable, unsafe or mismatching files raise ``CheckpointError``.
    """
    source = os.fspath(path)
    contents = read_checkpoint(path)
    model = model_from_contents(contents, num_groups=num_groups, source=source)
    return model.to(map_location).float()
