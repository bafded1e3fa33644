"""The FastAPI application: ``uvicorn api.main:app`` (settings from ``LEWEL_*`` environment variables).

``create_app(settings)`` builds an application around its own registry and metrics, which is what the
tests do with settings pointing at temporary model folders.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import torch
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline

from lewel import __version__

from . import decode_warnings
from .errors import install_error_handlers
from .memory_trim import MemoryTrimMiddleware, limit_arenas
from .metrics import MetricsMiddleware
from .middleware import BodySizeLimitMiddleware, TokenMiddleware
from .openapi import install_openapi
from .routes import atlas, embeddings, gallery, health, maps, metrics, models, point, profiles
from .service import Service
from .serving import ReplicaHeaderMiddleware, Serving
from .settings import Settings

DESCRIPTION = """\
Alignment maps, their statistics and cross-view agreement, and embeddings of LEWEL models
("Learning Where to Learn in Cross-View Self-Supervised Learning", CVPR 2022), computed by the `lewel`
library on the GPU when there is one, else the CPU. Errors are JSON `{"error": code, "message": text}`.
"""


def create_app(settings: Settings | None = None, serving: Serving | None = None) -> FastAPI:
    """The service for ``settings`` (default: read from the environment), served by ``serving``'s engine
    (default: plain uvicorn; ``api.ray_serve`` passes a Ray replica's)."""
    settings = settings if settings is not None else Settings()
    limit_arenas(settings.malloc_arena_max)  # before the worker threads open arenas of their own
    if settings.torch_threads is not None:
        torch.set_num_threads(settings.torch_threads)
    service = Service.from_settings(settings, serving)
    decode_warnings.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.readiness.start()
        # the gallery's first listing takes seconds: done beside the model's warm-up, not on a page's first request
        threading.Thread(target=gallery.warm_up, name="lewel-gallery", daemon=True).start()
        yield
        service.readiness.wait(60)  # a warm-up still running would be cut off inside torch at exit
        service.atlas_builds.close()
        service.profile_builds.close()
        service.drawing.close()
        service.registry.close()

    # /docs and /redoc from Swagger UI and ReDoc files shipped in the fastapi-offline package: no CDN needed
    app = FastAPIOffline(
        title="LEWEL inference service", version=__version__, description=DESCRIPTION, lifespan=lifespan
    )
    app.state.service = service
    install_error_handlers(app)
    for router in (health.router, models.router, maps.router, embeddings.router, metrics.router):
        app.include_router(router)
    app.include_router(atlas.router)
    app.include_router(profiles.router)
    app.include_router(point.router)
    app.include_router(gallery.router)
    install_openapi(app, settings)
    # the last added runs first: memory trim, the replica header, metrics, CORS (so that refusals carry its headers),
    # token, body cap
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.api_token is not None:
        app.add_middleware(TokenMiddleware, token=settings.api_token.get_secret_value())
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    app.add_middleware(ReplicaHeaderMiddleware, replica=service.serving.replica)
    app.add_middleware(MemoryTrimMiddleware, trimmer=service.trimmer)  # outermost: after the answer has gone
    return app


def __getattr__(name: str) -> FastAPI:
    """``api.main.app``, what ``uvicorn api.main:app`` serves: built from the environment on first use, so that
    importing ``create_app`` (as ``api.ray_deployment`` does in every replica) builds no second service."""
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
