"""On-demand atlases: one background build at a time (``lewel.drawing.atlas_folder.make_atlas`` over generated scenes) and
its progress, for ``POST`` / ``GET /v1/atlas/{model}/build``.

Atlases are built into ``LEWEL_ATLAS_DIR/<model>``, else ``LEWEL_ATLAS_BUILD_DIR/<model>``, else a temporary
folder of this process (removed when the service stops); the same folder is what ``/v1/atlas/…`` serves.
A build runs in a daemon thread; it reports ``running`` with the stage and counts, then ``done`` or
``error`` with the reason. Whatever fails in it is its status's message: the service keeps serving.
The thread, its state and the ``Runner`` it calls the build through (in this process by default, as a Ray task when
the service is served on Ray, ``api.ray_builds``) are ``api.background_builds``', shared with the profile builds.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lewel.drawing.atlas_folder import MAKE_STAGES, StaleFolder, make_atlas, remove_stale_builds
from lewel.maps.atlas import ATLAS_NAME

from .background_builds import BackgroundBuilds, Runner, run_here

log = logging.getLogger("api.atlas")

#: share of the progress bar each stage of ``make_atlas`` fills (the model's maps are most of the work)
STAGE_WEIGHTS = {"maps": 0.7, "atlas": 0.1, "thumbnails": 0.2}
STAGE_WORDS = {
    "maps": "computing the maps of {total} scenes",
    "atlas": "ranking the maps",
    "thumbnails": "drawing the thumbnails",
}
TEMPORARY_PREFIX = "lewel-atlases-"  #: ``lewel-atlases-PID-*``: the temporary atlas root of service process PID


def describe_stale(stale: StaleFolder) -> str:
    """What a removed leftover was, for the log: ``the half-built atlas of 'tiny' of process 123, which is gone
    (3 files, 12.0 KiB)``."""
    held = f"{stale.files} file{'s' * (stale.files != 1)}, {stale.bytes / 1024:,.1f} KiB"
    owner = f"process {stale.pid}, which is gone" if stale.pid is not None else "a process that is gone"
    if stale.kind == "building":
        return f"the half-built atlas of {stale.name!r} of {owner} (a build killed before it finished; {held})"
    if stale.kind == "replaced":
        return f"the previous atlas of {stale.name!r}, replaced by a build that was cut off before removing it ({held})"
    return f"the temporary atlas folder of service {owner} ({held})"


class Builds(Protocol):
    """What the atlas routes use of ``AtlasBuilds`` (or of a stand-in that reaches one elsewhere:
    ``api.ray_builds.RemoteAtlasBuilds``)."""

    @property
    def root(self) -> Path | None: ...

    def status(self, model: str) -> dict[str, Any]: ...

    def start(self, model: str, checkpoint: Path, *, scenes: int, size: int) -> dict[str, Any]: ...

    def close(self) -> None: ...


class BuildRunning(RuntimeError):
    """Another model's atlas is being built (one build at a time)."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"the service is building the atlas of {model!r}; one build runs at a time, try again when it is done"
        )
        self.model = model


@dataclass
class BuildStatus:
    """What ``GET /v1/atlas/{model}/build`` answers (``asdict``); ``done``/``total`` count the current stage."""

    model: str
    status: str = "idle"  #: idle | running | done | error
    stage: str | None = None  #: maps | atlas | thumbnails while running
    done: int = 0
    total: int = 0
    fraction: float = 0.0  #: of the whole build, 0 … 1
    message: str = ""
    scenes: int | None = None
    size: int | None = None
    seconds: float | None = None  #: since the build started (its duration once over)
    started: float | None = field(default=None, repr=False)


class AtlasBuilds(BackgroundBuilds[BuildStatus]):
    """The atlas folder the service serves and builds into, and the builds it ran (at most one at a time)."""

    kind, stages, stage_weights = "atlas", MAKE_STAGES, STAGE_WEIGHTS
    log = log
    cancelled_message = "the service stopped before the build was done"

    def __init__(
        self,
        atlas_dir: Path | None,
        build_dir: Path | None,
        *,
        device: str,
        max_scenes: int,
        expose_paths: bool = False,
        runner: Runner = run_here,
    ) -> None:
        super().__init__(runner)
        self.configured = atlas_dir if atlas_dir is not None else build_dir
        self.device, self.max_scenes, self.expose_paths = device, max_scenes, expose_paths
        self._temporary: Path | None = None
        self._root_lock = threading.Lock()
        self.clean_stale()

    def clean_stale(self) -> list[StaleFolder]:
        """Remove what killed builds left: half-built ``.MODEL.building-PID-*`` folders in the atlas folder and
        temporary atlas roots of service processes that are gone (``lewel.drawing.atlas_folder.remove_stale_builds``),
        each logged as a warning naming the folder, its model, the process that left it and what it held: data
        removed at start-up is said, where an info line would be silent under uvicorn's default logging."""
        removed = remove_stale_builds(tempfile.gettempdir(), TEMPORARY_PREFIX)
        if self.configured is not None:
            removed += remove_stale_builds(self.configured)
        for stale in removed:
            log.warning("removed %s at start-up: %s", stale.path, describe_stale(stale))
        return removed

    @property
    def root(self) -> Path | None:
        """The folder atlases are served from: the configured one, the temporary one once a build made it, or
        ``None`` (no atlas yet)."""
        return self.configured if self.configured is not None else self._temporary

    def _build_root(self) -> Path:
        if self.configured is not None:
            return self.configured
        with self._root_lock:
            if self._temporary is None:
                self._temporary = Path(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}{os.getpid()}-"))
            return self._temporary

    def status(self, model: str) -> dict[str, Any]:
        """The last build of ``model`` in this process (``idle`` when none), with ``atlas``: whether an atlas
        of it is served now, ``max_scenes`` and ``folder`` (its path, only with ``expose_paths``)."""
        body = self._record(model, BuildStatus)
        root = self.root
        body["atlas"] = root is not None and (root / model / ATLAS_NAME).is_file()
        body["folder"] = str(root / model) if root is not None and self.expose_paths else None
        body["max_scenes"] = self.max_scenes
        if body["status"] == "idle":
            body["message"] = "an atlas is served" if body["atlas"] else "no atlas yet: POST to this URL to build one"
        return body

    def start(self, model: str, checkpoint: Path, *, scenes: int, size: int) -> dict[str, Any]:
        """Start building ``model``'s atlas from ``checkpoint`` over ``scenes`` generated scenes at ``size`` px;
        the status. A build of ``model`` already running is left alone; one of another model raises
        ``BuildRunning``."""
        with self._lock:
            running = self._running
        if running is None:
            record = BuildStatus(
                model, "running", "maps", 0, scenes, 0.0, f"starting: {scenes} scenes at {size} px", scenes, size
            )
            dest = self._build_root() / model
            running = self._launch(record, make_atlas, checkpoint, f"scenes:{scenes}", dest, size=size, device=self.device)
        if running is not None and running != model:
            raise BuildRunning(running)
        return self.status(model)

    def _progress_message(self, stage: str, done: int, total: int) -> str:
        words = STAGE_WORDS[stage].format(total=total)
        return f"{words[0].upper()}{words[1:]}: {done} / {total}"

    def _succeeded(self, record: BuildStatus, result: Any) -> None:
        record.status = "done"
        record.message = f"atlas of {result['images']} scenes at {record.size} px, {len(result['maps'])} maps"

    def _failed(self, record: BuildStatus, reason: str) -> None:
        record.status, record.message = "error", reason

    def close(self) -> None:
        """Stop a running build (at its next progress report) and remove the temporary folder."""
        super().close()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
