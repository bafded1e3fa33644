"""The training configuration: one dataclass, filled from a YAML recipe and command-line overrides."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from ..config import ModelConfig


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs. ``batch_size`` is GLOBAL (split over the processes); ``lr`` is absolute.

    ``model`` holds the architecture (see ``ModelConfig``); the rest is data, optimisation and bookkeeping.
    Per-method defaults (optimizer, momentum schedule, augmentation) come from ``TrainConfig.for_method``.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: str = ""
    shared_backdrops: int = 0  #: generated training scenes take this many backgrounds in turn (0: one per scene)
    val_data: str | None = None  #: labelled split for the kNN monitor (its bank is ``data``), run at least at the end
    out: str = "runs/lewel"
    image_size: int = 224
    batch_size: int = 256
    epochs: int = 100
    optimizer: str = "lars"
    lr: float = 0.45
    weight_decay: float = 1e-6
    optimizer_momentum: float = 0.9
    lars_exclude: str = "authors"  #: LARS tensors without decay/adaptation: "authors" (by name) or "norm_bias"
    warmup_epochs: float = 10.0
    base_momentum: float = 0.99
    momentum_schedule: str = "cosine"  #: "cosine" (BYOL) or "constant" (MoCo)
    augmentation: str = "byol"  #: "byol" or "mocov2"
    amp: str = "auto"  #: "auto" (bf16 on GPU, none on CPU), "bf16", "fp16" (with a grad scaler), "none"
    channels_last: bool = True
    compile: bool = False
    sync_bn: bool = False
    workers: int = 4  #: data-loader processes, at most the CPUs this process may use
    seed: int = 0
    save_every: int = 10  #: epochs between numbered checkpoints (the last epoch is always saved)
    save_every_steps: int = 0  #: also refresh last.pt every N steps (0 = off)
    knn_every: int = 0  #: epochs between kNN evaluations (0: only at the end, when val_data is given)
    knn_k: int = 20
    knn_temperature: float = 0.07
    log_every: int = 10  #: steps between logged records (the first and the last step are always logged)
    maps_every: int = 0  #: LEWEL: steps between map monitor passes (0: off); also one at step 0 and one at the end
    maps_images: int = 64  #: map monitor: masked validation images per split (calibration, held-out)
    maps_size: int = 224  #: map monitor: side the images are resized to (224 px: 7×7 maps on a ResNet)
    maps_controls: int = 5  #: map monitor: random networks per initialisation scheme it is judged against (0: none)
    stop_after_steps: int = 0  #: stop after this many steps of the schedule (0: run it all); a screen of a recipe
    resume: str | None = None  #: "auto" (OUT/last.pt when present) or a checkpoint path
    init: str | None = None  #: a model file (lewel.load_model) whose online encoder starts a fresh run (fine-tuning)

    @classmethod
    def for_method(cls, method: str, **overrides: Any) -> TrainConfig:
        """Defaults of the method's family (LARS + cosine momentum + BYOL views, or SGD + 0.999 + MoCo views)."""
        model_overrides = overrides.pop("model", {}) or {}
        if isinstance(model_overrides, ModelConfig):
            model = model_overrides
        else:
            model = ModelConfig.for_method(method, **model_overrides)
        if model.is_moco:
            base = cls(
                model=model, optimizer="sgd", lr=0.03, weight_decay=1e-4, warmup_epochs=0.0,
                base_momentum=0.999, momentum_schedule="constant", augmentation="mocov2",
            )
        else:
            base = cls(model=model)
        return replace(base, **overrides)

    def validate(self) -> TrainConfig:
        from .optim import EXCLUSION_RULES  # not at the top: the CLI reads this module's defaults without torch

        problems = []
        if not self.data:
            problems.append("no training data given (--data DIR or scenes:N)")
        if self.batch_size < 2:
            problems.append("batch_size must be at least 2 (BatchNorm)")
        if self.epochs < 1:
            problems.append("epochs must be at least 1")
        if self.image_size < 32:
            problems.append("image_size must be at least 32")
        if self.optimizer not in ("lars", "sgd"):
            problems.append(f"optimizer must be 'lars' or 'sgd', not {self.optimizer!r}")
        if self.lars_exclude not in EXCLUSION_RULES:
            problems.append(f"lars_exclude must be one of {list(EXCLUSION_RULES)}, not {self.lars_exclude!r}")
        if self.amp not in ("auto", "bf16", "fp16", "none"):
            problems.append(f"amp must be auto, bf16, fp16 or none, not {self.amp!r}")
        if self.momentum_schedule not in ("cosine", "constant"):
            problems.append(f"momentum_schedule must be cosine or constant, not {self.momentum_schedule!r}")
        if self.augmentation not in ("byol", "mocov2"):
            problems.append(f"augmentation must be byol or mocov2, not {self.augmentation!r}")
        if self.stop_after_steps < 0:
            problems.append(f"stop_after_steps must be >= 0 (0 = the whole schedule), not {self.stop_after_steps}")
        if self.maps_every < 0:
            problems.append(f"maps_every must be >= 0 (0 = off), not {self.maps_every}")
        if self.shared_backdrops < 0:
            problems.append(f"shared_backdrops must be >= 0, not {self.shared_backdrops}")
        if self.maps_images < 2:
            problems.append(f"maps_images must be at least 2, not {self.maps_images}")
        if self.maps_controls < 0:
            problems.append(f"maps_controls must be at least 0, not {self.maps_controls}")
        if self.maps_size < 32:
            problems.append(f"maps_size must be at least 32, not {self.maps_size}")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))
        return self

    def advice(self) -> list[str]:
        """Settings that are valid but probably not meant (each a sentence naming the option)."""
        notes = []
        if self.warmup_epochs >= self.epochs:
            notes.append(
                f"warmup_epochs={self.warmup_epochs:g} is not below epochs={self.epochs}: the learning rate rises "
                f"for the whole run and never reaches lr={self.lr:g} nor decays; lower --warmup-epochs"
            )
        if self.knn_every and not self.val_data:
            notes.append(f"knn_every={self.knn_every} does nothing without --val-data (a labelled split)")
        return notes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a (YAML) dict: ``method`` (or ``model.method``) picks the family defaults."""
        data = dict(data)
        model = dict(data.pop("model", {}) or {})
        method = data.pop("method", None) or model.pop("method", None) or "lewel_b_eman"
        model.pop("method", None)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training config keys {unknown}")
        return cls.for_method(method, model=model, **data)


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML recipe into a dict (see ``configs/``)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of settings")
    return data


def merge(recipe: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` (command-line values that were given) win over the recipe; ``model`` merges key by key."""
    merged = dict(recipe)
    for key, value in overrides.items():
        if key == "model":
            merged["model"] = {**(merged.get("model") or {}), **value}
        else:
            merged[key] = value
    return merged
