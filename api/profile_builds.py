"""Profile builds on demand: ``lewel.maps.profiles.build_profile`` of a served checkpoint in the background, its
progress, and the profile written where the registry reads it (``api.profile_files``), for ``POST`` / ``GET
/v1/models/{model}/profile``.

Like the atlas builds (``api.atlas_builds``), one build runs at a time, in a daemon thread, through a ``Runner``
(in this process by default; a Ray task where the service is served on Ray): ``api.background_builds``. Its status is ``running`` with the
stage (``loading``: the model and the images, ``scoring``: the model and every random control over both splits,
``writing``) and the share done, then ``done`` or ``failed`` with the reason. Whatever fails in a build is its
status's error: the service keeps serving. The profile is written once whole, atomically, after the last pass:
a build that fails, is cancelled or whose process is killed leaves the previous profile file as it was and no
partial file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lewel.maps.controls import control_family
from lewel.maps.profiles import build_profile

from .background_builds import BackgroundBuilds, Runner, run_here
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


class ProfileBuildsLike(Protocol):
    """What the profile routes use of ``ProfileBuilds`` (or of a stand-in that reaches one elsewhere:
    ``api.ray_builds.RemoteProfileBuilds``)."""

    def status(self, model: str) -> dict[str, Any]: ...

    def start(self, model: str, checkpoint: Path, source: str, *, data: str, images: int, size: int) -> dict[str, Any]: ...

    def close(self) -> None: ...


class ProfileBuildRunning(RuntimeError):
    """A profile build runs (one at a time); ``status`` is its status."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(
            f"the service is measuring the profile of {status['model']!r}; one profile build runs at a time, try "
            "again when it is done"
        )
        self.status = status


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


class ProfileBuilds(BackgroundBuilds[ProfileBuildStatus]):
    """The profile builds the service ran (at most one at a time), measured on ``device`` against
    ``control_seeds`` controls of each of ``control_schemes``; profiles go beside the checkpoint, or under
    ``profile_dir`` where that folder is not writable."""

    kind, stages, stage_weights = "profile", STAGES, STAGE_WEIGHTS
    log = log
    cancelled_message = "the service stopped before the build was done; the previous profile (if any) is unchanged"

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
        super().__init__(runner)
        self.device, self.max_images, self.profile_dir = device, max_images, profile_dir
        self.control_schemes, self.control_seeds = list(control_schemes), control_seeds
        self.controls = len(control_family(self.control_schemes, control_seeds))
        self.expose_paths = expose_paths

    def status(self, model: str) -> dict[str, Any]:
        """The last build of ``model`` in this process (``idle`` when none), with ``max_images``."""
        body = self._record(model, ProfileBuildStatus)
        body["max_images"] = self.max_images
        return body

    def start(self, model: str, checkpoint: Path, source: str, *, data: str, images: int, size: int) -> dict[str, Any]:
        """Start measuring the profile of ``model`` (the file ``checkpoint`` of the models folder ``source``) on
        ``images`` per split of ``data`` at ``size`` px; its status. While a build runs, ``ProfileBuildRunning``
        with that build's status."""
        record = ProfileBuildStatus(
            model, "running", "loading", 0, 1, 0.0, f"starting: {images} images per split of {data} at {size} px",
            None, data, images, size, self.controls,
        )
        running = self._launch(
            record, measure_profile, checkpoint, source, self.profile_dir, data=data, images=images, size=size,
            device=self.device, control_schemes=self.control_schemes, control_seeds=self.control_seeds,
        )
        if running is not None:
            raise ProfileBuildRunning(self.status(running))
        return self.status(model)

    def _progress_message(self, stage: str, done: int, total: int) -> str:
        words = STAGE_WORDS[stage].format(controls=networks(self.controls))
        counted = f": {done:,} / {total:,} images" if stage == "scoring" else ""
        return f"{words[0].upper()}{words[1:]}{counted}"

    def _succeeded(self, record: ProfileBuildStatus, result: Any) -> None:
        record.status, record.done = "done", record.total
        record.written = "checkpoint_folder" if result["beside_checkpoint"] else "profile_dir"
        record.file = result["path"] if self.expose_paths else None
        record.message = (
            f"measured on {record.images} images per split at {record.size} px against {networks(self.controls)}: "
            f"{result['verdict']}"
        )

    def _failed(self, record: ProfileBuildStatus, reason: str) -> None:
        record.status, record.error, record.message = "failed", reason, reason
