"""What the status bodies of the service's background builds share (``api.background_builds``): the atlas builds'
(``api.schemas.AtlasBuildStatus``) and the profile builds' (``api.schemas_profile.ProfileBuildStatus``). Each
narrows ``status``, ``stage`` and ``done`` to its own values and adds its own fields."""

from __future__ import annotations

from pydantic import BaseModel, Field


class BuildStatusBody(BaseModel):
    """The last build of a model in this process: its state, the current stage's counts and the share done."""

    model: str
    status: str
    stage: str | None
    done: int
    total: int = Field(description="what the current stage has to do")
    fraction: float = Field(description="of the whole build, 0 … 1")
    message: str
    seconds: float | None = Field(description="since the build started, or how long it took")
