"""Builders of checkpoint files in the formats met in the wild, for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lewel.config import ModelConfig
from lewel.files.checkpoints import training_checkpoint
from lewel.models import build_model


def random_tensor(shape: list[int], dtype: str, key: str, generator: torch.Generator) -> torch.Tensor:
    if dtype == "int64":
        return torch.tensor(100, dtype=torch.int64) if not shape else torch.zeros(shape, dtype=torch.int64)
    if key.endswith("running_var"):
        return torch.rand(shape, generator=generator) + 0.5
    if key.endswith(".weight") and len(shape) == 1:  # BatchNorm scale
        return torch.rand(shape, generator=generator) + 0.5
    return torch.randn(shape, generator=generator) * 0.02


def authors_payload(state_dict: dict[str, torch.Tensor], arch: str = "BYOLEMANObj") -> dict:
    """The authors' file layout: DDP ``module.`` keys, NumPy float64 ``best_acc1``, optimizer and scaler."""
    first = next(iter(state_dict.values()))
    return {
        "epoch": 200,
        "arch": arch,
        "state_dict": {f"module.{k}": v for k, v in state_dict.items()},
        "best_acc1": np.float64(72.8),
        "optimizer": {
            "state": {0: {"momentum_buffer": torch.zeros_like(first)}},
            "param_groups": [{"lr": 3.6, "momentum": 0.9, "weight_decay": 1.5e-6, "params": [0]}],
        },
        "scaler": {"scale": 65536.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 7},
    }


def official_from_manifest(manifest: dict, path: Path) -> dict[str, torch.Tensor]:
    """Write a checkpoint with every key, shape and dtype of the manifest, random values. Returns the state."""
    generator = torch.Generator().manual_seed(0)
    state = {
        e["key"].removeprefix("module."): random_tensor(e["shape"], e["dtype"], e["key"], generator)
        for e in manifest["state_dict"]
    }
    torch.save(authors_payload(state), path)
    return state


def save_legacy_numpy(obj: dict, path: Path) -> None:
    """Save like torch 1.x with NumPy 1: the float64 scalar pickled as ``numpy.core.multiarray.scalar``.

    The legacy (non-zip) format keeps the pickle as plain bytes, so the module name can be rewritten.
    """
    torch.save(obj, path, _use_new_zipfile_serialization=False)
    raw = path.read_bytes()
    legacy = raw.replace(b"cnumpy._core.multiarray\nscalar", b"cnumpy.core.multiarray\nscalar")
    assert legacy != raw
    path.write_bytes(legacy)


def tiny_authors_file(path: Path, config: ModelConfig, arch: str = "LEWELB_EMAN") -> torch.nn.Module:
    """A small LEWEL_B trained-model file in the authors' layout (from a freshly built model)."""
    model = build_model(config)
    torch.save(authors_payload(model.state_dict(), arch=arch), path)
    return model


def our_training_file(path: Path, config: ModelConfig) -> torch.nn.Module:
    model = build_model(config)
    torch.save(training_checkpoint(model, config, epoch=3, step=30), path)
    return model
