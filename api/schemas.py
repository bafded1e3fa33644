"""Request parameters and response bodies (pydantic), as they appear in the OpenAPI schema at ``/docs``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Preset = Literal["byol1", "byol2", "mocov2", "cropflip"]
Order = Literal["index", "object", "multi-object", "global"]
Pattern = Literal["object", "multi-object", "global"]
Background = Literal["white", "black"]


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. too_large, unsupported_media_type, model_not_found")
    message: str = Field(description="what went wrong, naming the parameter, file or limit")


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    model: str
    device: str
    message: str


class ModelInfo(BaseModel):
    id: str = Field(description="what requests name the model by")
    file: str = Field(description="the checkpoint's file name")
    source: Literal["bundled", "models_dir"] = Field(description="the folder it was found in")
    status: Literal["loaded", "available", "error"]
    error: str | None = Field(None, description="why the file cannot be served (status error)")
    method: str | None = None
    backbone: str | None = None
    d: int | None = Field(None, description="number of alignment maps (projection size)")
    h: int | None = Field(None, description="number of channel groups")
    num_aligned: int | None = Field(None, description="d/h aligned representations")
    has_maps: bool | None = None
    device: str
    default: bool = False


class ModelList(BaseModel):
    default: str | None
    device: str
    searched: list[str] = Field(description="the folders looked in")
    models: list[ModelInfo]


class EncodedArray(BaseModel):
    """A numeric array: ``data`` is the base64 of its bytes, little-endian, C order."""

    dtype: Literal["float16", "float32", "uint8"]
    shape: list[int]
    data: str


class ModelSummary(BaseModel):
    id: str
    method: str
    backbone: str
    d: int | None
    h: int | None
    device: str
    source: str


class ImageInfo(BaseModel):
    width: int = Field(description="after EXIF orientation")
    height: int
    format: str | None
    mode: str = Field(description="the file's colour mode before conversion to RGB")


class ViewParams(BaseModel):
    """Form fields shared by ``/v1/maps`` and ``/v1/embeddings`` (unknown fields are refused with 422)."""

    model: str | None = Field(None, description="model id from /v1/models; default: the service's default model")
    views: int = Field(0, ge=0, description="augmented views after view 0 (the whole image); 0 = the image itself only")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="augmented view i is drawn from (seed, i)")
    preset: Preset = Field("byol1", description="augmentation: BYOL view 1 or 2, MoCo v2, or crop and flip only")
    size: int = Field(224, ge=32, description="input side in pixels (every view is size×size)")
    background: Background = Field("white", description="what transparent pixels are composited onto")


class MapsParams(ViewParams):
    maps: Literal["all", "top"] = Field("all", description="all d maps, or the top_k most typical of each pattern")
    top_k: int = Field(4, ge=1, description="maps per pattern when maps=top")
    order: Order = Field("index", description="by index, or by typicality of a pattern (maps=top: that pattern only)")
    format: Literal["json", "npz", "png"] = Field(
        "json", description="JSON with float16 arrays, NPZ arrays, or a Figure-5 PNG"
    )
    frame_cells: int = Field(
        32, ge=1, le=256, description="cells of the image-frame grid along the image's longer side"
    )


class EmbeddingsParams(ViewParams):
    format: Literal["json", "npz"] = Field("json", description="JSON with float32 arrays, or NPZ arrays")


class MapStatisticsBody(BaseModel):
    index: int
    pattern: Pattern
    entropy: float
    normalized_entropy: float
    effective_area: float
    active_area: float | None = Field(None, description="share of cells >= half the peak (when lewel.maps has it)")
    peak: float
    peak_ratio: float
    top_mass: float
    blobs: int
    main_blob_mass: float
    other_blob_mass: float
    typicality: dict[str, float] = Field(description="typicality for each pattern (higher = more typical)")


class MapInfo(BaseModel):
    index: int
    group: int = Field(description="channel group: index // (d/h)")
    aligned: int = Field(description="aligned representation: index % (d/h)")
    agreement: float | None = Field(description="cross-view agreement in [0, 1]; null with one view or no overlap")


class ViewBody(BaseModel):
    index: int = Field(description="0 = the whole image")
    preset: str | None
    seed: int | None = Field(description="the seed the view was drawn with (null for view 0)")
    box: list[int] = Field(description="crop [x0, y0, x1, y1] in original-image pixels")
    flip: bool = Field(description="mirrored left-right after cropping")
    image_png: str = Field(description="the view as the model saw it (before normalisation), base64 PNG")


class MapsViewBody(ViewBody):
    maps: EncodedArray = Field(description="k×h×w float16, the selected maps on the view's grid (each sums to 1)")
    frame_maps: EncodedArray = Field(
        description="k×rows×cols float16: the maps in the original image frame, mass per cell, NaN outside the crop"
    )
    coverage: EncodedArray = Field(description="rows×cols float16: share of each frame cell inside the crop")
    statistics: list[MapStatisticsBody] = Field(description="one per selected map, in the order of `selected`")


class Selection(BaseModel):
    maps: Literal["all", "top"]
    order: Order
    top_k: int
    indices: list[int] = Field(description="the map indices returned, in order")
    top: dict[str, list[int]] | None = Field(None, description="maps=top: the indices chosen for each pattern")
    ranked_on: Literal["view 0"] = "view 0"


class MapsResponse(BaseModel):
    model: ModelSummary
    image: ImageInfo
    size: int
    grid: list[int] = Field(description="[h, w] of the maps")
    frame_grid: list[int] = Field(description="[rows, cols] of the image-frame grid")
    selection: Selection
    maps: list[MapInfo] = Field(description="group, aligned index and agreement of each returned map")
    agreement: str = Field(description="how the agreement score is defined")
    views: list[MapsViewBody]


class EmbeddingsViewBody(ViewBody):
    global_embedding: EncodedArray | None = Field(description="d float32, the projection z (null for a bare backbone)")
    pooled_feature: EncodedArray = Field(description="D float32, the average-pooled backbone feature")
    aligned_embeddings: EncodedArray | None = Field(description="(d/h)×d float32, aligned representations through p")
    aligned_features: EncodedArray | None = Field(
        description="(d/h)×h×(D/h) float32: [n, g] = channel group g pooled with map g·(d/h)+n"
    )


class EmbeddingsResponse(BaseModel):
    model: ModelSummary
    image: ImageInfo
    size: int
    d: int | None
    h: int | None
    num_aligned: int | None
    feature_channels: int
    views: list[EmbeddingsViewBody]
