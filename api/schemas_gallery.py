"""Answer of ``GET /v1/gallery``: the images the service offers without an upload (``lewel.data.gallery``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class GalleryItemBody(BaseModel):
    key: str = Field(description="the item's id for /v1/gallery/image, …/mask and …/thumbnail, e.g. skimage:coffee")
    label: str = Field(description="what a person reads, e.g. 'scikit-image · coffee cup'")
    short: str = Field(description="a few words for a thumbnail grid, e.g. 'coffee'")
    has_mask: bool = Field(description="whether /v1/gallery/mask answers for it (its objects are known exactly)")
    scenes: bool = Field(description="whether it is a family of generated scenes chosen by the 'scene' parameter")


class GalleryResponse(BaseModel):
    items: list[GalleryItemBody] = Field(description="every item offered on this server, samples first")
    max_scene: int = Field(description="the largest scene number the 'scene' parameter takes")
