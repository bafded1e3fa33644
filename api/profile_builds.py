"""Profile builds on demand: ``lewel.maps.profiles.build_profile`` of a served checkpoint in the background, its
progress, and the profile written where the registry reads it (``api.profile_files``), for ``POST`` / ``GET
/v1/models/{model}/profile``.

Like the atlas builds (``api.atlas_builds``), one build runs at a time, in a daemon thread, through a ``Runner``
(in this process by default; a Ray task where the service is served on Ray); its status is ``running`` with the
stage (``loading``: the model and the images, ``scoring``: the model and every random control over both splits,
``writing``) and the share done, then ``done`` or ``failed`` with the reason. Whatever fails in a build is its
status's error: the service keeps serving. The profile is written once whole, atomically, after the last pass:
a build that fails, is cancelled or whose process is killed leaves the previous profile file as it was and no
partial file.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lewel.maps.controls import control_family
from lewel.maps.profiles import build_profile

from .atlas_builds import CLOSE_WAIT_S, Runner, run_here
from .profile_files import write_for

log = logging.getLogger("api.profiles")

STAGES = ("loading", "scoring", "writing")
#: share of the progress bar each stage fills (the passes of the model and its controls are nearly all the work)
STAGE_WEIGHTS = {"loading": 0.05, "scoring": 0.93, "writing": 0.02}
STAGE_WORDS = {
    "loading": "loading the model and preparing the images",
    "scoring": "scoring the images with the model and {controls}",
    "writing": "writing the profile",
}


def measure_profile(
    checkpoint: Path, source: str, profile_dir: Path | None, *, progress: Callable[[str, int, int], None],
    **options: Any,
) -> dict[str, Any]:
    """``build_profile(checkpoint, **options)``, written by ``api.profile_files.write_for``; what a status
    says of it: the verdict, the file's name and whether it went beside the checkpoint. ``progress(stage, done,
    total)`` (``STAGES``) may raise to stop the build before anything is written. A function of the module, so
    that a Ray task can run it."""
    progress("loading", 0, 1)
    profile = build_profile(checkpoint, progress=lambda done, total: progress("scoring", done, total), **options)
    progress("writing", 0, 1)
    written = write_for(profile, checkpoint, source, profile_dir)
    return {
        "verdict": profile["summary"].get("verdict"),
        "file": written.name,
        "path": str(written),
        "beside_checkpoint": written.parent == checkpoint.parent,
    }


def networks(count: int) -> str:
    """``1 random network``, ``15 random networks``."""
    return f"{count} random network{'s' * (count != 1)}"


class ProfileBuildRunning(RuntimeError):
    """A profile build runs (one at a time); ``status`` is its status."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(
            f"the service is measuring the profile of {status['model']!r}; one profile build runs at a time, try "
            "again when it is done"
        )
        self.status = status


class _Cancelled(Exception):
    """Raised inside a build's progress callback when the service stops."""


@dataclass
class ProfileBuildStatus:
    """What ``GET /v1/models/{model}/profile`` answers of the build (``asdict``); ``done``/``total`` count the
    current stage (images over every pass while ``scoring``)."""

    model: str
    status: str = "idle"  #: idle | running | done | failed
    stage: str | None = None  #: loading | scoring | writing while running
    done: int = 0
    total: int = 0
    fraction: float = 0.0  #: of the whole build, 0 … 1
    message: str = ""
    error: str | None = None  #: why the build failed
    data: str | None = None
    images: int | None = None
    size: int | None = None
    controls: int | None = None  #: random networks measured with the model
    seconds: float | None = None  #: since the build started (its duration once over)
    written: str | None = None  #: checkpoint_folder | profile_dir once done
    file: str | None = None  #: the path written, with expose_paths only
    started: float | None = field(default=None, repr=False)


class ProfileBuilds:
    """The profile builds the service ran (at most one at a time), measured on ``device`` against
    ``control_seeds`` controls of each of ``control_schemes``; profiles go beside the checkpoint, or under
    ``profile_dir`` where that folder is not writable."""

    def __init__(
        self,
        *,
        device: str,
        max_images: int,
        control_schemes: list[str],
        control_seeds: int,
        profile_dir: Path | None = None,
        expose_paths: bool = False,
        runner: Runner = run_here,
    ) -> None:
        self.device, self.max_images, self.profile_dir = device, max_images, profile_dir
        self.control_schemes, self.control_seeds = list(control_schemes), control_seeds
        self.controls = len(control_family(self.control_schemes, control_seeds))
        self.expose_paths, self.runner = expose_paths, runner
        self._lock = threading.Lock()
        self._builds: dict[str, ProfileBuildStatus] = {}
        self._thread: threading.Thread | None = None
        self._running: str | None = None
        self._cancel = threading.Event()

    def status(self, model: str) -> dict[str, Any]:
        """The last build of ``model`` in this process (``idle`` when none), with ``max_images``."""
        with self._lock:
            current = self._builds.get(model)
            body = asdict(current) if current is not None else asdict(ProfileBuildStatus(model))
        if body["status"] == "running" and body["started"] is not None:
            body["seconds"] = round(time.monotonic() - body["started"], 1)
        body.pop("started")
        body["max_images"] = self.max_images
        return body

    def start(self, model: str, checkpoint: Path, source: str, *, data: str, images: int, size: int) -> dict[str, Any]:
        """Start measuring the profile of ``model`` (the file ``checkpoint`` of the models folder ``source``) on
        ``images`` per split of ``data`` at ``size`` px; its status. While a build runs, ``ProfileBuildRunning``
        with that build's status."""
        with self._lock:
            running = self._running
        if running is not None:
            raise ProfileBuildRunning(self.status(running))
        with self._lock:
            if self._running is not None:  # started by another request in between
                running = self._running
            else:
                self._builds[model] = ProfileBuildStatus(
                    model, "running", "loading", 0, 1, 0.0, f"starting: {images} images per split of {data} at {size} px",
                    None, data, images, size, self.controls, started=time.monotonic(),
                )
                self._running = model
                self._cancel.clear()
                self._thread = threading.Thread(
                    target=self._run, args=(model, checkpoint, source, data, images, size),
                    name=f"profile-{model}", daemon=True,
                )
                self._thread.start()
        if running is not None:
            raise ProfileBuildRunning(self.status(running))
        return self.status(model)

    def _progress(self, model: str, stage: str, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise _Cancelled
        before = sum(STAGE_WEIGHTS[s] for s in STAGES[: STAGES.index(stage)])
        share = STAGE_WEIGHTS[stage] * (done / total if total else 1.0)
        words = STAGE_WORDS[stage].format(controls=networks(self.controls))
        with self._lock:
            build = self._builds[model]
            build.stage, build.done, build.total = stage, done, total
            build.fraction = round(min(before + share, 1.0), 4)
            counted = f": {done:,} / {total:,} images" if stage == "scoring" else ""
            build.message = f"{words[0].upper()}{words[1:]}{counted}"

    def _run(self, model: str, checkpoint: Path, source: str, data: str, images: int, size: int) -> None:
        error, written = None, None
        try:
            written = self.runner(
                measure_profile, checkpoint, source, self.profile_dir,
                data=data, images=images, size=size, device=self.device,
                control_schemes=self.control_schemes, control_seeds=self.control_seeds,
                progress=lambda stage, done, total: self._progress(model, stage, done, total),
            )
        except _Cancelled:
            error = "the service stopped before the build was done; the previous profile (if any) is unchanged"
        except Exception as failure:  # noqa: BLE001 - any failure is the build's status, never the service's
            log.exception("the profile build of %r failed", model)
            error = f"the profile build failed: {type(failure).__name__}: {failure}"
        with self._lock:
            build = self._builds[model]
            build.seconds = round(time.monotonic() - (build.started or time.monotonic()), 1)
            build.stage, build.started = None, None
            if written is not None:
                build.status, build.fraction, build.done = "done", 1.0, build.total
                build.written = "checkpoint_folder" if written["beside_checkpoint"] else "profile_dir"
                build.file = written["path"] if self.expose_paths else None
                build.message = (
                    f"measured on {images} images per split at {size} px against {networks(self.controls)}: "
                    f"{written['verdict']}"
                )
            else:
                build.status, build.error, build.message = "failed", error, error
            self._running = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running build (if any); whether none runs now."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def close(self) -> None:
        """Stop a running build at its next progress report (nothing is written)."""
        self._cancel.set()
        self.wait(CLOSE_WAIT_S)
