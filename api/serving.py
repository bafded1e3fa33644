"""How this process serves the application: the engine (plain uvicorn, or a replica of a Ray Serve deployment,
``api.ray_serve``), the replica's id that every answer carries in ``X-Lewel-Replica`` and ``/v1/health`` reports,
and the seams an engine fills: the batcher of each loaded model, the atlas builds and the profile builds.

On plain uvicorn the replica id is ``HOST:PID`` (stable while the process runs, distinct between the workers of
one machine); on Ray it is the Serve replica's id (``LewelService#abc123``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .atlas_builds import Builds
from .profile_builds import ProfileBuildsLike
from .registry import BatcherFactory

REPLICA_HEADER = "X-Lewel-Replica"


def process_replica_id() -> str:
    """``HOST:PID``: the replica id of a service that is not one of an engine's replicas."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Serving:
    """``engine``: ``uvicorn`` or ``ray``; ``replica``: this process's id; ``batcher``: makes each loaded model's
    batcher (``None``: ``LEWEL_MICROBATCH`` decides, ``api.batching.MicroBatcher``); ``atlas_builds``: where
    atlas builds run and keep their state (``None``: ``api.atlas_builds.AtlasBuilds`` in this process);
    ``profile_builds``: the same of profile builds (``None``: ``api.profile_builds.ProfileBuilds`` in this process)."""

    engine: str = "uvicorn"
    replica: str = field(default_factory=process_replica_id)
    batcher: BatcherFactory | None = None
    atlas_builds: Builds | None = None
    profile_builds: ProfileBuildsLike | None = None


class ReplicaHeaderMiddleware:
    """Adds ``X-Lewel-Replica: <replica>`` to every HTTP answer, errors and refusals by other middleware
    included (a pure ASGI middleware, so that it sees the answers of the whole stack)."""

    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app, self.replica = app, replica

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_replica(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REPLICA_HEADER] = self.replica
            await send(message)

        await self.app(scope, receive, send_with_replica)
