"""Atlas and profile builds when the service is served on Ray (``api.ray_serve``): every build runs as a Ray task,
so that it never takes a replica's CPU or GPU, and one coordinator actor per deployment holds the builds' state, so
that every replica answers ``GET /v1/atlas/{model}/build`` and ``GET /v1/models/{model}/profile`` with the same
progress and only one build of each kind runs at a time in the whole deployment.

``RayTaskRunner`` is an ``api.background_builds.Runner``: the coordinator's ``AtlasBuilds`` and ``ProfileBuilds``
call it from their build threads as they would call ``make_atlas`` or ``measure_profile`` in-process, so the states,
stages and messages are those of plain uvicorn. Progress comes back from the task through a
``ray.util.queue.Queue``; a cancelled build (the service stops) cancels the task.

The atlas folder and the models folders (where profiles are written, or ``LEWEL_PROFILE_DIR``) must be ones that
the coordinator, the build tasks and every replica see: on one machine any folder (``api.ray_serve`` makes a
temporary atlas folder when ``LEWEL_ATLAS_DIR`` and ``LEWEL_ATLAS_BUILD_DIR`` are unset), on a cluster of several
machines a shared volume (docs/ray.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayTaskError
from ray.util.queue import Queue

from .atlas_builds import AtlasBuilds, BuildRunning
from .profile_builds import ProfileBuildRunning, ProfileBuilds

POLL_S = 0.25  #: how often the runner looks for progress and for the task's end


@ray.remote(max_retries=0)
def _run_build(function: Callable[..., Any], args: tuple, kwargs: dict[str, Any], queue: Queue) -> Any:
    """``function(*args, **kwargs)`` in a Ray worker, its progress reports put on ``queue``."""
    return function(*args, progress=lambda stage, done, total: queue.put((stage, done, total)), **kwargs)


class RayTaskRunner:
    """Runs a build as a Ray task of ``num_cpus`` CPUs and ``num_gpus`` GPUs, relaying its progress to the
    caller's ``progress`` (which may raise to stop it: the task is then cancelled)."""

    def __init__(self, *, num_cpus: float = 1, num_gpus: float = 0) -> None:
        self.num_cpus, self.num_gpus = num_cpus, num_gpus

    def __call__(
        self, function: Callable[..., Any], *args: Any, progress: Callable[[str, int, int], None], **kwargs: Any
    ) -> Any:
        queue = Queue(actor_options={"num_cpus": 0})
        task = _run_build.options(num_cpus=self.num_cpus, num_gpus=self.num_gpus).remote(function, args, kwargs, queue)
        try:
            while True:
                finished, _ = ray.wait([task], timeout=POLL_S)
                waiting = queue.qsize()
                for stage, done, total in queue.get_nowait_batch(waiting) if waiting else ():
                    progress(stage, done, total)
                if finished:
                    try:
                        return ray.get(task)
                    except RayTaskError as error:  # the build's own exception, as in-process
                        raise error.cause from None
        except BaseException:
            ray.cancel(task)
            raise
        finally:
            queue.shutdown(force=True)


class BuildsCoordinator:
    """The deployment's ``AtlasBuilds`` and ``ProfileBuilds`` (a Ray actor: ``coordinator_actor``), their builds
    run by ``RayTaskRunner``; ``device`` is ``cuda`` when builds get GPUs, else ``cpu``. ``profiles`` holds the
    keywords of ``ProfileBuilds`` other than the device and the runner."""

    def __init__(
        self, atlas_dir: Path | None, build_dir: Path | None, *, max_scenes: int, expose_paths: bool,
        num_cpus: float, num_gpus: float, profiles: dict[str, Any],
    ) -> None:
        device, runner = "cuda" if num_gpus else "cpu", RayTaskRunner(num_cpus=num_cpus, num_gpus=num_gpus)
        self.builds = AtlasBuilds(
            atlas_dir, build_dir, device=device, max_scenes=max_scenes, expose_paths=expose_paths, runner=runner
        )
        self.profiles = ProfileBuilds(device=device, expose_paths=expose_paths, runner=runner, **profiles)

    def status(self, model: str) -> dict[str, Any]:
        return self.builds.status(model)

    def start(self, model: str, checkpoint: Path, scenes: int, size: int) -> tuple[str, Any]:
        """``("started", status)``, or ``("running", other model)`` when another model's build runs (returned,
        not raised, so that the replica raises ``BuildRunning`` itself rather than a Ray wrapper of it)."""
        try:
            return "started", self.builds.start(model, checkpoint, scenes=scenes, size=size)
        except BuildRunning as error:
            return "running", error.model

    def profile_status(self, model: str) -> dict[str, Any]:
        return self.profiles.status(model)

    def start_profile(
        self, model: str, checkpoint: Path, source: str, data: str, images: int, size: int
    ) -> tuple[str, dict[str, Any]]:
        """``("started", status)``, or ``("running", the running build's status)`` (returned, not raised, as
        ``start``'s)."""
        try:
            return "started", self.profiles.start(model, checkpoint, source, data=data, images=images, size=size)
        except ProfileBuildRunning as error:
            return "running", error.status

    def close(self) -> None:
        self.builds.close()
        self.profiles.close()


#: the coordinator as a Ray actor class; it waits on its builds' tasks and holds no CPU itself
coordinator_actor = ray.remote(num_cpus=0)(BuildsCoordinator)


class RemoteAtlasBuilds:
    """A replica's ``api.atlas_builds.Builds``: the coordinator actor's, over Ray; ``root`` is the configured
    atlas folder (``api.ray_serve`` always configures one)."""

    def __init__(self, coordinator: Any, root: Path) -> None:
        self.coordinator, self._root = coordinator, root

    @property
    def root(self) -> Path:
        return self._root

    def status(self, model: str) -> dict[str, Any]:
        return ray.get(self.coordinator.status.remote(model))

    def start(self, model: str, checkpoint: Path, *, scenes: int, size: int) -> dict[str, Any]:
        outcome, value = ray.get(self.coordinator.start.remote(model, checkpoint, scenes, size))
        if outcome == "running":
            raise BuildRunning(value)
        return value

    def close(self) -> None:
        """Nothing of the builds is this replica's: the deployment's owner closes the coordinator."""


class RemoteProfileBuilds:
    """A replica's ``api.profile_builds.ProfileBuildsLike``: the coordinator actor's, over Ray."""

    def __init__(self, coordinator: Any) -> None:
        self.coordinator = coordinator

    def status(self, model: str) -> dict[str, Any]:
        return ray.get(self.coordinator.profile_status.remote(model))

    def start(self, model: str, checkpoint: Path, source: str, *, data: str, images: int, size: int) -> dict[str, Any]:
        outcome, status = ray.get(self.coordinator.start_profile.remote(model, checkpoint, source, data, images, size))
        if outcome == "running":
            raise ProfileBuildRunning(status)
        return status

    def close(self) -> None:
        """Nothing of the builds is this replica's: the deployment's owner closes the coordinator."""
