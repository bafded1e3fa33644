"""The model registry: which checkpoints can be served, and a bounded cache of the loaded ones.

Models are the files with a checkpoint suffix (``CHECKPOINT_SUFFIXES``) directly inside the bundled folder
(``models/``) and ``LEWEL_MODELS_DIR``, found by listing those folders: a request names a model by id and
the id is looked up among the files found, never joined to a path, so no id can reach another file. A
file whose real path (symbolic links resolved) lies outside its folder is listed as refused.

Ids are file names without the checkpoint suffix (``lewel_b_demo``); when two files share that stem, each of
them is listed as ``<folder>:<file name>`` instead (``bundled:r50.pt``, ``models_dir:r50.pt``).

Models open with ``lewel.load_model`` on the GPU when there is one, else the CPU, the first time they are
used; at most ``cache_size`` stay loaded (least recently used evicted). Each loaded model has its own lock:
one request at a time runs on it (or its micro-batcher gathers them). A file that fails to be described
or opened, whatever the exception, is that file's ``error`` (its type and message) and never fails the
listing or another model; the failure is remembered until the file changes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lewel.files.checkpoints import CheckpointError
from lewel.inference import Extraction, LewelModel, describe_checkpoint, load_model
from lewel.maps.profiles import ProfileError, localising_score

from .batching import Batcher, MicroBatcher
from .errors import shown_name
from .metrics import Metrics
from .profile_files import profile_file, read_for

CHECKPOINT_SUFFIXES = (".pth.tar", ".safetensors", ".pth", ".tar", ".pt")
#: Never turned into a model's error: the caller handles running out of memory (503), and Ctrl-C stops.
PASSED_THROUGH = (torch.OutOfMemoryError, MemoryError)
log = logging.getLogger("api.registry")
#: ``(model id, LewelModel.extract, on_batch)`` -> the batcher of a newly loaded model, when a serving engine
#: batches (``api.serving.Serving.batcher``); ``on_batch`` is told the size of every batch run
BatcherFactory = Callable[[str, Callable[..., Extraction], Callable[[int], None] | None], Batcher]


def failure(error: BaseException) -> tuple[str, str]:
    """``(type, message)`` of a failure to describe or load a file. A ``CheckpointError`` message names the
    file and the problem; any other exception is named by its type too (an empty message says so)."""
    kind = type(error).__name__
    message = str(error).strip()
    if isinstance(error, CheckpointError) and message:
        return kind, message
    return kind, f"{kind}: {message}" if message else f"{kind} (no message)"


def checkpoint_stem(name: str) -> str | None:
    """``name`` without its checkpoint suffix (``r50.pth.tar`` -> ``r50``), or ``None`` if it has none."""
    for suffix in CHECKPOINT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


class ModelNotFound(LookupError):
    """No model has this id."""

    def __init__(self, model_id: str, available: Sequence[str]) -> None:
        shown = ", ".join(available[:20]) or "none"
        super().__init__(f"unknown model {shown_name(model_id)}; available: {shown}")
        self.model_id = model_id


class ModelLoadFailed(RuntimeError):
    """A listed file could not be opened as a model; the message names the file and the reason."""

    def __init__(self, model_id: str, file: str, reason: str, error_type: str = "CheckpointError") -> None:
        super().__init__(f"model {model_id!r} (file {file}) cannot be loaded: {reason}")
        self.model_id, self.file, self.reason, self.error_type = model_id, file, reason, error_type


class ModelRefused(ModelLoadFailed):
    """A listed file that may not be opened: its real path lies outside its models folder."""


@dataclass(frozen=True)
class ModelFile:
    """A checkpoint found in a models folder. ``signature`` (mtime, size) tells when it changed;
    ``refused`` says why it may not be opened (a link leading out of its folder)."""

    id: str
    name: str
    folder: str
    path: Path
    signature: tuple[int, int]
    refused: str | None = None


@dataclass
class LoadedModel:
    """A model on its device, with the lock that serialises requests on it (or a micro-batcher)."""

    file: ModelFile
    model: LewelModel
    device: torch.device
    lock: threading.Lock = field(default_factory=threading.Lock)
    batcher: Batcher | None = None
    metrics: Metrics | None = None

    @property
    def id(self) -> str:
        return self.file.id

    def extract(self, images: torch.Tensor, *, aligned_projection: bool = True) -> Extraction:
        """``LewelModel.extract`` of ``B×3×S×S`` normalised images, one request at a time or micro-batched."""
        if self.batcher is not None:
            return self.batcher.submit(images, aligned_projection=aligned_projection)
        with self.lock:
            extraction = self.model.extract(images, aligned_projection=aligned_projection)
        if self.metrics is not None:
            self.metrics.batch_size.observe(images.shape[0])
        return extraction

    def info(self) -> dict[str, Any]:
        described = self.model.describe()
        keys = ("method", "backbone", "d", "h", "num_aligned", "has_maps", "feature_channels", "kind")
        return {k: described.get(k) for k in keys}


class ModelRegistry:
    """Lists the checkpoints of ``folders`` (``(label, path)`` pairs, in priority order) and loads them."""

    def __init__(
        self,
        folders: Sequence[tuple[str, Path | None]],
        *,
        device: torch.device,
        cache_size: int = 2,
        default_model: str | None = None,
        microbatch: bool = False,
        microbatch_max_size: int = 32,
        microbatch_wait_s: float = 0.005,
        metrics: Metrics | None = None,
        expose_paths: bool = False,
        batcher_factory: BatcherFactory | None = None,
        profile_dir: Path | None = None,
    ) -> None:
        self.folders = [(label, Path(path)) for label, path in folders if path is not None]
        self.profile_dir = profile_dir
        self.expose_paths = expose_paths
        self._refusals_logged: set[tuple[Path, Path]] = set()
        self.device = device
        self.cache_size = cache_size
        self.requested_default = default_model
        self.microbatch = microbatch
        self.microbatch_max_size, self.microbatch_wait_s = microbatch_max_size, microbatch_wait_s
        self.batcher_factory = batcher_factory
        self.metrics = metrics
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}
        self._cache: OrderedDict[str, LoadedModel] = OrderedDict()
        self._failures: dict[tuple[Path, tuple[int, int]], tuple[str, str]] = {}
        self._descriptions: dict[tuple[Path, tuple[int, int]], dict[str, Any]] = {}
        self._profiles: dict[tuple[Path, tuple[int, int], Path, tuple[int, int] | None], tuple[dict[str, Any] | None, str | None]] = {}

    # --- finding files -------------------------------------------------------------------------------

    def searched(self) -> list[str]:
        """The folders looked in, for messages: their labels, with their paths when ``expose_paths``."""
        return [f"{label} ({path})" if self.expose_paths else label for label, path in self.folders]

    def scan(self) -> list[ModelFile]:
        """The checkpoints in the folders now, bundled first, each folder in name order."""
        found: list[tuple[str, str, str, Path, tuple[int, int], str | None]] = []
        for label, folder in self.folders:
            try:
                root = folder.resolve()
                entries = sorted(folder.iterdir(), key=lambda p: p.name) if folder.is_dir() else []
            except OSError as error:  # unreadable folder: nothing to serve from it
                log.warning("cannot list %s (%s): %s", label, folder, error)
                continue
            for entry in entries:
                stem = checkpoint_stem(entry.name)
                if stem is None or entry.name.startswith(".") or not entry.is_file():
                    continue
                try:
                    real = entry.resolve(strict=True)
                    stat = real.stat()
                except OSError:  # removed or a dangling link since the listing
                    continue
                refused = None
                if not real.is_relative_to(root):
                    # the link's target is the server's business: named in the log, not to clients
                    refused = f"it is a link to a file outside the {label} folder"
                    if self.expose_paths:
                        refused += f" ({real}, outside {root})"
                    if (entry, real) not in self._refusals_logged:
                        self._refusals_logged.add((entry, real))
                        log.warning("model file %s is refused: it resolves to %s, outside %s", entry, real, root)
                found.append((stem, entry.name, label, real, (stat.st_mtime_ns, stat.st_size), refused))
        stems: dict[str, int] = {}
        for stem, *_ in found:
            stems[stem] = stems.get(stem, 0) + 1
        return [
            ModelFile(stem if stems[stem] == 1 else f"{label}:{name}", name, label, path, signature, refused)
            for stem, name, label, path, signature, refused in found
        ]

    def default_id(self, files: Sequence[ModelFile] | None = None) -> str | None:
        """``LEWEL_DEFAULT_MODEL`` if set; else the model that localises best: among those whose profile
        sidecar (current, readable) says "localises", the highest held-out object-maps AUROC; else the first
        model found. Files already known not to load are passed over."""
        if self.requested_default:
            return self.requested_default
        files = self.scan() if files is None else files
        usable = [f for f in files if not f.refused and (f.path, f.signature) not in self._failures]
        measured = [(score, f.id) for f in usable if (score := localising_score(self.profile(f)[0])) is not None]
        if measured:
            return max(measured)[1]
        return usable[0].id if usable else None

    def resolve(self, model_id: str | None) -> ModelFile:
        """The file of ``model_id`` (``None``: the default model); ``ModelNotFound`` if there is none."""
        files = self.scan()
        wanted = model_id if model_id is not None else self.default_id(files)
        for file in files:
            if file.id == wanted:
                return file
        if wanted is None:
            raise ModelNotFound("(default)", [])
        raise ModelNotFound(wanted, [f.id for f in files])

    # --- describing and loading ----------------------------------------------------------------------

    def _load_lock(self, model_id: str) -> threading.Lock:
        with self._lock:
            return self._load_locks.setdefault(model_id, threading.Lock())

    def _cached(self, file: ModelFile) -> LoadedModel | None:
        with self._lock:
            loaded = self._cache.get(file.id)
            if loaded is not None and loaded.file.path == file.path and loaded.file.signature == file.signature:
                self._cache.move_to_end(file.id)
                return loaded
            return None

    def describe(self, file: ModelFile) -> dict[str, Any]:
        """The ``/v1/models`` entry of ``file``: loaded, available (read, not loaded) or error."""
        entry: dict[str, Any] = {
            "id": file.id,
            "file": file.name,
            "source": file.folder,
            "status": "available",
            "error": None,
            "error_type": None,
            "method": None,
            "backbone": None,
            "d": None,
            "h": None,
            "num_aligned": None,
            "has_maps": None,
            "device": str(self.device),
        }
        key = (file.path, file.signature)
        loaded = self._cached(file)
        if loaded is not None:
            return {**entry, **loaded.info(), "status": "loaded"}
        if file.refused:
            return {**entry, "status": "error", "error": f"refused: {file.refused}", "error_type": "refused"}
        with self._load_lock(file.id):
            if key not in self._descriptions and key not in self._failures:
                try:
                    self._descriptions[key] = describe_checkpoint(file.path)
                except PASSED_THROUGH:
                    raise
                except Exception as error:  # any failure is this file's, never the listing's
                    self._remember_failure(file, key, error)
        if key in self._failures:
            kind, message = self._failures[key]
            return {**entry, "status": "error", "error": message, "error_type": kind}
        described = self._descriptions[key]
        return {**entry, **{k: described.get(k) for k in ("method", "backbone", "d", "h", "num_aligned", "has_maps")}}

    def _remember_failure(self, file: ModelFile, key: tuple[Path, tuple[int, int]], error: BaseException) -> None:
        """Record (and log, once per file version) why ``file`` cannot be described or loaded."""
        self._failures[key] = failure(error)
        log.warning("model %r (%s) cannot be served: %s", file.id, file.path, self._failures[key][1])

    def describe_with_profile(self, file: ModelFile) -> dict[str, Any]:
        """``describe`` plus the file's ``profile`` (or ``None``) and ``profile_error``."""
        entry = self.describe(file)
        profile, error = self.profile(file, d=entry.get("d")) if entry["status"] != "error" else (None, None)
        return {**entry, "profile": profile, "profile_error": error}

    def profile_path(self, file: ModelFile) -> Path:
        """The file that holds ``file``'s profile (``api.profile_files.profile_file``): its sidecar, or the copy
        a service build wrote to ``LEWEL_PROFILE_DIR``, whichever is newer; it may not exist."""
        return profile_file(file.path, file.folder, self.profile_dir)

    def profile(self, file: ModelFile, d: int | None = None) -> tuple[dict[str, Any] | None, str | None]:
        """The profile of ``file`` (``profile_path``) and, when one exists but cannot be used (unreadable, stale,
        for another d), why; cached until the checkpoint or the profile file change, so that a profile written a
        moment ago (``lewel profile``, a service build) is what the next answer shows."""
        path = self.profile_path(file)
        try:
            stat = path.stat()
            profile_signature: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            profile_signature = None
        key = (file.path, file.signature, path, profile_signature)
        with self._lock:
            if key in self._profiles:
                return self._profiles[key]
        if profile_signature is None:
            found: tuple[dict[str, Any] | None, str | None] = (None, None)
        else:
            try:
                found = (read_for(file.path, path, d=d), None)
            except (ProfileError, OSError) as error:
                found = (None, str(error))
            except PASSED_THROUGH:
                raise
            except Exception as error:  # a damaged profile is the profile's error, never the listing's
                found = (None, f"the profile {path.name} cannot be used: {type(error).__name__}: {error}")
        with self._lock:
            self._profiles[key] = found
        return found

    def list(self) -> list[dict[str, Any]]:
        """Every model found, described (see ``describe``); one file's failure is its own entry's error."""
        entries = []
        for file in self.scan():
            try:
                entries.append(self.describe_with_profile(file))
            except PASSED_THROUGH:
                raise
            except Exception as error:  # e.g. a profile summary that does not fit: the entry says so
                kind, message = failure(error)
                entries.append(
                    {"id": file.id, "file": file.name, "source": file.folder, "status": "error", "error": message,
                     "error_type": kind, "device": str(self.device), "profile": None, "profile_error": None}
                )
        return entries

    def get(self, model_id: str | None) -> LoadedModel:
        """The loaded model ``model_id`` (``None``: the default), opening it on first use.

        Raises ``ModelNotFound`` and ``ModelLoadFailed``; ``torch.OutOfMemoryError`` passes through.
        """
        file = self.resolve(model_id)
        if file.refused:
            raise ModelRefused(file.id, file.name, f"refused: {file.refused}")
        loaded = self._cached(file)
        if loaded is not None:
            return loaded
        key = (file.path, file.signature)
        with self._load_lock(file.id):
            loaded = self._cached(file)
            if loaded is not None:
                return loaded
            if key in self._failures:
                kind, message = self._failures[key]
                raise ModelLoadFailed(file.id, file.name, message, kind)
            start = time.perf_counter()
            try:
                model = load_model(file.path, map_location=self.device)
            except PASSED_THROUGH:
                raise
            except Exception as error:  # any failure is this file's: the service keeps serving the others
                self._remember_failure(file, key, error)
                if self.metrics is not None:
                    self.metrics.model_errors.labels(file.id).inc()
                kind, message = self._failures[key]
                raise ModelLoadFailed(file.id, file.name, message, kind) from None
            if self.metrics is not None:
                self.metrics.model_load.labels(file.id).observe(time.perf_counter() - start)
            loaded = LoadedModel(file, model, self.device, metrics=self.metrics)
            on_batch = self.metrics.batch_size.observe if self.metrics is not None else None
            if self.batcher_factory is not None:
                loaded.batcher = self.batcher_factory(file.id, model.extract, on_batch)
            elif self.microbatch:
                loaded.batcher = MicroBatcher(
                    model.extract,
                    max_size=self.microbatch_max_size,
                    wait_s=self.microbatch_wait_s,
                    on_batch=on_batch,
                    name=f"microbatch-{file.id}",
                )
            self._insert(loaded)
            return loaded

    def _insert(self, loaded: LoadedModel) -> None:
        evicted = []
        with self._lock:
            old = self._cache.pop(loaded.id, None)
            if old is not None:
                evicted.append(old)
            self._cache[loaded.id] = loaded
            while len(self._cache) > self.cache_size:
                evicted.append(self._cache.popitem(last=False)[1])
            if self.metrics is not None:
                self.metrics.models_loaded.set(len(self._cache))
        for model in evicted:
            if model.batcher is not None:
                model.batcher.close()
        if evicted and self.device.type == "cuda":
            torch.cuda.empty_cache()

    def loaded_ids(self) -> list[str]:
        with self._lock:
            return list(self._cache)

    def close(self) -> None:
        """Drop every loaded model (and stop their micro-batchers)."""
        with self._lock:
            models = list(self._cache.values())
            self._cache.clear()
        for model in models:
            if model.batcher is not None:
                model.batcher.close()
