"""The service object every route reaches through ``request.app.state.service``."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .atlas_builds import AtlasBuilds, Builds
from .drawing_pool import DrawingPool
from .limits import MemoryBudget
from .memory_trim import MemoryTrimmer
from .metrics import Metrics
from .profile_builds import ProfileBuilds, ProfileBuildsLike
from .readiness import Readiness
from .redaction import PathRedactor
from .registry import ModelRegistry
from .serving import Serving
from .settings import Settings


@dataclass
class Service:
    settings: Settings
    registry: ModelRegistry
    readiness: Readiness
    metrics: Metrics
    budget: MemoryBudget
    atlas_builds: Builds
    profile_builds: ProfileBuildsLike
    redactor: PathRedactor
    drawing: DrawingPool
    trimmer: MemoryTrimmer
    serving: Serving = field(default_factory=Serving)

    @classmethod
    def from_settings(cls, settings: Settings, serving: Serving | None = None) -> Service:
        """Registry over the bundled folder and ``LEWEL_MODELS_DIR`` on the GPU if present, else the CPU;
        ``serving``: the engine's seams (default: plain uvicorn, ``api.serving.Serving``)."""
        serving = serving if serving is not None else Serving()
        device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        metrics = Metrics()
        folders = [("bundled", settings.bundled_models_dir), ("models_dir", settings.models_dir)]
        registry = ModelRegistry(
            folders,
            device=device,
            cache_size=settings.cache_size,
            default_model=settings.default_model,
            microbatch=settings.microbatch,
            microbatch_max_size=settings.microbatch_max_size,
            microbatch_wait_s=settings.microbatch_wait_ms / 1000,
            metrics=metrics,
            expose_paths=settings.expose_paths,
            batcher_factory=serving.batcher,
            profile_dir=settings.profile_dir,
        )
        budget = MemoryBudget(
            settings.memory_budget_bytes, max_queued=settings.max_queued, retry_after_s=settings.retry_after_s
        )
        builds = serving.atlas_builds or AtlasBuilds(
            settings.atlas_dir, settings.atlas_build_dir, device=str(device), max_scenes=settings.atlas_max_scenes,
            expose_paths=settings.expose_paths,
        )
        profiles = serving.profile_builds or ProfileBuilds(
            device=str(device), max_images=settings.profile_max_images,
            control_schemes=settings.profile_control_schemes, control_seeds=settings.profile_control_seeds,
            profile_dir=settings.profile_dir, expose_paths=settings.expose_paths,
        )
        redactor = PathRedactor.for_service(
            [*folders, ("atlas_dir", settings.atlas_dir), ("atlas_build_dir", settings.atlas_build_dir),
             ("profile_dir", settings.profile_dir)],
            expose=settings.expose_paths,
        )
        drawing = DrawingPool(
            budget, workers=settings.drawing_workers, max_queued=settings.drawing_max_queued,
            queue_s=settings.drawing_queue_s, retry_after_s=settings.retry_after_s, nice=settings.drawing_nice,
        )
        readiness = Readiness(registry, settings.warmup_size)
        trimmer = MemoryTrimmer(settings.malloc_trim_bytes)
        return cls(settings, registry, readiness, metrics, budget, builds, profiles, redactor, drawing, trimmer, serving)
