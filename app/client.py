"""The app's view of the inference service: an HTTP client for ``/v1/models``, ``/v1/maps``,
``/v1/embeddings``, ``/v1/point``, the gallery and the atlas that turns every failure into a ``ServiceError`` a
person can read.

The app asks ``/v1/maps`` for ``format=npz`` (all d maps of every view, their statistics, the warped maps, every
ordering the page shows and the decoded image): the same bytes are parsed for display and offered as the
download, so what is saved is what is shown. The app computes nothing the library computes: it has no torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from lewel.maps.pattern_names import PATTERNS

DEFAULT_API_URL = "http://127.0.0.1:8000"
HEALTH_TIMEOUT_S = 10.0  #: the models listing, the page's first request of a run, waits at most this


def npz_name(pattern: str) -> str:
    """A pattern's name in the NPZ answer's array names (``multi-object`` -> ``multi_object``)."""
    return pattern.replace("-", "_")


class ServiceError(Exception):
    """A request to the service failed. ``title`` says what failed in a few words, ``message`` why (the
    service's own message when it sent one), ``code`` is the service's error code or ``unreachable``."""

    def __init__(self, title: str, message: str, *, code: str = "error", status: int | None = None) -> None:
        super().__init__(f"{title}: {message}")
        self.title, self.message, self.code, self.status = title, message, code, status


@dataclass(frozen=True)
class ViewParams:
    """What decides the views and the model's input: the same params give the same views for any model."""

    views: int = 2
    preset: str = "byol1"
    seed: int = 0
    size: int = 224

    def form(self) -> dict[str, str]:
        return {"views": str(self.views), "preset": self.preset, "seed": str(self.seed), "size": str(self.size)}


@dataclass(frozen=True)
class MapsResult:
    """All d maps of V views of one image, parsed from the service's NPZ answer.

    - ``maps``: ``V×d×h×w`` float32 (each sums to 1 over its view); ``frame_maps``: ``V×d×rows×cols``
      (mass per cell of the original image, NaN where the view does not reach); ``coverage``: ``V×rows×cols``;
    - ``view_images``: ``V×S×S×3`` uint8, the views as the model saw them; ``boxes`` ``V×4`` (x0, y0, x1,
      y1) in original-image pixels; ``flips`` ``V``;
    - ``frame_density``: ``V×d×rows×cols`` the frame maps as density (mass ÷ covered share of the cell, NaN
      outside the crop), what is drawn on the image;
    - ``source_image``: ``H×W×3`` uint8, the image as the service decoded it, downscaled (longer side 384);
      ``source_size``: (W, H) of the decoded image, the frame of ``boxes``;
    - ``groups``, ``aligned``: ``d``, channel group and aligned representation of each map; ``agreement``
      ``d`` (NaN with one view); ``patterns`` ``V×d`` heuristic pattern names;
    - ``orders``: the service's orderings, name -> map indices best first (``order_heuristic_object``,
      ``order_profile_background``, ``order_pattern_multi_object`` …); ``category_names`` ``C`` and
      ``category_order`` ``C×d`` (-1 padded): the maps that look at each category of the profile;
    - ``statistics``: name -> ``V×d`` (entropy, effective_area, ...); ``typicality``: pattern -> ``V×d``;
    - ``model``: the service's model summary (id, method, backbone, d, h, device); ``npz``: the raw answer;
    - ``profile``: the model's map-profile summary (``None`` without one); ``roles`` ``d`` (object,
      background, mixed; "" without a profile), ``profile_auroc`` ``d`` (held-out AUROC of each index, NaN
      without a profile), ``profile_pointing`` ``d`` (its held-out pointing rate, NaN without a profile);
    - with a mask: ``mask_auroc`` ``V×d`` (this image's AUROC per view and map, NaN where a view lacks object
      or background cells), ``mask_pointing`` ``V×d``, ``mask_object_share`` ``V``; ``has_mask``.
    """

    model: dict[str, Any]
    maps: np.ndarray
    frame_maps: np.ndarray
    frame_density: np.ndarray
    coverage: np.ndarray
    source_image: np.ndarray
    source_size: tuple[int, int]
    view_images: np.ndarray
    boxes: np.ndarray
    flips: np.ndarray
    groups: np.ndarray
    aligned: np.ndarray
    agreement: np.ndarray
    patterns: np.ndarray
    statistics: dict[str, np.ndarray]
    typicality: dict[str, np.ndarray]
    agreement_definition: str
    npz: bytes
    profile: dict[str, Any] | None = None
    roles: np.ndarray | None = None
    profile_auroc: np.ndarray | None = None
    profile_pointing: np.ndarray | None = None
    mask_auroc: np.ndarray | None = None
    mask_pointing: np.ndarray | None = None
    mask_object_share: np.ndarray | None = None
    has_mask: bool = False
    key: str = ""  #: a digest of the answer: what drawn tiles are cached under
    measured_patterns: np.ndarray | None = None  #: ``d`` measured Figure-5 pattern per map ("" unmeasured)
    top_categories: np.ndarray | None = None  #: ``d×3`` the categories each map looks at most, best first
    preferred_category: np.ndarray | None = None  #: ``d`` the preferred category ("" none)
    orders: dict[str, np.ndarray] = field(default_factory=dict)
    category_names: tuple[str, ...] = ()
    category_order: np.ndarray | None = None
    pattern_confidence: np.ndarray | None = None  #: ``d`` how sure the profile is of each measured pattern (0..1)
    pattern_leaning: np.ndarray | None = None  #: ``d`` the role that won most resamples ("" unmeasured)

    @property
    def has_patterns(self) -> bool:
        """Whether the model's profile measured Figure 5's patterns (a version-3 profile on instance masks)."""
        return self.profile is not None and self.profile.get("patterns") is not None

    def pattern_of(self, index: int) -> str:
        """Map ``index``'s measured pattern, "" when not measured."""
        return str(self.measured_patterns[index]) if self.has_patterns and self.measured_patterns is not None else ""

    def category_of(self, index: int) -> str:
        """The category map ``index`` looks at most (its top category), "" when none was measured."""
        if not self.has_patterns or self.top_categories is None or self.top_categories.ndim != 2:
            return ""
        return str(self.top_categories[index][0]) if self.top_categories.shape[1] else ""

    @property
    def d(self) -> int:
        return int(self.maps.shape[1])

    @property
    def h(self) -> int:
        return int(self.model.get("h") or 1)

    @property
    def num_views(self) -> int:
        return int(self.maps.shape[0])

    def _order(self, name: str) -> list[int]:
        return [int(m) for m in self.orders.get(name, ())]

    def ranked(self, pattern: str | None) -> list[int]:
        """Map indices for a tab: the maps of view 0 classified as the heuristic ``pattern``, most typical of it
        first (the service's ``lewel.maps.top_per_pattern``), or every map by index when ``pattern`` is None."""
        if pattern is None:
            return list(range(self.d))
        return self._order(f"order_heuristic_{npz_name(pattern)}")

    def measured(self, role: str) -> list[int]:
        """The profile's ``object`` or ``background`` maps in its measured order (best held-out AUROC first
        for objects, lowest first for background; the service's ``lewel.maps.profiles.profile_indices``); [] without
        a profile."""
        return self._order(f"order_profile_{role}")  # empty without a profile

    def by_pattern(self, pattern: str) -> list[int]:
        """The maps of a measured Figure-5 ``pattern`` in the profile's order for it ([] when not measured)."""
        return self._order(f"order_pattern_{npz_name(pattern)}")

    def by_category(self, category: str) -> list[int]:
        """The maps that look at ``category`` of the profile's dissection, best first ([] for an unknown one)."""
        if self.category_order is None or category not in self.category_names:
            return []
        row = self.category_order[self.category_names.index(category)]
        return [int(m) for m in row if m >= 0]

    def count(self, pattern: str) -> int:
        """How many maps of view 0 are of ``pattern``."""
        return int((self.patterns[0] == pattern).sum())

    def aligned_maps(self, aligned: int) -> list[int]:
        """The h map indices that build aligned representation ``aligned`` (one per channel group)."""
        per_group = self.d // self.h
        return [group * per_group + aligned for group in range(self.h)]


def parse_maps_npz(data: bytes) -> MapsResult:
    """The NPZ answer of ``POST /v1/maps`` (``maps=all``, ``order=index``) -> ``MapsResult``."""
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(str(arrays["meta"]))
    names = arrays["pattern_names"]
    statistics = {
        name.removeprefix("statistics_"): value.astype(np.float64)
        for name, value in arrays.items()
        if name.startswith("statistics_")
    }
    masked = bool(meta.get("mask"))
    return MapsResult(
        model=meta["model"],
        maps=arrays["maps"].astype(np.float32),
        frame_maps=arrays["frame_maps"].astype(np.float32),
        frame_density=arrays["frame_density"].astype(np.float32),
        coverage=arrays["coverage"].astype(np.float32),
        source_image=arrays["source_image"],
        source_size=(int(arrays["source_size"][0]), int(arrays["source_size"][1])),
        view_images=arrays["view_images"],
        boxes=arrays["boxes"],
        flips=arrays["flips"],
        groups=arrays["groups"],
        aligned=arrays["aligned"],
        agreement=arrays["agreement"].astype(np.float64),
        patterns=names[arrays["patterns"]],
        statistics=statistics,
        typicality={p: arrays[f"typicality_{npz_name(p)}"].astype(np.float64) for p in PATTERNS},
        agreement_definition=meta.get("agreement", ""),
        npz=data,
        profile=meta.get("profile"),
        roles=arrays.get("roles"),
        profile_auroc=arrays["profile_auroc_heldout"].astype(np.float64) if "profile_auroc_heldout" in arrays else None,
        profile_pointing=arrays["profile_pointing_heldout"].astype(np.float64) if "profile_pointing_heldout" in arrays else None,
        mask_auroc=arrays["mask_auroc"].astype(np.float64) if masked else None,
        mask_pointing=arrays["mask_pointing"] if masked else None,
        mask_object_share=arrays["mask_object_share"].astype(np.float64) if masked else None,
        has_mask=masked,
        key=hashlib.blake2b(data, digest_size=12).hexdigest(),
        measured_patterns=arrays.get("measured_patterns"),
        top_categories=arrays.get("top_categories"),
        preferred_category=arrays.get("preferred_category"),
        orders={name: value for name, value in arrays.items() if name.startswith("order_")},
        category_names=tuple(str(name) for name in arrays.get("category_names", ())),
        category_order=arrays.get("category_order"),
        pattern_confidence=arrays["measured_pattern_confidence"].astype(np.float64)
        if "measured_pattern_confidence" in arrays
        else None,
        pattern_leaning=arrays.get("measured_pattern_leaning"),
    )


@dataclass(frozen=True)
class EmbeddingsResult:
    """Per view: ``global_embedding`` ``V×d`` and ``aligned_embeddings`` ``V×(d/h)×d`` (float32)."""

    global_embedding: np.ndarray
    aligned_embeddings: np.ndarray


class ApiClient:
    """A small synchronous client of the LEWEL service at ``base_url`` (``LEWEL_API_URL``), sending the
    bearer token ``LEWEL_API_TOKEN`` when one is set."""

    def __init__(self, base_url: str | None = None, *, token: str | None = None, timeout: float = 120.0) -> None:
        self.base_url = (base_url or os.environ.get("LEWEL_API_URL") or DEFAULT_API_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("LEWEL_API_TOKEN")
        self.timeout = timeout

    def _request(self, what: str, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        timeout = self.timeout if timeout is None else timeout
        try:
            response = httpx.request(method, self.base_url + path, headers=headers, timeout=timeout, **kwargs)
        except httpx.TimeoutException as error:
            raise ServiceError(
                f"{what} timed out",
                f"the LEWEL service at {self.base_url} did not answer within {timeout:.0f} s ({error})",
                code="timeout",
            ) from error
        except httpx.HTTPError as error:
            raise ServiceError(
                "The LEWEL service is not reachable",
                f"nothing answers at {self.base_url} ({error}). Start it with ./scripts/app, or point "
                "LEWEL_API_URL at a running service.",
                code="unreachable",
            ) from error
        if response.status_code >= 400:
            raise _service_error(what, response)
        return response

    def models(self) -> dict[str, Any]:
        """``GET /v1/models``: ``{"default", "device", "searched", "models": [...]}``. Asked with at most
        ``HEALTH_TIMEOUT_S``: the page asks it first on every run, and a service that does not answer it is
        said to be down at once, before any slower request waits on it."""
        return self._request("Listing the models", "GET", "/v1/models", timeout=min(self.timeout, HEALTH_TIMEOUT_S)).json()

    def _post_image(
        self, what: str, path: str, image: bytes, filename: str, form: dict[str, str], mask: bytes | None = None
    ) -> bytes:
        """POST ``image`` as the multipart field ``image`` (and ``mask`` when given) with ``form`` and
        ``format=npz``; the NPZ bytes."""
        files = {"image": (filename, image, "application/octet-stream")}
        if mask is not None:
            files["mask"] = ("mask.png", mask, "image/png")
        return self._request(what, "POST", path, files=files, data={**form, "format": "npz"}).content

    def maps(
        self, image: bytes, filename: str, model: str, params: ViewParams, mask: bytes | None = None
    ) -> MapsResult:
        """``POST /v1/maps`` with every map of every view (NPZ), parsed; with the image's object ``mask``
        (PNG) the answer also holds each map's AUROC on this image."""
        form = {**params.form(), "model": model}
        data = self._post_image(f"Computing the maps of {model}", "/v1/maps", image, filename, form, mask)
        return parse_maps_npz(data)

    def figure(
        self,
        image: bytes,
        filename: str,
        model: str,
        params: ViewParams,
        indices: list[int],
        *,
        fmt: str,
        dpi: int,
        cmap: str,
        alpha: float,
        scale: str,
    ) -> bytes:
        """``POST /v1/maps`` with ``format=png|pdf|svg``: the service draws Figure 5 of exactly ``indices``
        (every view a row) in the page's colours, titled with each map's measured pattern and AUROC."""
        form = {
            **params.form(),
            "model": model,
            "indices": ",".join(map(str, indices)),
            "format": fmt,
            "dpi": str(dpi),
            "cmap": cmap,
            "alpha": str(alpha),
            "scale": scale,
        }
        files = {"image": (filename, image, "application/octet-stream")}
        return self._request(f"Drawing the figure of {model}", "POST", "/v1/maps", files=files, data=form).content

    def gallery(self) -> dict[str, Any]:
        """``GET /v1/gallery``: ``{"items": [{"key", "label", "short", "has_mask", "scenes"}], "max_scene"}``."""
        return self._request("Listing the gallery", "GET", "/v1/gallery").json()

    def gallery_file(self, kind: str, key: str, scene: int = 0) -> httpx.Response:
        """``GET /v1/gallery/{kind}`` (``image``, ``mask`` or ``thumbnail``) of gallery item ``key``."""
        return self._request(f"Reading the gallery's {key}", "GET", f"/v1/gallery/{kind}", params={"key": key, "scene": scene})

    def embeddings(self, image: bytes, filename: str, model: str, params: ViewParams) -> EmbeddingsResult:
        """``POST /v1/embeddings`` (NPZ): the global and aligned embeddings of every view."""
        form = {**params.form(), "model": model}
        data = self._post_image(f"Computing the embeddings of {model}", "/v1/embeddings", image, filename, form)
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return EmbeddingsResult(
                global_embedding=archive["global_embedding"].astype(np.float32),
                aligned_embeddings=archive["aligned_embeddings"].astype(np.float32),
            )

    def point(
        self, image: bytes, filename: str, model: str, params: ViewParams, point: tuple[int, int], top: int = 8
    ) -> dict[str, Any]:
        """``POST /v1/point``: the ``top`` maps that look most at ``point`` (x, y in original-image pixels)
        on the views of ``params``, as the service ranks them (JSON)."""
        form = {**params.form(), "model": model, "x": str(point[0]), "y": str(point[1]), "top": str(top)}
        files = {"image": (filename, image, "application/octet-stream")}
        return self._request(f"Ranking the maps of {model} at a point", "POST", "/v1/point", files=files, data=form).json()

    def atlas_map(self, model: str, index: int) -> dict[str, Any]:
        """``GET /v1/atlas/{model}/maps/{index}``: the atlas's header with map ``index``'s record as ``map``
        (``ServiceError`` with code ``not_found`` when the model has no atlas)."""
        return self._request(f"Reading the atlas of {model}", "GET", f"/v1/atlas/{model}/maps/{index}").json()

    def atlas_thumbnail(self, model: str, path: str) -> bytes:
        """A thumbnail of ``model``'s atlas (PNG) by the relative path its JSON gives (``thumbs/….png``)."""
        return self._request(f"Reading a thumbnail of {model}'s atlas", "GET", f"/v1/atlas/{model}/{path}").content

    def atlas_build(self, model: str) -> dict[str, Any]:
        """``GET /v1/atlas/{model}/build``: the status of the model's atlas build (and whether one is served)."""
        return self._request(f"Asking about the atlas of {model}", "GET", f"/v1/atlas/{model}/build").json()

    def start_atlas_build(self, model: str, scenes: int, size: int) -> dict[str, Any]:
        """``POST /v1/atlas/{model}/build``: start building the model's atlas over ``scenes`` generated scenes."""
        form = {"scenes": str(scenes), "size": str(size)}
        return self._request(f"Starting the atlas of {model}", "POST", f"/v1/atlas/{model}/build", data=form).json()

    def build_status(self, path: str) -> dict[str, Any]:
        """``GET path``: the status of a background build (``/v1/atlas/{model}/build``,
        ``/v1/models/{model}/profile``), what a progress bar follows."""
        return self._request("Asking about a build", "GET", path).json()

    def profile_build(self, model: str) -> dict[str, Any]:
        """``GET /v1/models/{model}/profile``: the model's profile build (idle, running, done, failed) and its
        profile as the service reads it now."""
        return self._request(f"Asking about the profile of {model}", "GET", f"/v1/models/{model}/profile").json()

    def start_profile_build(self, model: str, images: int, size: int) -> dict[str, Any]:
        """``POST /v1/models/{model}/profile``: start measuring the model's profile on ``images`` generated
        scenes per split at ``size`` px."""
        body = {"images": images, "size": size}
        return self._request(f"Measuring the profile of {model}", "POST", f"/v1/models/{model}/profile", json=body).json()


def _service_error(what: str, response: httpx.Response) -> ServiceError:
    """The service's JSON error ``{"error", "message"}`` as a ``ServiceError`` titled for the person."""
    try:
        body = response.json()
        code, message = str(body.get("error", "error")), str(body.get("message", response.text))
    except ValueError:
        code, message = "error", response.text[:500] or response.reason_phrase
    titles = {
        "unsupported_media_type": "The image was rejected",
        "too_large": "The image is too large",
        "model_load_failed": "The model failed to load",
        "model_not_found": "The model is not available",
        "model_refused": "The model file was refused",
        "model_without_maps": "This model has no alignment maps",
        "invalid_mask": "The object mask was rejected",
        "no_profile": "This model has no map profile",
        "no_patterns": "This model's profile has no measured patterns",
        "unknown_category": "The profile has no such category",
        "unauthorized": "The service refused the request",
        "invalid_parameters": "The service rejected the settings",
        "out_of_memory": "The service ran out of memory",
        "not_ready": "The service is not ready yet",
        "build_running": "Another build is running",
        "too_costly": "The request is too costly",
        "no_mask": "This gallery item has no mask",
        "atlas_error": "The atlas cannot be read",
    }
    return ServiceError(titles.get(code, f"{what} failed"), message, code=code, status=response.status_code)
