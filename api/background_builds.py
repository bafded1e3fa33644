"""What the service's background builds share (atlases, ``api.atlas_builds``; profiles, ``api.profile_builds``):
at most one build at a time, run in a daemon thread through a ``Runner``, its state per model behind a lock, its
progress by stage and share done, a cancel event that stops it at its next progress report when the service
stops, and whatever fails in it turned into its status: the service keeps serving.

The ``Runner`` is the seam of the engine: the build in the calling thread by default, a Ray task when the service is
served on Ray (``api.ray_builds``).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Generic, Protocol, TypeVar

CLOSE_WAIT_S = 10.0  #: how long ``close`` waits for a cancelled build to stop


class Runner(Protocol):
    """Runs ``function(*args, progress=progress, **kwargs)`` (a build such as ``make_atlas``) and returns what it
    returns; ``progress(stage, done, total)`` is called in the caller's process and may raise to stop the build."""

    def __call__(
        self, function: Callable[..., Any], *args: Any, progress: Callable[[str, int, int], None], **kwargs: Any
    ) -> Any: ...


def run_here(
    function: Callable[..., Any], *args: Any, progress: Callable[[str, int, int], None], **kwargs: Any
) -> Any:
    """The default ``Runner``: the build in the calling thread."""
    return function(*args, progress=progress, **kwargs)


class Cancelled(Exception):
    """Raised inside a build's progress callback when the service stops."""


class BuildRecord(Protocol):
    """The fields of a build's status dataclass that ``BackgroundBuilds`` keeps up to date."""

    model: str
    status: str
    stage: str | None
    done: int
    total: int
    fraction: float
    message: str
    seconds: float | None
    started: float | None


Record = TypeVar("Record", bound=BuildRecord)


class BackgroundBuilds(ABC, Generic[Record]):
    """The builds of one kind this process ran, at most one at a time. A subclass names its ``kind`` (for the
    thread and the log), its ``stages`` and the share of the progress bar each fills (``stage_weights``), says
    what a stage's progress reads as (``_progress_message``) and what a finished build's record becomes
    (``_succeeded``, ``_failed``)."""

    kind: str
    stages: tuple[str, ...]
    stage_weights: dict[str, float]
    cancelled_message: str
    log: logging.Logger

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._lock = threading.Lock()
        self._builds: dict[str, Record] = {}
        self._thread: threading.Thread | None = None
        self._running: str | None = None
        self._cancel = threading.Event()

    def _record(self, model: str, idle: Callable[[str], Record]) -> dict[str, Any]:
        """The last build of ``model`` (``idle(model)`` when none) as a dict, ``seconds`` counted up to now while
        it runs, without its start time."""
        with self._lock:
            current = self._builds.get(model)
            body = asdict(current if current is not None else idle(model))
        if body["status"] == "running" and body["started"] is not None:
            body["seconds"] = round(time.monotonic() - body["started"], 1)
        body.pop("started")
        return body

    def _launch(self, record: Record, build: Callable[..., Any], *args: Any, **kwargs: Any) -> str | None:
        """Start ``self.runner(build, *args, progress=…, **kwargs)`` in a thread for ``record.model``, with
        ``record`` (status ``running``) as its state; ``None``, or the model whose build runs already (then
        nothing is started)."""
        model = record.model
        with self._lock:
            if self._running is not None:
                return self._running
            record.started = time.monotonic()
            self._builds[model] = record
            self._running = model
            self._cancel.clear()
            self._thread = threading.Thread(
                target=self._run, args=(model, build, args, kwargs), name=f"{self.kind}-{model}", daemon=True
            )
            self._thread.start()
        return None

    @abstractmethod
    def _progress_message(self, stage: str, done: int, total: int) -> str:
        """What the status says while ``stage`` has done ``done`` of ``total``."""

    @abstractmethod
    def _succeeded(self, record: Record, result: Any) -> None:
        """Fill in ``record`` of a build that returned ``result`` (under the lock)."""

    @abstractmethod
    def _failed(self, record: Record, reason: str) -> None:
        """Fill in ``record`` of a build that failed for ``reason`` (under the lock)."""

    def _progress(self, model: str, stage: str, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise Cancelled
        before = sum(self.stage_weights[s] for s in self.stages[: self.stages.index(stage)])
        share = self.stage_weights[stage] * (done / total if total else 1.0)
        message = self._progress_message(stage, done, total)
        with self._lock:
            record = self._builds[model]
            record.stage, record.done, record.total = stage, done, total
            record.fraction = round(min(before + share, 1.0), 4)
            record.message = message

    def _run(self, model: str, build: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> None:
        result, reason = None, None
        try:
            result = self.runner(
                build, *args, progress=lambda stage, done, total: self._progress(model, stage, done, total), **kwargs
            )
        except Cancelled:
            reason = self.cancelled_message
        except Exception as error:  # noqa: BLE001 - any failure is the build's status, never the service's
            self.log.exception("the %s build of %r failed", self.kind, model)
            reason = f"the {self.kind} build failed: {type(error).__name__}: {error}"
        with self._lock:
            record = self._builds[model]
            record.seconds = round(time.monotonic() - (record.started or time.monotonic()), 1)
            record.stage, record.started = None, None
            if reason is None:
                record.fraction = 1.0
                self._succeeded(record, result)
            else:
                self._failed(record, reason)
            self._running = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running build (if any); whether none runs now."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def close(self) -> None:
        """Stop a running build at its next progress report."""
        self._cancel.set()
        self.wait(CLOSE_WAIT_S)
