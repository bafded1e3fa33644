"""The inference service as a Ray Serve deployment (``api.ray_serve`` deploys it): each replica serves the FastAPI
application of ``api.main.create_app`` as it is (``serve.ingress``: the same routes, limits, token and metrics),
with three seams filled (``api.serving.Serving``):

- its id, the Serve replica's (``LewelService#abc123``), in ``X-Lewel-Replica`` and ``/v1/health``;
- map extraction through the replica's ``@serve.batch`` method ``extract_batch``, so that concurrent requests of
  one model share forward passes (``api.ray_batching``); with ``batching`` off, one request at a time per model;
- atlas and profile builds through the deployment's coordinator actor, as Ray tasks (``api.ray_builds``).

Settings come from the ``LEWEL_*`` variables the deployment's runtime environment carries. ``build_app`` is the
application for Serve config files (``serve run``, KubeRay's RayService: ``import_path:
api.ray_deployment:build_app``, docs/ray.md); ``python -m api.ray_serve`` deploys the same through ``application``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ray
from fastapi import FastAPI
from pydantic import BaseModel, Field
from ray import serve
from ray.serve import Application

from lewel.inference import Extraction

from .batching import Job, images_in, run_groups
from .main import create_app
from .ray_batching import ServeBatcher
from .ray_builds import RemoteAtlasBuilds, RemoteProfileBuilds, coordinator_actor
from .serving import Serving
from .settings import Settings

DEPLOYMENT_NAME = "LewelService"
COORDINATOR_NAME, COORDINATOR_NAMESPACE = "lewel-builds", "lewel"  #: the coordinator actor, found by name


@serve.deployment(name=DEPLOYMENT_NAME)
@serve.ingress()
class LewelService:
    """One replica. ``batching``: extraction through ``extract_batch`` (sized by ``LEWEL_MICROBATCH_MAX_SIZE``
    and ``LEWEL_MICROBATCH_WAIT_MS``); ``coordinator``: the handle of the deployment's
    ``api.ray_builds.coordinator_actor``."""

    async def __init__(self, *, batching: bool, coordinator: Any) -> None:
        self.batching, self.coordinator = batching, coordinator
        self.loop = asyncio.get_running_loop()  # the replica's event loop, where extract_batch gathers requests
        context = serve.get_replica_context()
        self.replica = f"{context.deployment}#{context.replica_tag}"

    def __serve_build_asgi_app__(self) -> FastAPI:
        """The application of this replica (Ray Serve calls it once the constructor is done)."""
        settings = Settings()
        if self.batching:
            # a single request's views (at most LEWEL_MAX_VIEWS + 1 images) always fit in one batch
            self.extract_batch.set_max_batch_size(max(settings.microbatch_max_size, settings.max_views + 1))
            self.extract_batch.set_batch_wait_timeout_s(settings.microbatch_wait_ms / 1000)
        root = settings.atlas_dir if settings.atlas_dir is not None else settings.atlas_build_dir
        if root is None:
            raise ValueError(
                "on Ray, set LEWEL_ATLAS_DIR or LEWEL_ATLAS_BUILD_DIR to a folder every replica sees (api.ray_serve "
                "makes a temporary one on a local instance)"
            )
        serving = Serving(
            engine="ray",
            replica=self.replica,
            batcher=self._batcher if self.batching else None,
            atlas_builds=RemoteAtlasBuilds(self.coordinator, root),
            profile_builds=RemoteProfileBuilds(self.coordinator),
        )
        return create_app(settings, serving)

    def _batcher(self, model_id: str, run: Any, on_batch: Any) -> ServeBatcher:
        """The batcher of a model this replica loaded (``api.registry.BatcherFactory``)."""
        return ServeBatcher(self.extract_batch, self.loop, run, on_batch)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005, batch_size_fn=images_in)
    async def extract_batch(self, jobs: list[Job]) -> list[Extraction | Exception]:
        """The extractions of the requests gathered (each job is one request's views of one model), one forward
        pass per model, image shape and options; run in a worker thread, so that the replica keeps answering."""
        return await asyncio.to_thread(run_groups, jobs)


class AppArgs(BaseModel):
    """The arguments of ``build_app`` (a Serve config's ``args``)."""

    model_config = {"extra": "forbid"}

    batching: bool = Field(True, description="extraction through @serve.batch; false: one request at a time per model")
    build_cpus: float = Field(1.0, gt=0, description="CPUs of a build task (an atlas or a profile)")
    build_gpus: float = Field(0.0, ge=0, description="GPUs of a build task (an atlas or a profile; 0: built on the CPU)")


def coordinator(args: AppArgs) -> Any:
    """The builds' coordinator of this cluster (``api.ray_builds``): the running one, else a new detached
    actor named ``COORDINATOR_NAME`` (so that every deployment of the application shares one), started."""
    settings = Settings()
    actor = coordinator_actor.options(
        name=COORDINATOR_NAME, namespace=COORDINATOR_NAMESPACE, lifetime="detached", get_if_exists=True
    ).remote(
        settings.atlas_dir, settings.atlas_build_dir, max_scenes=settings.atlas_max_scenes,
        expose_paths=settings.expose_paths, num_cpus=args.build_cpus, num_gpus=args.build_gpus,
        profiles={
            "max_images": settings.profile_max_images, "control_schemes": settings.profile_control_schemes,
            "control_seeds": settings.profile_control_seeds, "profile_dir": settings.profile_dir,
        },
    )
    ray.get(actor.__ray_ready__.remote())  # a coordinator that cannot start fails the deployment now
    return actor


def application(args: AppArgs, options: dict[str, Any] | None = None) -> Application:
    """The application: ``LewelService`` with ``options`` (``num_replicas``, ``ray_actor_options`` ...) bound to
    the cluster's coordinator."""
    deployment = LewelService.options(**options) if options else LewelService
    return deployment.bind(batching=args.batching, coordinator=coordinator(args))


def build_app(args: dict[str, Any]) -> Application:
    """For Serve config files: ``import_path: api.ray_deployment:build_app``, ``args`` checked as ``AppArgs`` (an
    unknown or bad one fails the deployment, naming it); replicas and their resources come from the config's
    ``deployments`` section."""
    return application(AppArgs.model_validate(args))
