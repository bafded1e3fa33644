"""Readiness: whether the service can answer, for ``/readyz``. The default model is loaded and run once
in a background thread (``Readiness.warm_up``); a failed attempt is retried only once the model files change.
"""

from __future__ import annotations

import logging
import threading

import torch

from .registry import ModelLoadFailed, ModelNotFound, ModelRegistry

log = logging.getLogger("api.readiness")


class Readiness:
    """Ready once the default model is loaded and has run once (``warm_up``, in a background thread).

    At most one attempt runs at a time. ``check`` starts a new one only when the last one failed and the
    model files have changed since (a model dropped into the folder, a broken file replaced), so a service
    whose default model is broken says why on every call, without retrying the same file again and again.
    """

    def __init__(self, registry: ModelRegistry, warmup_size: int) -> None:
        self.registry, self.warmup_size = registry, warmup_size
        self.ready = False
        self.model_id: str | None = None
        self.message = "starting: the default model is being loaded"
        self.attempts = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._tried: tuple | None = None  #: the model files as they were when the last attempt began

    def _files_now(self) -> tuple:
        return tuple((f.id, str(f.path), f.signature, f.refused) for f in self.registry.scan())

    def start(self) -> None:
        """Begin an attempt unless ready, one is running, or the files are those the last one failed on."""
        with self._lock:
            if self.ready or (self._thread is not None and self._thread.is_alive()):
                return
            files = self._files_now()
            if self._tried is not None and files == self._tried:
                return
            self._tried = files
            self.attempts += 1
            self._thread = threading.Thread(target=self._attempt, name="lewel-warm-up", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the running attempt to end; whether the service is ready."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.ready

    def _attempt(self) -> None:
        self.warm_up()
        if not self.ready:
            log.warning("not ready: %s", self.message)

    def warm_up(self) -> None:
        """Load the default model and run it once on a blank image. Without ``LEWEL_DEFAULT_MODEL``, a file
        that fails to load is passed over for the next one (the failures are named in the message). Never
        raises: whatever goes wrong becomes the message ``/readyz`` answers with."""
        registry = self.registry
        failures: list[str] = []
        retry = "; the service tries again when the model files change"
        default: str | None = None
        try:
            while True:
                default = registry.default_id()
                if default is None:
                    looked = "; ".join(registry.searched() or ["no folder"])
                    self.message = (
                        "no model found: looked in " + looked
                        if not failures
                        else (f"no model could be loaded (looked in {looked}): " + "; ".join(failures))
                    )
                    return
                try:
                    loaded = registry.get(default)
                    break
                except ModelLoadFailed as error:
                    if registry.requested_default:
                        raise
                    failures.append(str(error))
            loaded.extract(torch.zeros(1, 3, self.warmup_size, self.warmup_size))
            self.model_id, self.ready = default, True
            self.message = f"ready: default model {default!r} loaded and run on {registry.device}"
        except ModelNotFound as error:
            self.message = f"default model not found: {error} (looked in {'; '.join(registry.searched())})"
        except ModelLoadFailed as error:
            self.message = f"default model failed to load: {error}{retry}"
        except Exception as error:  # the thread must never die silently: /readyz reports it
            self.message = f"default model {default!r} failed its first run: {type(error).__name__}: {error}{retry}"

    def check(self) -> tuple[bool, str]:
        """``(ready, message)`` for ``/readyz``, starting a new attempt when one is due (see ``start``)."""
        if not self.ready:
            self.start()
        return self.ready, self.message
