"""Export a model's weights for use elsewhere: torchvision, detectron2, safetensors.

Above ``lewel.inference`` (it writes a loaded ``LewelModel``) and ``lewel.files.checkpoints`` (the atomic writes and
the format name ``lewel.load_model`` reads back)."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch
from safetensors.torch import save_file

from .files.checkpoints import FORMAT_INFERENCE, atomic_save, atomic_write
from .inference import LewelModel

EXPORT_FORMATS = ("torchvision", "detectron2", "safetensors")


def export_torchvision(model: LewelModel, path: str | os.PathLike) -> Path:
    """Save the backbone as a state dict for ``torchvision.models.resnetXX(weights=None)``.

    The keys are torchvision's; only the classifier (``fc.*``) is missing, so load it with ``strict=False``
    and check that the missing keys are exactly ``fc.weight`` and ``fc.bias``.
    """
    state = {k: v.detach().float().cpu().clone() for k, v in model.backbone.state_dict().items()}
    return atomic_save(state, path)


def detectron2_name(key: str) -> str:
    """torchvision ResNet key -> detectron2 ResNet key (``layer1`` -> ``res2``, ``bn1`` -> ``conv1.norm``,
    ``downsample.0/1`` -> ``shortcut`` / ``shortcut.norm``, stem layers under ``stem.``)."""
    parts = key.split(".")
    if parts[0].startswith("layer"):
        parts[0] = f"res{int(parts[0][len('layer'):]) + 1}"
    else:
        parts.insert(0, "stem")
    renamed = ".".join(parts)
    for index in (1, 2, 3):
        renamed = renamed.replace(f"bn{index}.", f"conv{index}.norm.")
    return renamed.replace("downsample.0.", "shortcut.").replace("downsample.1.", "shortcut.norm.")


def export_detectron2(model: LewelModel, path: str | os.PathLike) -> Path:
    """Save the backbone in detectron2's pickle format (the one MoCo's converter writes): a dict with
    ``model`` (detectron2 names -> NumPy arrays), ``__author__`` and ``matching_heuristics=True``, for
    ``MODEL.WEIGHTS`` with ``MODEL.PIXEL_MEAN/STD`` set to torchvision's normalisation and ``INPUT.FORMAT RGB``.
    BatchNorm's ``num_batches_tracked`` counters are dropped (detectron2's layers have none)."""
    weights = {
        detectron2_name(k): v.detach().float().cpu().numpy()
        for k, v in model.backbone.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    payload = {"model": weights, "__author__": "lewel", "matching_heuristics": True}

    def write(temporary: Path) -> None:
        with temporary.open("wb") as handle:
            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)

    return atomic_write(path, write)


def export_safetensors(model: LewelModel, path: str | os.PathLike, *, half: bool = False) -> Path:
    """Save the inference model (backbone and head) as safetensors with its config in the metadata.

    ``lewel.load_model`` opens the result. ``half=True`` stores float16 (half the size; maps agree with the
    float32 model to about 1e-3).
    """
    dtype = torch.float16 if half else torch.float32
    tensors = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    info = {k: v for k, v in model.metadata.items() if isinstance(v, (int, float, str))}
    metadata = {
        "format": FORMAT_INFERENCE,
        "config": json.dumps(None if model.config is None else model.config.to_dict()),
        "info": json.dumps(info),
    }
    return atomic_write(path, lambda temporary: save_file(tensors, str(temporary), metadata=metadata))


def export(model: LewelModel, path: str | os.PathLike, fmt: str, *, half: bool = False) -> Path:
    """Dispatch to one of ``EXPORT_FORMATS``."""
    if fmt == "torchvision":
        return export_torchvision(model, path)
    if fmt == "detectron2":
        return export_detectron2(model, path)
    if fmt == "safetensors":
        return export_safetensors(model, path, half=half)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {list(EXPORT_FORMATS)}")
