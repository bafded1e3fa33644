"""Schemathesis against the live application: requests generated from its own OpenAPI document (valid and
invalid) find no server error and no answer that disagrees with the document (issue 15, item 7).

Bounded: a tiny model, small limits (views <= 2, size <= 224, which the document then says) and a fixed
number of examples per operation, so the whole file takes well under a minute on two CPU cores.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import schemathesis
from api_factory import build_models
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from api.settings import Settings
from lewel.maps.atlas import ATLAS_FORMAT, ATLAS_NAME

OPERATIONS = r"^/(healthz|readyz|metrics|v1/(health|models|maps|embeddings|atlas/.*|gallery(/.*)?))$"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


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
        )
    )
    yield app
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
        ("POST /v1/embeddings", GenerationMode.POSITIVE, 50),
        ("POST /v1/embeddings", GenerationMode.NEGATIVE, 40),
        ("GET /v1/atlas/{model}", GenerationMode.POSITIVE, 25),
        ("GET /v1/atlas/{model}/maps/{index}", GenerationMode.POSITIVE, 20),
        ("GET /v1/atlas/{model}/thumbs/{name}", GenerationMode.POSITIVE, 20),
        ("GET /v1/atlas/{model}/build", GenerationMode.POSITIVE, 15),
        ("POST /v1/atlas/{model}/build", GenerationMode.POSITIVE, 25),
        ("POST /v1/atlas/{model}/build", GenerationMode.NEGATIVE, 25),
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
        case.call_and_validate(checks=CHECKS)

    check()
