"""Schemathesis against the live application: requests generated from its own OpenAPI document (valid and
invalid) find no server error and no answer that disagrees with the document (issue 15, item 7), with every
check Schemathesis has, "schema-valid request rejected" (positive_data_acceptance) included (issue 44, item 4).

Valid uploads are images: the document names the media types of ``image`` and ``mask`` (multipart ``encoding``),
and this file gives Schemathesis a strategy for each, drawing small two-level pictures (a white rectangle on
black, 4:3) that are a usable image and a usable binary mask of it at once; whether bytes decode is what no
schema can say. The refusals that follow from the model a request names (its d, its profile) or from the size
of the image it uploads (a point outside it, a cost over a limit) are the only 422s a valid request may get
(``MODEL_CODES``, ``MODEL_RULES``): a document cannot know either before the request.

Bounded: a tiny model, small limits (views <= 2, size <= 224, which the document then says) and a fixed
number of examples per operation, so the whole file takes about a minute on two CPU cores.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import numpy as np

import pytest
import schemathesis
from api_factory import build_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from api.main import create_app
from api.settings import Settings
from lewel.maps.atlas import ATLAS_FORMAT, ATLAS_NAME

OPERATIONS = r"^/(healthz|readyz|metrics|v1/(health|models(/\{model\}/profile)?|maps|point|embeddings|atlas/.*|gallery(/.*)?))$"
#: 422 codes of refusals that follow from the model a request names or the image it uploads: no profile, no
#: measured patterns, a category its profile lacks, no maps at all, a cost over a limit
MODEL_CODES = {"no_profile", "no_patterns", "unknown_category", "model_without_maps", "too_costly"}
#: invalid_parameters messages of the same kind: a number of maps against the model's d, a point against the image
MODEL_RULES = ("exceeds the model's d", "the model has d=", "lies outside the image")


def schema_valid_request_accepted(ctx, response, case):
    """Schemathesis's positive_data_acceptance, less the refusals ``MODEL_CODES`` and ``MODEL_RULES``."""
    if response.status_code == 422 and case.meta is not None and case.meta.generation.mode.is_positive:
        body = response.json()
        if body.get("error") in MODEL_CODES or any(rule in body.get("message", "") for rule in MODEL_RULES):
            return None
    return positive_data_acceptance(ctx, response, case)


def sends_nothing_invalid(case) -> bool:
    """Whether a negative multipart case's only invalid value is an empty list: multipart sends one part per item,
    so an empty list is no part at all, the same request as leaving the field out (which is valid)."""
    body = case.body if isinstance(case.body, dict) else {}
    return case.media_type == "multipart/form-data" and any(value == [] for value in body.values())


def schema_violating_request_rejected(ctx, response, case):
    """Schemathesis's negative_data_rejection, less the cases ``sends_nothing_invalid`` finds."""
    if case.meta is not None and not case.meta.generation.mode.is_positive and sends_nothing_invalid(case):
        return None
    return negative_data_rejection(ctx, response, case)


load_all_checks()
REPLACED = (positive_data_acceptance, negative_data_rejection)
CHECKS_RUN = [check for check in CHECKS.get_all() if check not in REPLACED and callable(check)]
CHECKS_RUN += [schema_valid_request_accepted, schema_violating_request_rejected]


@st.composite
def two_level_pictures(draw, fmt: str) -> bytes:
    """A white rectangle on black, 4:3, as ``fmt``: a usable image, and in PNG a usable binary mask of any of them."""
    k = draw(st.integers(4, 16))
    width, height = 4 * k, 3 * k
    x0, y0 = draw(st.integers(0, width // 2)), draw(st.integers(0, height // 2))
    pixels = np.zeros((height, width), np.uint8)
    pixels[y0 : y0 + height // 3, x0 : x0 + width // 3] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("L" if fmt == "PNG" else "RGB").save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module", autouse=True)
def image_media_types():
    """Strategies for the media types the document gives ``image`` and ``mask`` (``api.openapi.FILE_TYPES``)."""
    for media, fmt in (("image/png", "PNG"), ("image/jpeg", "JPEG"), ("image/webp", "WEBP"), ("image/bmp", "BMP")):
        schemathesis.openapi.media_type(media, two_level_pictures(fmt))
    yield
    from schemathesis.specs.openapi.media_types import unregister_all

    unregister_all()


@pytest.fixture(scope="module")
def service_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("schemathesis")
    models = build_models(root / "models")
    atlases = root / "atlases"  # an atlas folder exists: generated ids and names reach the atlas routes' checks
    (atlases / "tiny").mkdir(parents=True)
    (atlases / "tiny" / ATLAS_NAME).write_text(json.dumps({"format": ATLAS_FORMAT, "maps": []}))
    app = create_app(
        Settings(
            models_dir=models["tiny"].parent,
            bundled_models_dir=Path(__file__).parent / "fixtures" / "no-models-here",
            default_model="tiny",
            warmup_size=64,
            max_views=2,
            max_input_size=224,
            max_upload_mb=1,
            torch_threads=1,
            atlas_dir=atlases,
            atlas_max_scenes=2,
            profile_max_images=2,  # a profile build started here: 2 scenes per split against one random network
            profile_control_seeds=1,
            profile_control_schemes="pytorch",
        )
    )
    yield app
    app.state.service.profile_builds.close()
    app.state.service.readiness.wait(60)
    app.state.service.registry.close()


def as_text_files(document: dict) -> dict:
    """``document`` with its binary file fields as plain strings: Schemathesis 4 cannot negate a
    ``format: binary`` field (its generator raises "Unsupported type: 'Binary'"), so the negative cases
    are drawn from this copy; the positive ones from the document as served (binary fields get images)."""
    document = copy.deepcopy(document)
    for body in document["components"]["schemas"].values():
        for field in body.get("properties", {}).values():
            if field.get("format") == "binary":
                field.pop("format")
                field["contentMediaType"] = "application/octet-stream"
    return document


@pytest.fixture(scope="module")
def api_schemas(service_app) -> dict[GenerationMode, schemathesis.BaseSchema]:
    served = schemathesis.openapi.from_asgi("/openapi.json", service_app)
    negative = schemathesis.openapi.from_dict(as_text_files(served.raw_schema))
    negative.app, negative.location = service_app, "/openapi.json"
    return {
        GenerationMode.POSITIVE: served.include(path_regex=OPERATIONS),
        GenerationMode.NEGATIVE: negative.include(path_regex=OPERATIONS),
    }


@pytest.mark.parametrize(
    ("label", "mode", "examples"),
    [
        ("GET /healthz", GenerationMode.POSITIVE, 3),
        ("GET /readyz", GenerationMode.POSITIVE, 3),
        ("GET /metrics", GenerationMode.POSITIVE, 3),
        ("GET /v1/health", GenerationMode.POSITIVE, 3),
        ("GET /v1/models", GenerationMode.POSITIVE, 3),
        ("POST /v1/maps", GenerationMode.POSITIVE, 80),
        ("POST /v1/maps", GenerationMode.NEGATIVE, 60),
        ("POST /v1/point", GenerationMode.POSITIVE, 40),
        ("POST /v1/point", GenerationMode.NEGATIVE, 30),
        ("POST /v1/embeddings", GenerationMode.POSITIVE, 50),
        ("POST /v1/embeddings", GenerationMode.NEGATIVE, 40),
        ("GET /v1/atlas/{model}", GenerationMode.POSITIVE, 25),
        ("GET /v1/atlas/{model}/maps/{index}", GenerationMode.POSITIVE, 20),
        ("GET /v1/atlas/{model}/thumbs/{name}", GenerationMode.POSITIVE, 20),
        ("GET /v1/atlas/{model}/build", GenerationMode.POSITIVE, 15),
        ("POST /v1/atlas/{model}/build", GenerationMode.POSITIVE, 25),
        ("POST /v1/atlas/{model}/build", GenerationMode.NEGATIVE, 25),
        ("GET /v1/models/{model}/profile", GenerationMode.POSITIVE, 10),
        ("POST /v1/models/{model}/profile", GenerationMode.POSITIVE, 15),
        ("POST /v1/models/{model}/profile", GenerationMode.NEGATIVE, 15),
        ("GET /v1/gallery", GenerationMode.POSITIVE, 3),  # no parameters: nothing negative to generate
        ("GET /v1/gallery/image", GenerationMode.POSITIVE, 20),
        ("GET /v1/gallery/image", GenerationMode.NEGATIVE, 15),
        ("GET /v1/gallery/mask", GenerationMode.POSITIVE, 15),
        ("GET /v1/gallery/mask", GenerationMode.NEGATIVE, 15),
        ("GET /v1/gallery/thumbnail", GenerationMode.POSITIVE, 15),
    ],
)
def test_generated_requests_find_no_server_error_and_no_schema_violation(api_schemas, label, mode, examples):
    operation = api_schemas[mode].find_operation_by_label(label)
    assert operation is not None, label

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def check(case) -> None:
        case.call_and_validate(checks=CHECKS_RUN, timeout=120)  # a figure on a loaded 2-core machine can pass 10 s

    check()
