"""Projection heads: the plain MLP of BYOL / MoCo v2 and LEWEL's coupled projection head.

Every head works on sequences ``B×C×L`` with 1×1 ``Conv1d`` layers, as the authors' code does, so one call
projects a pooled vector (L = 1), every pixel of a feature map (L = h·w) or a set of aligned
representations (L = d/h) alike. Parameter names (``mlp.0``, ``mlp.1``, ``mlp.3``) match the authors'.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """``num_layers`` 1×1 convolutions ``in -> hidden -> ... -> out`` on ``B×C×L`` tensors.

    With ``norm`` (BYOL, LEWEL_B) each hidden layer is conv (no bias) -> BatchNorm1d -> ReLU, so the
    BatchNorm statistics are taken over the batch AND the length axis. Without it (MoCo v2) the
    hidden layers are conv (with bias) -> ReLU. The last layer is a bare convolution.
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        *,
        num_layers: int = 2,
        norm: bool = True,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"an MLP needs at least one layer, got num_layers={num_layers}")
        bias = not norm
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(num_layers - 1):
            layers.append(nn.Conv1d(channels, hidden_channels, 1, bias=bias))
            if norm:
                layers.append(nn.BatchNorm1d(hidden_channels))
            layers.append(nn.ReLU(inplace=True))
            channels = hidden_channels
        layers.append(nn.Conv1d(channels, out_channels, 1, bias=bias))
        self.mlp = nn.Sequential(*layers)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``B×in×L`` -> ``B×out×L`` (a view of a ``B×L×out`` tensor).

        The layers run on the ``(B·L)×C`` rows (``forward_rows``): a 1×1 ``Conv1d`` is ``F.linear`` with its
        squeezed weight and BatchNorm1d over rows takes the same statistics as over (B, L). The parameters
        stay the Conv1d's (the authors' checkpoint layout); the computation does not, because the CPU's
        convolution kernels are 1.4-1.9× slower than the matrix product for these shapes (forward +
        backward of 512->4096->256 at L = 1, 5 and 64, measured). In eval mode the Conv1d layers run as they are.
        """
        if not self.training:
            # inference keeps the Conv1d kernels: their result for an image does not depend on the batch it
            # is in, which a multi-threaded matrix product over B·L rows does not promise (an extraction
            # resumed with other batches must rewrite the same shards bit for bit)
            return self.mlp(x)
        batch, channels, length = x.shape
        rows = self.forward_rows(x.transpose(1, 2).reshape(batch * length, channels))
        return rows.reshape(batch, length, -1).transpose(1, 2)

    def forward_rows(self, rows: torch.Tensor, *, start: int = 0) -> torch.Tensor:
        """``N×in`` rows -> ``N×out``; ``start`` skips the first layers (``CoupledHead.project_aligned``
        applies layer 0 itself)."""
        for layer in self.mlp[start:]:
            if isinstance(layer, nn.Conv1d):
                rows = F.linear(rows, layer.weight.squeeze(2), layer.bias)
            else:
                rows = layer(rows)
        return rows


@dataclass
class HeadOutput:
    """What a head returns for one view (shapes for d output channels, D feature channels, h groups).

    ``maps``, ``aligned_features`` and ``aligned_projection`` are ``None`` for the baselines' plain head.
    """

    global_projection: torch.Tensor  #: B×d, the projection z of the pooled feature
    maps: torch.Tensor | None = None  #: B×d×h×w alignment maps, each sums to 1 over its pixels
    aligned_features: torch.Tensor | None = None  #: B×D×(d/h), channel-grouped aggregations of F
    aligned_projection: torch.Tensor | None = None  #: B×d×(d/h), the aligned features through p


class GlobalHead(nn.Module):
    """The baselines' projection: global average pooling, then the MLP ``proj`` -> ``B×d``."""

    def __init__(self, proj: MLP) -> None:
        super().__init__()
        self.proj = proj

    @property
    def out_channels(self) -> int:
        return self.proj.out_channels

    def forward(self, features: torch.Tensor) -> HeadOutput:
        pooled = features.flatten(2).mean(dim=2, keepdim=True)
        return HeadOutput(global_projection=self.proj(pooled).squeeze(2))


def alignment_maps(pixel_projections: torch.Tensor, *, scale: float = 1.0, l2_norm: bool = True) -> torch.Tensor:
    """Spatial softmax of per-pixel projections ``B×d×P`` -> maps ``B×d×P``, each summing to 1 over P.

    The projections are L2-normalised over channels first (``l2_norm``), then divided by the
    temperature ``scale``. Nothing is detached: gradients reach the projection head through the maps.
    """
    if l2_norm:
        pixel_projections = F.normalize(pixel_projections, dim=1)
    return torch.softmax(pixel_projections / scale, dim=2)


def group_aggregate(features: torch.Tensor, maps: torch.Tensor, num_groups: int) -> torch.Tensor:
    """Channel-grouped spatial aggregation: features ``B×D×P`` and maps ``B×d×P`` -> ``B×D×(d/h)``.

    Maps and channels are split into ``num_groups`` (h) CONTIGUOUS chunks, as in the released code
    (not the interleaved order of the paper's Eq. 6): map ``m`` belongs to group ``m // (d/h)``, and
    aligned representation ``n`` concatenates, over groups ``i``, the group-``i`` channels of F weighted
    by map ``i·(d/h) + n``.
    """
    batch, channels, pixels = features.shape
    num_maps = maps.shape[1]
    if channels % num_groups or num_maps % num_groups:
        raise ValueError(
            f"num_groups={num_groups} must divide both the feature channels ({channels}) and the maps ({num_maps})"
        )
    grouped_features = features.reshape(batch, num_groups, channels // num_groups, pixels)
    grouped_maps = maps.reshape(batch, num_groups, num_maps // num_groups, pixels)
    aligned = torch.einsum("bgcp,bgnp->bgcn", grouped_features, grouped_maps)
    return aligned.reshape(batch, channels, num_maps // num_groups)


def map_group(index: int, num_maps: int, num_groups: int) -> int:
    """The channel group of map ``index`` under the contiguous grouping: ``index // (d/h)``."""
    _check_map_index(index, num_maps, num_groups)
    return index // (num_maps // num_groups)


def map_aligned_index(index: int, num_maps: int, num_groups: int) -> int:
    """The aligned representation that map ``index`` contributes to: ``index % (d/h)``."""
    _check_map_index(index, num_maps, num_groups)
    return index % (num_maps // num_groups)


def map_index(group: int, aligned: int, num_maps: int, num_groups: int) -> int:
    """The map of channel group ``group`` that builds aligned representation ``aligned``: ``group·(d/h) + aligned``."""
    per_group = num_maps // num_groups
    if not (0 <= group < num_groups and 0 <= aligned < per_group):
        raise IndexError(f"group {group} / aligned {aligned} out of range for h={num_groups}, d/h={per_group}")
    return group * per_group + aligned


def _check_map_index(index: int, num_maps: int, num_groups: int) -> None:
    if num_maps % num_groups:
        raise ValueError(f"num_groups={num_groups} does not divide the {num_maps} maps")
    if not 0 <= index < num_maps:
        raise IndexError(f"map index {index} out of range: the model has {num_maps} maps")


class CoupledHead(nn.Module):
    """LEWEL's coupled projection head (the authors' "neck").

    One MLP g (``proj``) is applied in a single call to ``[GAP(F), F_1, ..., F_hw]`` (``B×D×(1+hw)``), so
    in training mode its BatchNorm sees the pooled vector and all pixels together. Position 0 is the
    global projection z; positions 1... are per-pixel projections that become the d alignment maps.
    The maps aggregate the feature map into d/h aligned representations (``group_aggregate``), which a
    second MLP p (``proj_obj``, same shape as g, own weights) projects to the aligned embeddings.
    """

    def __init__(self, proj: MLP, proj_obj: MLP, *, num_groups: int = 4, scale: float = 1.0, l2_norm: bool = True) -> None:
        super().__init__()
        d = proj.out_channels
        if d % num_groups or proj.in_channels % num_groups:
            raise ValueError(
                f"num_groups={num_groups} must divide the projection dim d={d} and the feature channels "
                f"D={proj.in_channels}"
            )
        if (proj_obj.in_channels, proj_obj.out_channels) != (proj.in_channels, d):
            raise ValueError("the aligned projection p must map D -> d like g")
        self.proj, self.proj_obj = proj, proj_obj
        self.num_groups, self.scale, self.l2_norm = num_groups, scale, l2_norm

    @property
    def out_channels(self) -> int:
        return self.proj.out_channels

    @property
    def num_aligned(self) -> int:
        """d/h, the number of aligned representations per image."""
        return self.proj.out_channels // self.num_groups

    def forward(self, features: torch.Tensor, *, aligned_projection: bool = True) -> HeadOutput:
        """Feature map ``B×D×h×w`` -> global projection, maps, aligned features and aligned projection
        (``aligned_projection=False`` skips p, about half the head's cost, when only the maps are wanted)."""
        batch, _, height, width = features.shape
        pixels = features.flatten(2)
        projected = self.proj(torch.cat([pixels.mean(dim=2, keepdim=True), pixels], dim=2))
        maps = alignment_maps(projected[:, :, 1:], scale=self.scale, l2_norm=self.l2_norm)
        maps = maps.to(pixels.dtype)
        aligned_features = group_aggregate(pixels, maps, self.num_groups)
        return HeadOutput(
            global_projection=projected[:, :, 0],
            maps=maps.reshape(batch, -1, height, width),
            aligned_features=aligned_features,
            aligned_projection=self.project_aligned(pixels, maps, aligned_features) if aligned_projection else None,
        )

    def factorised_is_faster(self, positions: int) -> bool:
        """Whether ``project_aligned`` takes the factorised form for feature maps of ``positions`` pixels: when
        it needs under half the FLOPs of the direct one (see there)."""
        channels, num_maps = self.proj.in_channels, self.proj.out_channels
        return 2 * positions * (channels + num_maps) < self.num_aligned * channels

    def project_aligned(self, pixels: torch.Tensor, maps: torch.Tensor, aligned_features: torch.Tensor) -> torch.Tensor:
        """p(aligned features) ``B×d×(d/h)``, computed in whichever of two equal ways costs less.

        p's first layer W is linear and each aligned feature is a map-weighted sum of pixels, so
        ``W·y_n = Σ_i Σ_p W_i(p-th pixel of group i)·maps[i·(d/h)+n](p)``: projecting the h·w pixels once
        per group and then pooling them with the maps costs ``hw·hid·(D + d)`` instead of ``(d/h)·hid·D``
        for projecting the d/h aggregated vectors. The direct form is one large matrix product over B·(d/h)
        rows, the factorised one per-group products and a contraction over the pixels, which run at a lower
        rate: it is used only where it needs under half the direct form's FLOPs (forward + backward on one CPU
        thread: 0.8 s against 1.3 s at 2×2 pixels, FLOP ratio 0.09; 1.10 against 1.06 s at 4×4, ratio 0.38;
        2.0 against 1.4 s at 7×7 with D = 2048, ratio 0.86). Both give the same numbers up to float
        rounding (``tests/test_heads.py``).
        """
        batch, channels, positions = pixels.shape
        num_maps, hidden = maps.shape[1], self.proj_obj.mlp[0].out_channels
        if not self.factorised_is_faster(positions):
            return self.proj_obj(aligned_features)
        first = self.proj_obj.mlp[0]
        groups = self.num_groups
        weight = first.weight.reshape(hidden, groups, channels // groups)
        projected = torch.einsum("kgc,bgcp->bgkp", weight, pixels.reshape(batch, groups, channels // groups, positions))
        grouped_maps = maps.reshape(batch, groups, num_maps // groups, positions)
        pre_activation = torch.einsum("bgkp,bgnp->bnk", projected, grouped_maps).reshape(-1, hidden)
        if first.bias is not None:
            pre_activation = pre_activation + first.bias
        rows = self.proj_obj.forward_rows(pre_activation, start=1)
        return rows.reshape(batch, num_maps // groups, -1).transpose(1, 2)
