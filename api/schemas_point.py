"""Request and answer of ``POST /v1/point``: the maps that look at a point of the image."""

from __future__ import annotations

from pydantic import BaseModel, Field

from .schemas import ImageInfo, ModelSummary, ProfileSummary, ViewParams


class PointParams(ViewParams):
    x: float = Field(ge=0, description="the point's column in original-image pixels (after EXIF orientation)")
    y: float = Field(ge=0, description="the point's row in original-image pixels")
    top: int = Field(10, ge=1, description="how many maps to return, those that look most at the point first")


class LookingMapBody(BaseModel):
    index: int
    relative: float = Field(
        description="the map's value at the point ÷ its uniform value 1/(h·w), averaged over the views that "
        "contain the point (> 1: the map looks here more than elsewhere)"
    )
    per_view: list[float | None] = Field(description="that ratio on each view; null where the crop misses the point")
    views_above: float = Field(description="share of the containing views on which the map is above uniform here")
    agreement: float | None = Field(
        description="the map's cross-view agreement over all views, as in /v1/maps (null with one view)"
    )
    group: int = Field(description="channel group")
    aligned: int = Field(description="aligned representation")
    role: str | None = Field(None, description="from the model's profile: object, background or mixed (null: no profile)")
    auroc_heldout: float | None = Field(None, description="from the profile: this index's held-out AUROC")
    measured_pattern: str | None = Field(
        None, description="from a profile with patterns: object, multi-object, global, background or mixed"
    )


class PointResponse(BaseModel):
    model: ModelSummary
    image: ImageInfo
    size: int
    grid: list[int] = Field(description="[h, w] of the maps")
    point: list[float] = Field(description="[x, y] in original-image pixels, as asked")
    views: list[int] = Field(description="the views whose crop contains the point (view 0 always does)")
    cells: list[list[int] | None] = Field(description="per view, the [row, col] map cell under the point (null: outside the crop)")
    ranking: str = Field(description="how the maps are ranked")
    maps: list[LookingMapBody] = Field(description="the maps that look most at the point, first the most")
    profile: ProfileSummary | None = Field(None, description="the model's map profile (null: none)")
