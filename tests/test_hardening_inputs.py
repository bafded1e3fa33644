"""What the service says back about a client's bad input (issue 44, items 4 to 6): echoed values cut to a short
prefix, non-finite floats refused as such, and a schema that describes form fields as the service reads them."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from api_factory import build_models
from fastapi.testclient import TestClient
from PIL import Image

from api.errors import ECHO_LIMIT, echo_prefix, shown_name
from api.main import create_app
from api.settings import Settings

EMPTY = Path(__file__).parent / "fixtures" / "no-models-here"
LONG = "q" * 4000  #: the issue's 4,000-character id


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    models = build_models(tmp_path_factory.mktemp("inputs") / "models")
    settings = Settings(
        models_dir=models["tiny"].parent, bundled_models_dir=EMPTY, default_model="tiny", warmup_size=64,
        torch_threads=1, max_views=2,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 60, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def upload(client: TestClient, path: str = "/v1/maps", **fields):
    return client.post(path, files={"image": ("a.png", png(), "image/png")}, data={k: str(v) for k, v in fields.items()})


def test_the_helpers_cut_long_values_and_keep_short_ones():
    assert echo_prefix("tiny") == "tiny" and shown_name("tiny") == "'tiny'"
    assert echo_prefix(LONG) == "q" * ECHO_LIMIT + "…"
    assert shown_name(LONG) == f"'{'q' * ECHO_LIMIT}'… (4,000 characters)"


@pytest.mark.parametrize(
    ("method", "path", "fields", "status"),
    [
        ("upload", "/v1/maps", {"model": LONG}, 404),
        ("upload", "/v1/point", {"model": LONG, "x": 1, "y": 1}, 404),
        ("upload", "/v1/embeddings", {"model": LONG}, 404),
        ("upload", "/v1/maps", {LONG: "1"}, 422),  # an unknown field's name
        ("get", f"/v1/atlas/{LONG}", {}, 404),
        ("get", f"/v1/atlas/{LONG}/build", {}, 404),
        ("post", f"/v1/atlas/{LONG}/build", {}, 404),
        ("get", f"/v1/gallery/image?key={LONG}", {}, 404),
        ("get", f"/v1/{LONG}", {}, 404),  # no such endpoint
        ("put", f"/v1/atlas/tiny{LONG}/build", {}, 405),
        ("post", "/v1/atlas/tiny/build", {LONG: "1"}, 422),  # an unknown build field
    ],
)
def test_a_long_value_comes_back_as_a_short_prefix(client, method, path, fields, status):
    if method == "upload":
        answer = upload(client, path, **fields)
    elif method == "post":
        answer = client.post(path, data=fields)
    else:
        answer = client.request(method.upper(), path)
    assert answer.status_code == status, answer.text
    assert "q" * (ECHO_LIMIT + 1) not in answer.text and len(answer.text) < 2000, answer.text[:300]
    if status == 404 and "model" in fields:
        body = answer.json()
        assert body["model"] == echo_prefix(LONG) and "4,000 characters" in body["message"]


def test_a_long_content_length_and_many_indices_are_cut(client):
    answer = client.post("/v1/maps", content=b"", headers={"Content-Length": "x" * 500})
    assert answer.status_code == 400 and "x" * (ECHO_LIMIT + 1) not in answer.text
    indices = ",".join(str(40 + i) for i in range(300))  # all over tiny's d = 32
    answer = upload(client, indices=indices)
    assert answer.status_code == 422 and "40, 41" in answer.json()["message"] and "290 more" in answer.json()["message"]
    assert len(answer.text) < 600
    answer = upload(client, indices=",".join(["3"] * 300))
    assert answer.status_code == 422 and "gives 3 more than once" in answer.json()["message"]


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
@pytest.mark.parametrize(("path", "field", "extra"), [
    ("/v1/maps", "alpha", {}), ("/v1/point", "x", {"y": 1}), ("/v1/point", "y", {"x": 1}),
])
def test_a_non_finite_float_is_refused_as_not_finite(client, path, field, extra, value):
    answer = upload(client, path, **{field: value, **extra})
    assert answer.status_code == 422, answer.text
    message = answer.json()["message"]
    assert f"{field}: Input should be a finite number" in message, message
    assert "less than or equal" not in message and "greater than or equal" not in message


def test_out_of_range_floats_still_name_their_bound(client):
    assert "less than or equal to 1" in upload(client, alpha=1.5).json()["message"]
    assert "greater than or equal to 0" in upload(client, "/v1/point", x=-1, y=1).json()["message"]


def test_form_fields_are_never_described_as_nullable(client):
    """A form field is a string or absent: the literal "null" is a value the service refuses, so no field of an
    upload body or of the build body offers null (Schemathesis sent "null" for pattern= and indices=)."""
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    bodies = [name for name in schemas if name.startswith("Body_") or name == "AtlasBuildParams"]
    assert bodies
    for name in bodies:
        for field, schema in schemas[name]["properties"].items():
            alternatives = schema.get("anyOf", [schema])
            assert all(a.get("type") != "null" for a in alternatives), (name, field, schema)
    maps = next(schemas[n] for n in bodies if "pattern" in schemas[n]["properties"])["properties"]
    assert maps["pattern"]["enum"] == ["object", "multi-object", "global", "background", "mixed", "undecided"]
    assert maps["indices"]["type"] == "string" and maps["indices"]["pattern"].startswith("^[0-9]")
    assert maps["category"] == {**maps["category"], "type": "string", "minLength": 1, "maxLength": 200}
    assert upload(client, pattern="null").status_code == 422 and upload(client, indices="null").status_code == 422


def test_a_non_finite_setting_is_refused_naming_the_variable(monkeypatch, capsys):
    from api.__main__ import main

    monkeypatch.setenv("LEWEL_MEMORY_BUDGET_MB", "nan")
    assert main([]) == 2
    assert "LEWEL_MEMORY_BUDGET_MB: Input should be a finite number" in capsys.readouterr().err
