"""A cache of the random control family's scores, so that profiling a second checkpoint of the same shape
computes only that checkpoint.

A control's scores depend on nothing of the checkpoint being profiled but its shape: the backbone and head
(``ModelConfig``), the control's initialisation scheme and seed, the images (their pixels, masks, instances and
categories, hashed), the input size, what is measured (patterns, the categories they are scored for), torch's
version (its random draws) and this code's ``CACHE_VERSION``. ``entry_key`` hashes all of them into the entry's
name, so an entry is found only for exactly the same inputs: there is no staleness to detect, only damage.

Each entry is one safetensors file ``<key>.safetensors`` under ``cache_root()``: ``LEWEL_CACHE_DIR`` when set,
else the platform's user cache folder (``platformdirs.user_cache_dir("lewel")``) with ``controls/`` below it.
safetensors keeps tensors without pickle (opening one runs no code), and its metadata repeats the key's parts.
An entry is written to a temporary file in the same folder and renamed (``lewel.files.checkpoints.atomic_write``),
so concurrent processes never read half a file; two processes computing the same entry write identical contents
and the last rename wins. A file that does not open, whose metadata does not match its key, or whose tensors are
not the expected ones is deleted and recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..files.checkpoints import atomic_write

log = logging.getLogger("lewel.cache")

CACHE_VERSION = 1  #: bump when what a control's entry holds, or how it is computed, changes
CACHE_ENV = "LEWEL_CACHE_DIR"
ENTRY_SUFFIX = ".safetensors"
FORMAT = "lewel-control-scores"


def cache_root() -> Path:
    """Where control entries live: ``$LEWEL_CACHE_DIR`` if set, else ``<user cache dir>/lewel/controls``."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("lewel", appauthor=False)) / "controls"


def fingerprint(arrays: Iterable[np.ndarray | torch.Tensor | str]) -> str:
    """sha256 over a sequence of arrays (their dtype, shape and bytes) and strings, in order: the identity of a
    profile's images (pixels, masks, instance labels, categories) without trusting a description of them."""
    digest = hashlib.sha256()
    for item in arrays:
        if isinstance(item, str):
            digest.update(b"s" + len(item.encode()).to_bytes(8, "little") + item.encode())
            continue
        array = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else np.asarray(item)
        array = np.ascontiguousarray(array)
        digest.update(f"a{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def entry_key(parts: Mapping[str, Any]) -> str:
    """The entry name for ``parts`` (JSON-able: shape, scheme, seed, images' fingerprint, size ...): sha256 of
    their canonical JSON with ``CACHE_VERSION`` and torch's version added."""
    return hashlib.sha256(_canonical(parts).encode()).hexdigest()


def _canonical(parts: Mapping[str, Any]) -> str:
    full = {**parts, "cache_version": CACHE_VERSION, "torch": torch.__version__.split("+")[0]}
    return json.dumps(full, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class CacheEntry:
    """One cached control as ``lewel cache list`` shows it."""

    key: str
    path: Path
    bytes: int
    modified: float
    parts: dict[str, Any]


class ControlCache:
    """Control entries under ``root`` (default ``cache_root()``); ``enabled=False`` (``--no-cache``) makes
    ``load`` find nothing and ``store`` write nothing, so every control is recomputed."""

    def __init__(self, root: str | os.PathLike | None = None, *, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else cache_root()
        self.enabled = enabled
        self.hits = 0
        self.misses = 0

    def path(self, parts: Mapping[str, Any]) -> Path:
        return self.root / f"{entry_key(parts)}{ENTRY_SUFFIX}"

    def load(self, parts: Mapping[str, Any], names: Iterable[str]) -> dict[str, torch.Tensor] | None:
        """The tensors stored for ``parts``, or None when there is none (or the cache is off). An entry that
        cannot be opened, whose metadata does not repeat ``parts`` or that lacks any of ``names`` is removed
        (logged) and None returned, so that the caller recomputes it."""
        if not self.enabled:
            return None
        path = self.path(parts)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = dict(handle.metadata() or {})
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}
            if metadata.get("format") != FORMAT or metadata.get("parts") != _canonical(parts):
                raise ValueError("its metadata does not match its key")
            missing = sorted(set(names) - set(tensors))
            if missing:
                raise ValueError(f"it lacks {', '.join(missing)}")
        except (OSError, ValueError, SafetensorError, json.JSONDecodeError) as error:
            log.warning("removing damaged control cache entry %s (%s); it is recomputed", path.name, error)
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        self.hits += 1
        return tensors

    def store(self, parts: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> Path | None:
        """Write ``tensors`` as the entry of ``parts`` (atomically); None when the cache is off. A cache folder
        that cannot be written is logged and skipped: the profile does not fail for want of a cache."""
        if not self.enabled:
            return None
        path = self.path(parts)
        contiguous = {name: value.detach().cpu().contiguous() for name, value in tensors.items()}
        metadata = {"format": FORMAT, "parts": _canonical(parts)}
        try:
            return atomic_write(path, lambda temporary: save_file(contiguous, str(temporary), metadata=metadata))
        except OSError as error:
            log.warning("could not write the control cache entry %s: %s", path, error)
            return None

    def entries(self) -> list[CacheEntry]:
        """Every readable entry, newest first (unreadable ones are listed with empty parts)."""
        found = []
        for path in sorted(self.root.glob(f"*{ENTRY_SUFFIX}")) if self.root.is_dir() else []:
            try:
                parts = json.loads(_metadata(path).get("parts", "{}"))
            except (OSError, ValueError, SafetensorError):
                parts = {}
            stat = path.stat()
            found.append(CacheEntry(path.name[: -len(ENTRY_SUFFIX)], path, stat.st_size, stat.st_mtime, parts))
        return sorted(found, key=lambda entry: -entry.modified)

    def clear(self) -> int:
        """Delete every entry (and temporary files interrupted writes left); the number of entries removed."""
        removed = 0
        if not self.root.is_dir():
            return 0
        for path in self.root.iterdir():
            if path.name.endswith(ENTRY_SUFFIX) and not path.name.startswith("."):
                path.unlink(missing_ok=True)
                removed += 1
            elif path.name.startswith(".") and path.name.endswith(".tmp") and time.time() - path.stat().st_mtime > 60:
                path.unlink(missing_ok=True)
        return removed


def _metadata(path: Path) -> dict[str, str]:
    """The string metadata of a safetensors file (only its header is read)."""
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})
