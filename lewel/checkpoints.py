"""Checkpoint I/O: safe loading, recognising the formats in use, and atomic saving.

Formats recognised by ``read_checkpoint`` (all opened with ``torch.load(weights_only=True)`` or safetensors):

- ``lewel-train``: this project's training checkpoints, ``{"format", "model_config", "state_dict", ...}``;
- ``lewel-inference``: this project's inference files (safetensors, or torch with ``format``), online network
  only, the config in the metadata;
- ``authors-lewelb``: the authors' LEWEL_B files, ``{"epoch", "arch", "state_dict", "best_acc1", ...}`` with
  ``module.online_net.*`` keys; the hyper-parameters are not stored, the shapes tell d, hid and the backbone;
- ``moco``: MoCo-style ``encoder_q.*`` keys, ours (``encoder_q.backbone.*``) or MoCo's (a flat ResNet
  plus ``fc``, whose backbone only is used);
- ``backbone``: a bare torchvision ResNet state dict (``conv1.weight`` ..., ``fc.*`` ignored).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy._core.multiarray import scalar as numpy_scalar
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file as load_safetensors

from .config import ModelConfig

FORMAT_TRAIN = "lewel-train"
FORMAT_INFERENCE = "lewel-inference"

#: The only non-tensor globals a checkpoint may need: the authors' ``best_acc1`` is a NumPy float64 scalar,
#: pickled as ``numpy.core.multiarray.scalar`` (NumPy 1) or ``numpy._core.multiarray.scalar`` (NumPy 2)
#: of the dtype ``numpy.dtype('float64')``. Nothing else is allowed.
ALLOWED_GLOBALS: list[Any] = [
    (numpy_scalar, "numpy.core.multiarray.scalar"),
    numpy_scalar,
    np.dtype,
    np.dtypes.Float64DType,
]


class CheckpointError(ValueError):
    """A checkpoint that cannot be opened or does not fit: the message names the file and the problem."""


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` allowing only NumPy float64 scalars beyond tensors.

    A file whose unpickling needs any other global (a class, a function: code that would run) is refused
    with a ``CheckpointError`` naming that global, and nothing of it is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist or is not a file")
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError or EOFError depending on the damage
        message = str(error)
        unsafe = re.search(r"GLOBAL ([\w.]+)", message) or re.search(r"but got <class '([\w.]+)'>", message)
        if unsafe or "weights_only" in message.lower() or "Weights only load failed" in message:
            what = f" {unsafe.group(1)!r}" if unsafe else ""
            raise CheckpointError(
                f"refused to open {str(path)!r}: it needs{what or ' code'} to be unpickled, which could run "
                "arbitrary code. Only tensors, plain containers and NumPy float64 scalars are accepted "
                "(torch.load(weights_only=True)). Re-save the file's state_dict with torch.save if you trust it."
            ) from None
        raise CheckpointError(f"cannot read {str(path)!r} as a PyTorch checkpoint: {message.splitlines()[0]}") from None


@dataclass
class CheckpointContents:
    """What ``read_checkpoint`` recognised in a file.

    ``online_state`` holds the online network's tensors named ``backbone.*`` and ``neck.*`` (no prefix);
    ``config`` is the stored model config, or ``None`` when the file has none (authors', MoCo, backbone).
    """

    kind: str
    online_state: dict[str, torch.Tensor]
    config: ModelConfig | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def has_head(self) -> bool:
        return any(k.startswith("neck.") for k in self.online_state)


def strip_prefix(state: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of ``state`` whose key starts with ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def _without_module_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop DistributedDataParallel's ``module.`` prefix (on every key or none)."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def _tensors_only(state: Mapping[str, Any], path: Path) -> dict[str, torch.Tensor]:
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{str(path)!r}: the state dict has non-tensor entries, e.g. {bad[:3]}")
    return dict(state)


def _read_safetensors(path: Path) -> CheckpointContents:
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_safetensors(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read {str(path)!r} as safetensors: {error}") from None
    if metadata.get("format") != FORMAT_INFERENCE or "config" not in metadata:
        raise CheckpointError(f"{str(path)!r} is a safetensors file but not a LEWEL inference export (no config)")
    stored = json.loads(metadata["config"])
    config = None if stored is None else _config_from(stored, path)
    info = json.loads(metadata.get("info", "{}"))
    return CheckpointContents(FORMAT_INFERENCE, tensors, config, info)


def _config_from(data: Any, path: Path) -> ModelConfig:
    try:
        return ModelConfig.from_dict(dict(data))
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{str(path)!r} carries an invalid model config: {error}") from None


def read_checkpoint(path: str | os.PathLike) -> CheckpointContents:
    """Open ``path`` safely and recognise its format (see the module docstring)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return _read_safetensors(path)
    raw = safe_load(path)
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{str(path)!r} holds a {type(raw).__name__}, not a checkpoint dict")
    if raw.get("format") in (FORMAT_TRAIN, FORMAT_INFERENCE):
        config = _config_from(raw.get("model_config"), path)
        state = _tensors_only(_without_module_prefix(raw.get("state_dict", {})), path)
        if raw["format"] == FORMAT_TRAIN:
            prefix = "encoder_q." if config.is_moco else "online_net."
            state = strip_prefix(state, prefix)
        meta = {k: raw[k] for k in ("epoch", "step") if k in raw}
        return CheckpointContents(raw["format"], state, config, meta)

    state = raw.get("state_dict", raw)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{str(path)!r}: 'state_dict' is a {type(state).__name__}, not a dict")
    state = _without_module_prefix(state)
    meta = {}
    for key in ("epoch", "arch", "best_acc1"):
        if key in raw:
            value = raw[key]
            meta[key] = value.item() if isinstance(value, (np.generic, torch.Tensor)) else value
    if any(k.startswith("online_net.") for k in state):
        return CheckpointContents("authors-lewelb", _tensors_only(strip_prefix(state, "online_net."), path), None, meta)
    if any(k.startswith("encoder_q.") for k in state):
        query = _tensors_only(strip_prefix(state, "encoder_q."), path)
        if any(k.startswith("backbone.") for k in query):
            return CheckpointContents("moco", query, None, meta)
        backbone = {k: v for k, v in query.items() if not k.startswith("fc.")}
        return CheckpointContents("moco", {f"backbone.{k}": v for k, v in backbone.items()}, None, meta)
    if "conv1.weight" in state:
        backbone = {k: v for k, v in _tensors_only(state, path).items() if not k.startswith("fc.")}
        return CheckpointContents("backbone", {f"backbone.{k}": v for k, v in backbone.items()}, None, meta)
    sample = sorted(state)[:5]
    raise CheckpointError(
        f"{str(path)!r} is not a LEWEL, MoCo or ResNet checkpoint: no 'online_net.', 'encoder_q.' or "
        f"'conv1.weight' keys (first keys: {sample})"
    )


def training_checkpoint(model: torch.nn.Module, model_config: ModelConfig, **extra: Any) -> dict[str, Any]:
    """The dict this project saves during training: format tag, model config, full state dict, ``extra``
    (optimizer, epoch, ...). Plain Python and tensors only, so ``safe_load`` opens it."""
    return {"format": FORMAT_TRAIN, "model_config": model_config.to_dict(), "state_dict": model.state_dict(), **extra}


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` in ``path``'s folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through ``atomic_write``."""
    return atomic_write(path, lambda temporary: torch.save(obj, temporary))
