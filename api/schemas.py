"""Request parameters and response bodies (pydantic), as they appear in the OpenAPI schema at ``/docs``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .schemas_builds import BuildStatusBody

Preset = Literal["byol1", "byol2", "mocov2", "cropflip"]
Order = Literal["index", "measured", "object", "multi-object", "global"]
Role = Literal["object", "background", "mixed"]
Pattern = Literal["object", "multi-object", "global"]
#: a measured pattern (``lewel.maps.patterns.PATTERN_ROLES``), or ``undecided`` where the data do not settle it
MeasuredPattern = Literal["object", "multi-object", "global", "background", "mixed", "undecided"]
Background = Literal["white", "black"]
Colormap = Literal["jet", "turbo", "viridis", "magma", "inferno", "plasma", "hot", "gray"]


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. too_large, unsupported_media_type, model_not_found")
    message: str = Field(description="what went wrong, naming the parameter, file or limit")


class Health(BaseModel):
    status: Literal["ok"]


class ReplicaHealth(BaseModel):
    """``/v1/health``: which process answered (``api.serving``)."""

    status: Literal["ok"]
    replica: str = Field(description="this replica's id, also in every answer's X-Lewel-Replica header")
    engine: Literal["uvicorn", "ray"] = Field(description="what serves the app: plain uvicorn or Ray Serve")
    version: str


class Ready(BaseModel):
    status: Literal["ready"]
    model: str
    device: str
    message: str


class RandomControlBody(BaseModel):
    scheme: str | None = Field(None, description="its initialisation scheme (torchvision, pytorch, trunc_normal)")
    seed: int | None = Field(None, description="torch seed of the random network of the same shape")
    object_auroc: float | None = Field(description="held-out AUROC of the control's own object maps")
    object_auroc_se: float | None = None
    object_auroc_calibration: float | None = Field(None, description="the same on the calibration split (optimistic)")
    object_pointing: float | None
    all_maps_auroc: float | None
    pointing_chance: float | None = None
    patterns: dict[str, int] | None = Field(
        None, description="its maps per measured pattern, by the model's rule (null: patterns not measured)"
    )


class SchemeBody(BaseModel):
    controls: int = Field(description="random networks of this scheme (seeds 0..n-1)")
    mean: float | None
    sd: float | None = Field(description="spread of their held-out object-maps AUROC (null with one network)")
    max: float | None
    bound: float | None = Field(description="top of a 95 % prediction interval for one more network of this scheme")


class ControlsBody(BaseModel):
    count: int = Field(description="random networks of the same shape the model was compared with")
    schemes: list[str]
    seeds: list[int]
    each: list[RandomControlBody] = Field(description="every control's scores, through the model's selection procedure")
    by_scheme: dict[str, SchemeBody]
    spread_sd: float | None = Field(description="spread of all controls' held-out object-maps AUROC")
    random_bound: float | None = Field(description="the highest of the best control's score and every scheme's bound")


class DifferenceBody(BaseModel):
    object_auroc: float | None = Field(description="model minus the best control, paired per held-out image")
    ci95: list[float | None] = Field(description="95 % interval of the difference (mean ± 1.96 standard errors)")
    against: str | None = Field(None, description="the control the difference is taken from")
    spread_allowance: float | None = Field(None, description="random bound minus the best control's score")
    margin: float | None = Field(None, description="the interval's lower end minus the allowance (> 0: localises)")


class PatternRangeBody(BaseModel):
    mean: float = Field(description="mean over the random controls of the maps with this pattern")
    min: int
    max: int


class RoleAgainstFamilyBody(BaseModel):
    count: int = Field(description="map indices whose role is decided as this one")
    family_min: int = Field(description="the smallest such count among the random controls, under the same rule")
    family_max: int = Field(description="the largest such count among the random controls, under the same rule")
    family_mean: float = Field(description="the random controls' mean count")
    beyond: bool = Field(description="true only when count exceeds family_max (beyond random)")
    below: bool = Field(description="true when count is under family_min (below random)")


class ProfileSummary(BaseModel):
    """What ``lewel profile`` measured for this checkpoint (its sidecar ``NAME.profile.json``)."""

    object_maps: list[int] = Field(
        description="the top object maps (by AUROC), the profile's object role: the 10 % of indices with the highest "
        "AUROC on the calibration split, best first. Not the maps with the object pattern (patterns): a map of the "
        "object role may have any measured pattern, and an object-pattern map need not be among these"
    )
    background_maps: list[int] = Field(
        description="the bottom background maps (by AUROC), the profile's background role: the 10 % lowest AUROC on "
        "the calibration split"
    )
    object_auroc: float | None = Field(
        description="mean AUROC of the top object maps (by AUROC) on the held-out split (0.5 = no relation)"
    )
    object_auroc_se: float | None = Field(None, description="its standard error over held-out images")
    object_auroc_calibration: float | None = Field(None, description="the same on the calibration split (optimistic)")
    object_pointing: float | None = Field(
        description="pointing-game hit rate of the top object maps (by AUROC) on the held-out split"
    )
    pointing_chance: float | None = Field(description="hit rate of a random cell")
    background_auroc: float | None = None
    all_maps_auroc: float | None = None
    heldout_images: int
    calibration_images: int
    random_control: RandomControlBody = Field(description="the best of the random controls")
    controls: ControlsBody
    difference: DifferenceBody
    verdict: Literal["localises", "not better than random"] = Field(
        description="localises when the 95 % interval of the difference from the best control lies above the spread allowance"
    )
    data: str = Field(description="the images the profile was measured on")
    benchmark: str = Field(
        description="which images those are: scenes (generated, procedural backgrounds), textured (generated, on "
        "photographs), coco, voc or folder"
    )
    size: int = Field(description="input side of the profile")
    grid: list[int] = Field(description="[h, w] of the maps at that size")
    patterns: dict[str, int] | None = Field(
        None,
        description="Figure 5 measured: how many map indices have each decided pattern (object, multi-object, global, "
        "background, mixed) and how many are undecided, roles given on calibration against the random controls and "
        "decided only where resampling the images settles them; null: not measured (patterns_note says why). "
        "patterns.object counts the maps with the object pattern, not the top object maps (by AUROC) of object_maps",
    )
    patterns_beyond_random: dict[str, RoleAgainstFamilyBody] | None = Field(
        None, description="per role, its decided count against the random family's under the same rule"
    )
    patterns_note: str | None = Field(
        None,
        description="with measured patterns: how many roles the data decided, and why fewer when the data are too "
        "few; without: why not measured (an older profile version, binary masks)",
    )
    patterns_line: str | None = Field(None, description="the pattern counts next to the random controls', in one line")
    control_patterns: dict[str, PatternRangeBody] | None = Field(
        None, description="per measured pattern, its count over the random controls of the same shape"
    )
    random_control_patterns: dict[str, int] | None = Field(
        None, description="the pattern counts of the best random control (the one random_control reports)"
    )
    dissection_line: str | None = Field(
        None, description='per-category dissection in one line: "K of d maps prefer one category; categories covered: ..."'
    )
    categories: list[str] = Field(
        default_factory=list, description="the categories the dissection measured (names for /v1/maps category=)"
    )


class ModelInfo(BaseModel):
    id: str = Field(description="what requests name the model by")
    file: str = Field(description="the checkpoint's file name")
    source: Literal["bundled", "models_dir"] = Field(description="the folder it was found in")
    status: Literal["loaded", "available", "error"]
    error: str | None = Field(None, description="why the file cannot be served (status error), naming the file")
    error_type: str | None = Field(
        None, description="the kind of failure (status error): CheckpointError, refused, or the exception's type"
    )
    method: str | None = None
    backbone: str | None = None
    d: int | None = Field(None, description="number of alignment maps (projection size)")
    h: int | None = Field(None, description="number of channel groups")
    num_aligned: int | None = Field(None, description="d/h aligned representations")
    has_maps: bool | None = None
    device: str
    default: bool = False
    profile: ProfileSummary | None = Field(None, description="the map profile (null: none measured for this file)")
    profile_error: str | None = Field(None, description="why a sidecar profile next to the file was not used")


class Limits(BaseModel):
    """What a request may ask for (the service's settings), so that clients can say so before asking."""

    max_upload_bytes: int = Field(description="largest uploaded file (LEWEL_MAX_UPLOAD_MB)")
    max_pixels: int = Field(description="largest decoded image, width × height (LEWEL_MAX_PIXELS)")
    max_views: int = Field(description="most augmented views per request (LEWEL_MAX_VIEWS)")
    max_input_size: int = Field(description="largest input side (LEWEL_MAX_INPUT_SIZE)")
    max_request_pixels: int | None = Field(
        None, description="most model input pixels per request, (views + 1) × size² (LEWEL_MAX_REQUEST_PIXELS)"
    )
    max_frame_values: int | None = Field(
        None, description="most frame-map values per /v1/maps request, (views + 1) × d × rows × cols (LEWEL_MAX_FRAME_VALUES)"
    )
    max_response_bytes: int | None = Field(None, description="largest answer (LEWEL_MAX_RESPONSE_MB)")
    figure_max_maps: int | None = Field(None, description="most maps a figure (format=png|pdf|svg) draws: the first of the selection")
    figure_source_side: int | None = Field(
        None, description="a figure's input column shows the image downscaled to this longer side (pixels)"
    )


class ModelList(BaseModel):
    default: str | None
    device: str
    limits: Limits | None = Field(None, description="the service's request limits")
    searched: list[str] = Field(
        description="the folders looked in, by label (bundled, models_dir); with their paths only when "
        "LEWEL_EXPOSE_PATHS=1"
    )
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
    """Form fields shared by ``/v1/maps`` and ``/v1/embeddings`` (unknown fields are refused with 422). Every float
    field must be a finite number: ``nan`` or ``inf`` is refused as not finite, not as out of range."""

    model_config = ConfigDict(allow_inf_nan=False)

    model: str | None = Field(
        None, description="model id from /v1/models; absent or empty: the service's default model"
    )
    views: int = Field(0, ge=0, description="augmented views after view 0 (the whole image); 0 = the image itself only")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="augmented view i is drawn from (seed, i)")
    preset: Preset = Field("byol1", description="augmentation: BYOL view 1 or 2, MoCo v2, or crop and flip only")
    size: int = Field(224, ge=32, description="input side in pixels (every view is size×size)")
    background: Background = Field("white", description="what transparent pixels are composited onto")


class MapsParams(ViewParams):
    maps: Literal["all", "top", "object", "background"] = Field(
        "all",
        description="all d maps, the top_k most typical of each (heuristic) pattern, or the model profile's "
        "top object maps (by AUROC) / bottom background maps (needs a profile; pattern=object gives the maps with "
        "the object pattern instead)",
    )
    top_k: int = Field(4, ge=1, description="maps per pattern when maps=top (at most the model's d)")
    order: Order = Field(
        "index",
        description="by index, measured (the profile's top object maps by AUROC first, best held-out AUROC first; needs a "
        "profile), or by heuristic typicality of a pattern (maps=top: that pattern only)",
    )
    format: Literal["json", "npz", "png", "pdf", "svg"] = Field(
        "json",
        description="JSON with float16 arrays, NPZ arrays, or the Figure-5 grid as PNG, PDF or SVG (titles with "
        "each map's measured role and AUROC or its heuristic pattern, a colour bar in units of the uniform value)",
    )
    cmap: Colormap = Field("jet", description="figures: the matplotlib colormap of the overlays")
    scale: Literal["range", "peak"] = Field(
        "range", description="figures: colours span each map's own range (min → max), or zero to its peak"
    )
    alpha: float = Field(0.5, ge=0.0, le=1.0, description="figures: opacity of the overlays (0 the view only, 1 the map only)")
    dpi: int = Field(100, ge=50, le=600, description="figures: resolution of PNG (and of the overlays in PDF/SVG)")
    frame_cells: int = Field(
        32, ge=1, le=256, description="cells of the image-frame grid along the image's longer side"
    )
    pattern: MeasuredPattern | None = Field(
        None,
        description="only the maps of this measured pattern, in the profile's order for it (object and "
        "multi-object: highest held-out AUROC first; global: most spread first; background: lowest AUROC first); "
        "needs a profile with measured patterns; with order=index or measured, and with any maps= (maps=top, object "
        "or background keep those of its maps that are also of this pattern)",
    )
    category: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="only the maps that look at this category of the profile's dissection (its significant "
        "preferers first, then by held-out AUROC against background); names in /v1/models profile.categories; "
        "with order=index or measured, and with any maps= (as pattern=)",
    )
    indices: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        pattern=r"^[0-9]{1,5}(,[0-9]{1,5})*$",
        description="exactly these maps, in this order, as comma-separated indices (e.g. 7,3,12; each below the "
        "model's d, none twice): what a client shows, e.g. to download its figure; with maps=all and order=index, "
        "without pattern= or category=",
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
    auroc: float | None = Field(
        None, description="with a mask: AUROC of this map's cells, object vs background, on this view (null: no mask, or no cells of both kinds)"
    )
    pointing_hit: bool | None = Field(None, description="with a mask: whether this map's peak cell is on an object")
    instance_auroc: list[float | None] | None = Field(
        None,
        description="with an instance-coded mask: per instance (in the order of `mask_instances`), the AUROC of "
        "its cells against the view's background cells (null: the view has no cell of that instance)",
    )


class CategoryScoreBody(BaseModel):
    name: str
    auroc_heldout: float | None = Field(description="AUROC of the category's cells against background, held-out images")
    images: int = Field(description="held-out images with the category")


class PreferredCategoryBody(BaseModel):
    name: str
    preference_heldout: float | None = Field(
        description="held-out AUROC of the category's cells against the other categories' object cells"
    )
    significant: bool = Field(description="whether the preference is above the random controls' (their 95th percentile)")


class MapInfo(BaseModel):
    index: int
    group: int = Field(description="channel group: index // (d/h)")
    aligned: int = Field(description="aligned representation: index % (d/h)")
    agreement: float | None = Field(description="cross-view agreement in [0, 1]; null with one view or no overlap")
    role: Role | None = Field(
        None,
        description="from the model's profile: object (among the top object maps by AUROC), background (among the "
        "bottom ones) or mixed (null: no profile); measured_pattern is the other, Figure-5 classification",
    )
    auroc_heldout: float | None = Field(None, description="from the profile: this index's mean AUROC on held-out images")
    auroc_calibration: float | None = Field(None, description="from the profile: the same on the calibration images")
    pointing_heldout: float | None = Field(None, description="from the profile: this index's held-out pointing rate")
    measured_pattern: MeasuredPattern | None = Field(
        None,
        description="from the profile: this index's measured pattern, or undecided when it wins fewer than the stated "
        "share of the resamples of the calibration images (null: no profile, or patterns not measured)",
    )
    measured_pattern_leaning: MeasuredPattern | None = Field(
        None, description="from the profile: the role that won most resamples (shown for undecided maps too)"
    )
    measured_pattern_confidence: float | None = Field(
        None, description="from the profile: the share of the resamples the leading role won (0..1)"
    )
    top_categories: list[CategoryScoreBody] = Field(
        default_factory=list, description="from the profile's dissection: up to 3 categories, best held-out AUROC first"
    )
    category: PreferredCategoryBody | None = Field(
        None, description="from the profile: the category this index prefers over the others (null: none measured)"
    )


class ViewBody(BaseModel):
    index: int = Field(description="0 = the whole image")
    preset: str | None
    seed: int | None = Field(description="the seed the view was drawn with (null for view 0)")
    box: list[int] = Field(description="crop [x0, y0, x1, y1] in original-image pixels")
    flip: bool = Field(description="mirrored left-right after cropping")
    image_png: str = Field(description="the view as the model saw it (before normalisation), base64 PNG")


class ViewInstanceBody(BaseModel):
    id: int = Field(description="the instance's value in the mask")
    share: float = Field(description="its share of the view's pixels")
    cells: int = Field(description="cells of the view's grid it covers by at least half (its AUROC's positives)")


class ViewMaskBody(BaseModel):
    object_share: float = Field(description="share of the view covered by objects")
    pointing_chance: float = Field(description="share of the view's cells on an object: the pointing hit rate of a random cell")
    scored: bool = Field(description="whether the view has both object and background cells (else AUROC is null)")
    instances: list[ViewInstanceBody] | None = Field(
        None, description="with an instance-coded mask: each instance on this view, in the order of `mask_instances`"
    )


class MapsViewBody(ViewBody):
    maps: EncodedArray = Field(description="k×h×w float16, the selected maps on the view's grid (each sums to 1)")
    frame_maps: EncodedArray = Field(
        description="k×rows×cols float16: the maps in the original image frame, mass per cell, NaN outside the crop"
    )
    coverage: EncodedArray = Field(description="rows×cols float16: share of each frame cell inside the crop")
    statistics: list[MapStatisticsBody] = Field(description="one per selected map, in the order of `selected`")
    mask: ViewMaskBody | None = Field(None, description="with a mask: the objects' share of this view and the pointing chance")


class Selection(BaseModel):
    maps: Literal["all", "top", "object", "background"]
    order: Order
    top_k: int
    indices: list[int] = Field(description="the map indices returned, in order")
    top: dict[str, list[int]] | None = Field(None, description="maps=top: the indices chosen for each pattern")
    ranked_on: Literal["view 0", "profile"] = Field(
        "view 0", description="heuristic selections rank view 0's maps; measured ones follow the model's profile"
    )
    pattern: MeasuredPattern | None = Field(None, description="the measured pattern asked for (null: none)")
    category: str | None = Field(None, description="the category asked for (null: none)")


class MapsResponse(BaseModel):
    model: ModelSummary
    image: ImageInfo
    size: int
    grid: list[int] = Field(description="[h, w] of the maps")
    frame_grid: list[int] = Field(description="[rows, cols] of the image-frame grid")
    selection: Selection
    maps: list[MapInfo] = Field(description="group, aligned index and agreement of each returned map")
    agreement: str = Field(description="how the agreement score is defined")
    profile: ProfileSummary | None = Field(None, description="the model's map profile (null: none measured)")
    mask: bool = Field(False, description="whether a mask was uploaded (per-view AUROC and pointing hits)")
    mask_instances: list[int] | None = Field(
        None,
        description="an instance-coded mask (0 background, k instance k): the value of each instance, the order "
        "of every per-instance list (statistics[].instance_auroc, views[].mask.instances); null: no mask or a binary one",
    )
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


class AtlasBuildParams(BaseModel):
    """Form fields of ``POST /v1/atlas/{model}/build`` (all optional; unknown fields are refused with 422)."""

    model_config = {"extra": "forbid"}

    scenes: int | None = Field(
        None, ge=1, description="generated scenes with object masks to build over; default 200, at most "
        "LEWEL_ATLAS_MAX_SCENES",
    )
    size: int = Field(
        128, ge=32, description="input side in pixels (at most LEWEL_MAX_INPUT_SIZE); 128 keeps a CPU build short"
    )


class AtlasBuildStatus(BuildStatusBody):
    """The last on-demand atlas build of a model in this process."""

    status: Literal["idle", "running", "done", "error"]
    stage: Literal["maps", "atlas", "thumbnails"] | None = Field(description="while running: the current stage")
    done: int = Field(description="what the current stage has done: scenes, shards or images drawn from")
    scenes: int | None
    size: int | None
    atlas: bool = Field(description="whether an atlas of this model is served now")
    folder: str | None = Field(
        description="where the model's atlas is (or will be) written; null unless LEWEL_EXPOSE_PATHS=1"
    )
    max_scenes: int = Field(description="LEWEL_ATLAS_MAX_SCENES")
