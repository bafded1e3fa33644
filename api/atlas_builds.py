"""On-demand atlases: one background build at a time (``lewel.drawing.atlas_folder.make_atlas`` over generated scenes) and
its progress, for ``POST`` / ``GET /v1/atlas/{model}/build``.

Atlases are built into ``LEWEL_ATLAS_DIR/<model>``, else ``LEWEL_ATLAS_BUILD_DIR/<model>``, else a temporary
folder of this process (removed when the service stops); the same folder is what ``/v1/atlas/…`` serves.
A build runs in a daemon thread; it reports ``running`` with the stage and counts, then ``done`` or
``error`` with the reason. Whatever fails in it is its status's message: the service keeps serving.
The thread calls the build through a ``Runner``: in this process by default, as a Ray task when the service is
served on Ray (``api.ray_builds``); another kind of build (profiles) would go through the same seam.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from lewel.drawing.atlas_folder import MAKE_STAGES, StaleFolder, make_atlas, remove_stale_builds
from lewel.maps.atlas import ATLAS_NAME

log = logging.getLogger("api.atlas")

#: share of the progress bar each stage of ``make_atlas`` fills (the model's maps are most of the work)
STAGE_WEIGHTS = {"maps": 0.7, "atlas": 0.1, "thumbnails": 0.2}
STAGE_WORDS = {
    "maps": "computing the maps of {total} scenes",
    "atlas": "ranking the maps",
    "thumbnails": "drawing the thumbnails",
}
CLOSE_WAIT_S = 10.0  #: how long ``close`` waits for a cancelled build to stop
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


class _Cancelled(Exception):
    """Raised inside a build's progress callback when the service stops."""


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


class AtlasBuilds:
    """The atlas folder the service serves and builds into, and the builds it ran (at most one at a time)."""

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
        self.configured = atlas_dir if atlas_dir is not None else build_dir
        self.device, self.max_scenes, self.expose_paths = device, max_scenes, expose_paths
        self.runner = runner
        self._temporary: Path | None = None
        self._lock = threading.Lock()
        self._builds: dict[str, BuildStatus] = {}
        self._thread: threading.Thread | None = None
        self._running: str | None = None
        self._cancel = threading.Event()
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
        if self._temporary is None:
            self._temporary = Path(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}{os.getpid()}-"))
        return self._temporary

    def status(self, model: str) -> dict[str, Any]:
        """The last build of ``model`` in this process (``idle`` when none), with ``atlas``: whether an atlas
        of it is served now, ``max_scenes`` and ``folder`` (its path, only with ``expose_paths``)."""
        with self._lock:
            current = self._builds.get(model)
            body = asdict(current) if current is not None else asdict(BuildStatus(model))
        if body["status"] == "running" and body["started"] is not None:
            body["seconds"] = round(time.monotonic() - body["started"], 1)
        body.pop("started")
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
            if self._running is not None:
                if self._running != model:
                    raise BuildRunning(self._running)
                running = True
            else:
                running = False
                dest = self._build_root() / model
                self._builds[model] = BuildStatus(
                    model, "running", "maps", 0, scenes, 0.0, f"starting: {scenes} scenes at {size} px",
                    scenes, size, started=time.monotonic(),
                )
                self._running = model
                self._cancel.clear()
                self._thread = threading.Thread(
                    target=self._run, args=(model, checkpoint, dest, scenes, size), name=f"atlas-{model}", daemon=True
                )
        if not running:
            self._thread.start()
        return self.status(model)

    def _progress(self, model: str, stage: str, done: int, total: int) -> None:
        if self._cancel.is_set():
            raise _Cancelled
        before = sum(STAGE_WEIGHTS[s] for s in MAKE_STAGES[: MAKE_STAGES.index(stage)])
        share = STAGE_WEIGHTS[stage] * (done / total if total else 1.0)
        with self._lock:
            build = self._builds[model]
            words = STAGE_WORDS[stage].format(total=total)
            build.stage, build.done, build.total = stage, done, total
            build.fraction = round(min(before + share, 1.0), 4)
            build.message = f"{words[0].upper()}{words[1:]}: {done} / {total}"

    def _run(self, model: str, checkpoint: Path, dest: Path, scenes: int, size: int) -> None:
        try:
            atlas = self.runner(
                make_atlas, checkpoint, f"scenes:{scenes}", dest, size=size, device=self.device,
                progress=lambda stage, done, total: self._progress(model, stage, done, total),
            )
            outcome = ("done", f"atlas of {atlas['images']} scenes at {size} px, {len(atlas['maps'])} maps")
        except _Cancelled:
            outcome = ("error", "the service stopped before the build was done")
        except Exception as error:  # noqa: BLE001 - any failure is the build's status, never the service's
            log.exception("the atlas build of %r failed", model)
            outcome = ("error", f"the atlas build failed: {type(error).__name__}: {error}")
        with self._lock:
            build = self._builds[model]
            build.status, build.message = outcome
            build.stage = None
            build.seconds = round(time.monotonic() - (build.started or time.monotonic()), 1)
            build.started = None
            if outcome[0] == "done":
                build.fraction = 1.0
            self._running = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running build (if any); whether none runs now."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def close(self) -> None:
        """Stop a running build (at its next progress report) and remove the temporary folder."""
        self._cancel.set()
        self.wait(CLOSE_WAIT_S)
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
