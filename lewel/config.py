"""Model configuration: everything needed to rebuild a model, stored inside every checkpoint we write."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

Method = Literal["lewel_b", "lewel_b_eman", "lewel_m", "byol", "mocov2"]
METHODS: tuple[str, ...] = ("lewel_b", "lewel_b_eman", "lewel_m", "byol", "mocov2")
AlignedNegatives = Literal["queue", "batch"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and loss settings of one method. Defaults are the released ResNet-50 runs.

    ``dim`` is d (the projection size, also the number of alignment maps), ``num_groups`` is h, so a
    LEWEL model has ``dim // num_groups`` aligned representations. ``head_norm`` puts BatchNorm in the
    MLPs (BYOL / LEWEL_B; MoCo v2's head has none). ``eman`` makes the target network an exponential
    moving average of the whole state (BatchNorm statistics too) kept in eval mode.
    """

    method: Method = "lewel_b_eman"
    backbone: str = "resnet50"
    hidden_dim: int = 4096
    dim: int = 256
    num_groups: int = 4
    scale: float = 1.0
    l2_norm: bool = True
    loss_weight: float = 0.5
    head_norm: bool = True
    eman: bool = True
    temperature: float = 0.2
    queue_size: int = 65536
    aligned_queue_size: int = 65536
    aligned_negatives: AlignedNegatives = "queue"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {list(METHODS)}")
        if self.method in ("lewel_b", "lewel_b_eman") and self.eman != (self.method == "lewel_b_eman"):
            # the method's name says which target LEWEL_B has; a recipe's eman: true must not turn lewel_b into EMAN
            raise ValueError(
                f"method {self.method} has {'an EMAN' if self.method == 'lewel_b_eman' else 'a plain momentum'} target, "
                f"but eman={self.eman} was given: use method {'lewel_b' if self.eman is False else 'lewel_b_eman'} "
                "(or leave eman out)"
            )
        if self.aligned_negatives not in ("queue", "batch"):
            raise ValueError(f"aligned_negatives must be 'queue' or 'batch', got {self.aligned_negatives!r}")
        if not isinstance(self.backbone, str) or not self.backbone:
            raise ValueError(f"backbone must be a name such as 'resnet50', got {self.backbone!r}")
        for name in ("hidden_dim", "dim", "num_groups", "queue_size", "aligned_queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.is_lewel and self.dim % self.num_groups:
            raise ValueError(f"num_groups={self.num_groups} (h) must divide dim={self.dim} (d)")
        if not 0.0 <= self.loss_weight <= 1.0:
            raise ValueError(f"loss_weight must lie in [0, 1], got {self.loss_weight}")
        if self.scale <= 0 or self.temperature <= 0:
            raise ValueError("scale and temperature must be positive")

    @property
    def is_lewel(self) -> bool:
        return self.method.startswith("lewel")

    @property
    def is_moco(self) -> bool:
        return self.method in ("lewel_m", "mocov2")

    @classmethod
    def for_method(cls, method: str, **overrides: Any) -> ModelConfig:
        """The published defaults of ``method`` (MoCo v2 head 2048->2048->128 without BatchNorm for the
        MoCo family, BYOL head 4096->256 with BatchNorm otherwise), then ``overrides``."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {list(METHODS)}")
        if method in ("lewel_m", "mocov2"):
            base = cls(method=method, hidden_dim=2048, dim=128, head_norm=False, eman=False)  # type: ignore[arg-type]
        else:
            base = cls(method=method, eman=method == "lewel_b_eman")  # type: ignore[arg-type]
        return replace(base, **overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from ``to_dict`` output; unknown keys are an error (they mean a newer or foreign file)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}")
        return cls(**data)
