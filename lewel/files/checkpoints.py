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

import errno
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

from ..config import ModelConfig

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


def _unsafe_global(message: str) -> str | None:
    """The global a ``weights_only`` load refused, when torch's message names one."""
    found = re.search(r"GLOBAL ([\w.]+)", message) or re.search(r"but got <class '([\w.]+)'>", message)
    return found.group(1) if found else None


def _read_failure(error: Exception) -> str:
    """Why torch could not read ``path``, in one sentence (torch's messages are long, or empty)."""
    message = str(error).strip()
    if isinstance(error, EOFError) or "unexpected EOF" in message or "failed finding central directory" in message:
        return "the file is truncated or incomplete (an interrupted write or copy?)"
    if "WeightsUnpickler error" in message or "invalid load key" in message or isinstance(error, (KeyError, IndexError)):
        detail = message.split("WeightsUnpickler error:")[-1].strip().splitlines()
        shown = detail[0].strip() if detail and detail[0].strip() else type(error).__name__
        return f"the file is corrupt or not a torch.save file ({shown})"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def safe_load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` allowing only NumPy float64 scalars beyond tensors.

    A file whose unpickling needs any other global (a class, a function: code that would run) is refused
    with a ``CheckpointError`` naming that global, and nothing of it is executed. Empty, truncated and
    corrupt files raise a ``CheckpointError`` that says which of these it is.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist or is not a file")
    try:
        size = path.stat().st_size
    except OSError as error:
        raise CheckpointError(f"cannot read {str(path)!r}: {error}") from None
    if size == 0:
        raise CheckpointError(f"cannot read {str(path)!r} as a PyTorch checkpoint: the file is empty (0 bytes)")
    try:
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True)
    except (torch.OutOfMemoryError, MemoryError):
        raise
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, KeyError ... by the damage
        unsafe = _unsafe_global(str(error))
        if unsafe is not None:
            raise CheckpointError(
                f"refused to open {str(path)!r}: it needs {unsafe!r} to be unpickled, which could run "
                "arbitrary code. Only tensors, plain containers and NumPy float64 scalars are accepted "
                "(torch.load(weights_only=True)). Re-save the file's state_dict with torch.save if you trust it."
            ) from None
        raise CheckpointError(
            f"cannot read {str(path)!r} as a PyTorch checkpoint: {_read_failure(error)}"
        ) from None


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
        if path.stat().st_size == 0:
            raise CheckpointError(f"cannot read {str(path)!r} as safetensors: the file is empty (0 bytes)")
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_safetensors(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"cannot read {str(path)!r} as safetensors: {error}") from None
    if metadata.get("format") != FORMAT_INFERENCE or "config" not in metadata:
        raise CheckpointError(f"{str(path)!r} is a safetensors file but not a LEWEL inference export (no config)")
    try:
        stored = json.loads(metadata["config"])
        info = json.loads(metadata.get("info", "{}"))
    except ValueError as error:
        raise CheckpointError(f"{str(path)!r}: the metadata is not valid JSON: {error}") from None
    config = None if stored is None else _config_from(stored, path)
    if config is not None:
        _check_head_channels(config, tensors, path)
    return CheckpointContents(FORMAT_INFERENCE, tensors, config, info if isinstance(info, dict) else {})


def _config_from(data: Any, path: Path) -> ModelConfig:
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{str(path)!r} carries an invalid model config: a {type(data).__name__}, not a mapping")
    try:
        return ModelConfig.from_dict(dict(data))
    except (TypeError, ValueError, ArithmeticError) as error:
        raise CheckpointError(f"{str(path)!r} carries an invalid model config: {error}") from None


def _check_head_channels(config: ModelConfig, state: Mapping[str, Any], path: Path) -> None:
    """h must divide the feature channels D that the stored head takes (``neck.proj.mlp.0.weight``)."""
    first = state.get("neck.proj.mlp.0.weight")
    if not config.is_lewel or not isinstance(first, torch.Tensor) or first.dim() < 2:
        return
    channels = int(first.shape[1])
    if channels % config.num_groups:
        raise CheckpointError(
            f"{str(path)!r} carries an invalid model config: num_groups (h) = {config.num_groups} does not divide "
            f"the {channels} feature channels D of its head"
        )


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
        _check_head_channels(config, state, path)
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


#: ``atomic_write``'s temporary files (``.NAME.XXXXXXXX.tmp``, from ``tempfile.mkstemp``) and the training
#: loop's hard link ``.last.pt.link``: what a process killed while writing a checkpoint leaves behind.
STALE_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$|^\.last\.pt\.link$")
#: Write failures count as a full disk when fewer bytes than this (or than were written) remain free.
LOW_DISK_BYTES = 64 * 1024 * 1024


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files that interrupted ``atomic_write`` calls left in ``folder`` (see
    ``STALE_TEMPORARY``); returns those removed. Call it only where no other process is writing."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if STALE_TEMPORARY.match(entry.name) and entry.is_file() and not entry.is_symlink():
            try:
                entry.unlink()
            except FileNotFoundError:
                continue
            removed.append(entry)
    return removed


def _free_bytes(folder: Path) -> int | None:
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def _disk_full(error: BaseException, folder: Path, written: int) -> int | None:
    """The free bytes left when ``error`` came from a full disk (errno ENOSPC anywhere in its chain, or
    torch's bare ``inline_container`` write failure with almost no space left); ``None`` otherwise."""
    free = _free_bytes(folder)
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return free if free is not None else 0
        seen = seen.__cause__ or seen.__context__
    torch_write = isinstance(error, RuntimeError) and (
        "inline_container" in str(error) or "file write failed" in str(error) or "unexpected pos" in str(error)
    )
    if torch_write and free is not None and free < max(LOW_DISK_BYTES, written):
        return free
    return None


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` in ``path``'s folder, then rename: a crash never leaves half a file.

    A full disk raises ``OSError(ENOSPC)`` saying "disk full while writing PATH" (torch's own message does
    not say so); the temporary file is removed on any failure, and ``remove_stale_temporaries`` clears what
    a killed process left.
    """
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
    except Exception as error:
        try:
            written = Path(temporary).stat().st_size
        except OSError:
            written = 0
        Path(temporary).unlink(missing_ok=True)
        free = _disk_full(error, path.parent, written)
        if free is not None:
            raise OSError(
                errno.ENOSPC,
                f"disk full while writing {path} ({free / 2**20:.1f} MiB left on its filesystem, {written / 2**20:.1f} "
                "MiB written before the failure); free some space and run again (--resume auto continues)",
            ) from error
        raise
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through ``atomic_write``."""
    return atomic_write(path, lambda temporary: torch.save(obj, temporary))
