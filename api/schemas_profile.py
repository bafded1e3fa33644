"""Body and answer of ``POST`` / ``GET /v1/models/{model}/profile``: a map profile measured by the service
(``api.profile_builds``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from lewel.maps.profiles import DEFAULT_SIZE

from .schemas import ErrorBody, ProfileSummary
from .schemas_builds import BuildStatusBody


class ProfileBuildParams(BaseModel):
    """The JSON body of ``POST /v1/models/{model}/profile`` (every field optional; unknown fields are refused
    with 422). What a client may name is narrow on purpose: generated scenes only, no server path."""

    model_config = {"extra": "forbid"}

    data: Literal["scenes", "textured"] = Field(
        "scenes", description="the masked images measured on: generated scenes (the calibration and held-out seeds "
        "of lewel profile), on procedural backgrounds (scenes) or on photographs (textured)",
    )
    images: int | None = Field(
        None, ge=1, description="images per split (calibration and held-out); default 256, at most "
        "LEWEL_PROFILE_MAX_IMAGES",
    )
    size: int = Field(
        DEFAULT_SIZE, ge=32, description="input side in pixels (at most LEWEL_MAX_INPUT_SIZE); 224 as lewel profile, "
        "where a ResNet's maps are 7×7",
    )


class ProfileBuildStatus(BuildStatusBody):
    """The last profile build of a model in this process, and the profile the service reads for it now."""

    status: Literal["idle", "running", "done", "failed"]
    stage: Literal["loading", "scoring", "writing"] | None = Field(description="while running: the current stage")
    done: int = Field(description="what the current stage has done (images over every pass while scoring)")
    error: str | None = Field(description="why the build failed (status failed)")
    data: str | None
    images: int | None = Field(description="images per split")
    size: int | None
    controls: int | None = Field(description="random networks of the model's shape measured with it")
    written: Literal["checkpoint_folder", "profile_dir"] | None = Field(
        description="once done: where the profile went, beside the checkpoint or to LEWEL_PROFILE_DIR"
    )
    file: str | None = Field(description="the profile file written; null unless LEWEL_EXPOSE_PATHS=1")
    max_images: int = Field(description="LEWEL_PROFILE_MAX_IMAGES")
    profile: ProfileSummary | None = Field(
        description="the model's profile as /v1/models lists it now (null: none, or one that cannot be used)"
    )
    profile_error: str | None = Field(description="why the model's profile file cannot be used")


class ProfileBuildRunningBody(ErrorBody):
    """409: a profile build runs already; ``build`` is its status."""

    build: ProfileBuildStatus
