"""Bounded cost and memory per request, the empty-token refusal and an OpenAPI document that matches
behaviour (issue 15, items 3, 4, 6 and 7)."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import struct
import threading
import time
from pathlib import Path

import pytest
from api_factory import build_models, image_bytes, png_declaring
from fastapi.responses import Response
from fastapi.testclient import TestClient
from PIL import Image
from pydantic import ValidationError

import api.routes.maps as maps_route
from api.errors import ApiError
from api.limits import MemoryBudget, decode_bytes, plan_request
from api.main import create_app
from api.middleware import token_matches
from api.openapi import IMAGE_TYPES, MAPS_RULES
from api.settings import Settings

EMPTY = Path(__file__).parent / "fixtures" / "no-models-here"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("hardening_api") / "models")


def make_client(models: dict[str, Path], **overrides) -> TestClient:
    values = dict(models_dir=models["tiny"].parent, bundled_models_dir=EMPTY, default_model="tiny", warmup_size=64)
    values.update(overrides)
    return TestClient(create_app(Settings(**values)))


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (120, 60, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def post(client: TestClient, path: str = "/v1/maps", data: bytes | None = None, files: dict | None = None, **fields):
    files = files or {"image": ("a.png", png(64, 48) if data is None else data, "image/png")}
    return client.post(path, files=files, data={k: str(v) for k, v in fields.items()})


# --- per-request cost --------------------------------------------------------------------------------------


def test_costly_requests_within_the_field_limits_are_refused_naming_the_limit(models):
    with make_client(models) as client:
        tiny = png(1, 1)  # the 69-byte PNG
        answer = post(client, data=tiny, views=8, frame_cells=256)
        assert answer.status_code == 422 and answer.json()["error"] == "too_costly", answer.text
        assert answer.json()["limit"] == "LEWEL_MAX_FRAME_VALUES" and "frame_cells" in answer.json()["message"]
        answer = post(client, data=tiny, views=8, size=512)
        assert answer.status_code == 422 and answer.json()["limit"] == "LEWEL_MAX_REQUEST_PIXELS"
        assert "(views + 1) × size²" in answer.json()["message"] and "2,359,296" in answer.json()["message"]
        answer = post(client, "/v1/embeddings", data=tiny, views=8, size=512)
        assert answer.status_code == 422 and answer.json()["limit"] == "LEWEL_MAX_REQUEST_PIXELS"
        assert post(client, data=tiny, views=2, size=64, frame_cells=64).status_code == 200
        assert post(client, data=png(640, 480), views=8, size=96).status_code == 200


def test_the_cost_limits_are_listed_for_clients(models):
    with make_client(models, max_request_pixels=500_000) as client:
        limits = client.get("/v1/models").json()["limits"]
    assert limits["max_request_pixels"] == 500_000 and limits["max_frame_values"] == 8_388_608
    assert limits["max_response_bytes"] == 32 * 2**20


def test_the_answer_size_is_bounded(models):
    with make_client(models, max_response_mb=0.25) as client:
        answer = post(client, views=2, size=64, frame_cells=128)
        body = answer.json()
        assert answer.status_code == 422 and body["limit"] == "LEWEL_MAX_RESPONSE_MB", answer.text
        assert "MiB" in body["message"] and "format=npz" in body["message"]
        binary = post(client, views=2, size=64, frame_cells=128, format="npz").json()
        assert binary["error"] == "too_costly" and "npz" not in binary["message"]  # asked for NPZ already
        assert "fewer views" in binary["message"] and "frame_cells" in binary["message"]
        small = post(client, views=0, size=64, frame_cells=16)
        assert small.status_code == 200 and len(small.content) < 0.25 * 2**20


def test_the_estimate_grows_with_what_the_request_decodes():
    common = dict(
        kind="maps", views=0, size=64, d=32, num_aligned=8, maps=None, frame_cells=32, output="json",
        max_request_pixels=10**7, max_frame_values=10**9, max_response_bytes=10**9,
    )
    small = plan_request(declared=(64, 48, "RGB"), mask=None, **common)
    large = plan_request(declared=(7000, 5700, "F"), mask=None, **common)
    masked = plan_request(declared=(7000, 5700, "F"), mask=(7000, 5700, "L"), **common)
    assert small.memory < large.memory < masked.memory
    assert masked.memory - large.memory == decode_bytes((7000, 5700, "L"), mask=True) > 0
    # measured (benchmarks/results/api_memory_cpu.json): about 9 bytes per pixel for a 40 MP image, 3 for a mask
    assert 9 <= decode_bytes((7000, 5700, "F")) / (7000 * 5700) <= 12
    assert 3 <= decode_bytes((7000, 5700, "L"), mask=True) / (7000 * 5700) <= 6


# --- the memory budget -------------------------------------------------------------------------------------


def test_concurrent_heavy_requests_beyond_the_bound_get_503(models, monkeypatch):
    release = threading.Event()
    started = threading.Semaphore(0)

    def blocked(service, data, params, mask_data=None):
        started.release()
        release.wait(30)
        return Response(b"done", media_type="application/octet-stream")

    monkeypatch.setattr(maps_route, "_compute", blocked)
    with make_client(models, memory_budget_mb=1, max_queued=1, retry_after_s=7) as client:
        budget = client.app.state.service.budget
        results: dict[str, int] = {}

        def call(name: str) -> None:
            results[name] = post(client, size=64).status_code

        first = threading.Thread(target=call, args=("first",))
        first.start()
        assert started.acquire(timeout=30)  # the first runs (alone: it needs more than the 1 MiB budget)
        second = threading.Thread(target=call, args=("second",))
        second.start()
        deadline = time.monotonic() + 30
        while budget.queued < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        refused = [post(client, size=64) for _ in range(2)]  # the queue holds one: these are turned away
        for answer in refused:
            assert answer.status_code == 503 and answer.json()["error"] == "busy", answer.text
            assert answer.headers["Retry-After"] == "7" and "LEWEL_MAX_QUEUED" in answer.json()["message"]
        assert budget.running == 1 and budget.queued == 1
        release.set()
        first.join(30)
        second.join(30)
        assert results == {"first": 200, "second": 200}
        assert budget.running == 0 and budget.used == 0 and budget.queued == 0


def test_the_budget_is_shared_first_come_first_served():
    async def scenario() -> list[str]:
        budget = MemoryBudget(100, max_queued=4, retry_after_s=1)
        order: list[str] = []
        gates = {name: asyncio.Event() for name in "abcd"}

        async def job(name: str, need: int) -> None:
            async with budget.reserve(need):
                order.append(name)
                await gates[name].wait()

        tasks = [asyncio.create_task(job("a", 60))]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(job("b", 60)))  # does not fit next to a: waits
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(job("c", 10)))  # would fit, but b came first
        await asyncio.sleep(0)
        assert order == ["a"] and budget.queued == 2
        tasks.append(asyncio.create_task(job("d", 500)))  # over the whole budget: runs alone, later
        await asyncio.sleep(0)
        gates["a"].set()
        await asyncio.sleep(0.01)
        assert order == ["a", "b", "c"]
        gates["b"].set()
        gates["c"].set()
        await asyncio.sleep(0.01)
        assert order == ["a", "b", "c", "d"] and budget.used == 100
        gates["d"].set()
        await asyncio.gather(*tasks)
        assert budget.used == 0 and budget.running == 0
        with pytest.raises(ApiError) as error:
            full = MemoryBudget(10, max_queued=0, retry_after_s=3)
            async with full.reserve(5):
                async with full.reserve(6):
                    pass
        assert error.value.status == 503 and error.value.headers["Retry-After"] == "3"
        return order

    asyncio.run(scenario())


def test_a_mask_upload_obeys_the_byte_cap(models):
    with make_client(models, max_upload_mb=0.05) as client:
        files = {
            "image": ("a.png", png(64, 48), "image/png"),
            "mask": ("m.png", b"\x89PNG" + b"\x00" * 80_000, "image/png"),
        }
        answer = client.post("/v1/maps", files=files, data={"size": "64"})
        assert answer.status_code == 413 and answer.json()["error"] == "too_large", answer.text


# --- the token -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "   "])
def test_an_empty_token_is_refused_at_start_up(monkeypatch, token):
    with pytest.raises(ValidationError, match="LEWEL_API_TOKEN is set but empty"):
        Settings(api_token=token)
    monkeypatch.setenv("LEWEL_API_TOKEN", token)
    with pytest.raises(ValidationError, match="unset it to serve without a token"):
        Settings()
    assert not token_matches("Bearer ", "") and not token_matches("Bearer", "") and not token_matches("Bearer x", "")


def test_python_m_api_refuses_an_empty_token_before_starting(monkeypatch, capsys):
    from api.__main__ import main

    monkeypatch.setenv("LEWEL_API_TOKEN", "")
    assert main(["--port", "1"]) == 2
    error = capsys.readouterr().err
    assert "lewel-serve: error: invalid service settings: LEWEL_API_TOKEN is set but empty" in error
    assert "Traceback" not in error


# --- the OpenAPI document ----------------------------------------------------------------------------------


def openapi(models, **overrides) -> dict:
    with make_client(models, **overrides) as client:
        return client.get("/openapi.json").json()


def operations(document: dict) -> dict[tuple[str, str], dict]:
    return {(path, method): op for path, ops in document["paths"].items() for method, op in ops.items()}


def test_openapi_declares_security_only_with_a_token(models):
    plain = openapi(models)
    assert "securitySchemes" not in plain["components"]
    assert all("security" not in op and "401" not in op["responses"] for op in operations(plain).values())
    guarded = openapi(models, api_token="s3cret", max_views=3, max_input_size=256)
    secured = {key for key, op in operations(guarded).items() if op.get("security")}
    assert {("/v1/models", "get"), ("/v1/maps", "post"), ("/v1/embeddings", "post"), ("/metrics", "get")} <= secured
    assert not {key for key in secured if key[0] in ("/healthz", "/readyz", "/docs")}
    assert all("401" in operations(guarded)[key]["responses"] for key in secured)
    body = guarded["components"]["schemas"]["Body_maps_v1_maps_post"]
    assert body["properties"]["views"]["maximum"] == 3 and body["properties"]["size"]["maximum"] == 256


def test_openapi_bodies_match_what_the_service_accepts(models):
    document = openapi(models)
    for name in ("Body_maps_v1_maps_post", "Body_embeddings_v1_embeddings_post"):
        body = document["components"]["schemas"][name]
        # flattened: no $ref to the parameters' model; the only allOf is /v1/maps's rules between fields
        assert body["additionalProperties"] is False and body.get("allOf", MAPS_RULES) == MAPS_RULES
        properties = body["properties"]
        seed = properties["seed"]["maximum"]
        assert isinstance(seed, int) and seed == 2**63 - 1
        assert properties["views"]["maximum"] == 8 and properties["size"]["maximum"] == 512
        assert properties["image"]["format"] == "binary" and body["required"] == ["image"]
        assert all(
            isinstance(field[key], int) for field in properties.values() if field.get("type") == "integer"
            for key in ("minimum", "maximum") if key in field
        )
    assert document["components"]["schemas"]["Body_maps_v1_maps_post"]["properties"]["mask"]["format"] == "binary"
    encoding = document["paths"]["/v1/maps"]["post"]["requestBody"]["content"]["multipart/form-data"]["encoding"]
    assert encoding == {"image": {"contentType": IMAGE_TYPES}, "mask": {"contentType": "image/png"}}
    for path in ("/v1/maps", "/v1/embeddings"):
        responses = document["paths"][path]["post"]["responses"]
        assert {"400", "413", "415", "422", "503"} <= set(responses)
        assert "Retry-After" in responses["503"]["headers"]
    assert "text/plain" in document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]


def png_with_bad_exif(tags: int) -> bytes:
    """A small PNG whose eXIf chunk lists ``tags`` tags, each claiming 4 kB of the chunk's data: once they claim
    more than the chunk holds, Pillow warns once per tag."""
    entries = b"".join(struct.pack(">HHLL", 0x1000 + i, 4, 1000, 8) for i in range(tags))
    exif = b"MM\x00\x2a" + struct.pack(">L", 8) + struct.pack(">H", tags) + entries + struct.pack(">L", 0)
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 30)).save(buffer, "PNG", exif=b"Exif\x00\x00" + exif)
    return buffer.getvalue()


def test_a_file_full_of_bad_exif_tags_writes_one_log_line(models, caplog, capfd):
    with make_client(models) as client:
        with caplog.at_level(logging.WARNING):
            answer = post(client, data=png_with_bad_exif(5000), size=64)
        assert answer.status_code == 200, answer.text
    lines = [r for r in caplog.records if "while decoding" in r.getMessage()]
    assert len(lines) == 1 and "'image'" in lines[0].getMessage() and "Skipping tag" in lines[0].getMessage()
    assert int(re.search(r"(\d+) warning", lines[0].getMessage()).group(1)) > 4900
    assert "Skipping tag" not in capfd.readouterr().err  # none of the 5,000 printed


def test_a_decompression_bomb_is_told_against_the_service_limit(models):
    with make_client(models, max_pixels=1_000_000) as client:
        body = post(client, data=png_declaring(20_000, 20_000)).json()
    assert body["error"] == "too_large"
    assert "400,000,000 pixels" in body["message"] and "1,000,000 pixels" in body["message"]
    assert "LEWEL_MAX_PIXELS" in body["message"] and "178" not in body["message"]


# --- figures (issue 24, item 1) -----------------------------------------------------------------------------


def test_figures_are_costed_by_format_and_dpi_before_drawing():
    def plan(fmt: str, dpi: int, views: int = 8):
        return plan_request(
            kind="maps", declared=(320, 240, 3), mask=None, views=views, size=224, d=128, num_aligned=4, maps=None,
            frame_cells=32, output=fmt, dpi=dpi, max_request_pixels=10**9, max_frame_values=10**9,
            max_response_bytes=10**12,
        )

    png = [plan("png", dpi) for dpi in (72, 150, 300, 600)]
    assert all(a.response_bytes <= b.response_bytes and a.memory < b.memory for a, b in zip(png, png[1:]))
    # the canvas grows with dpi squared; the file at most to what its pictures hold (enlarged pictures repeat)
    assert png[-1].response_bytes / png[0].response_bytes > 5 and png[-1].memory / png[0].memory > 3
    for fmt in ("pdf", "svg"):  # pictures embedded at their own pixels: the dpi does not matter
        assert plan(fmt, 72) == plan(fmt, 600)
    assert plan("svg", 600, views=0).response_bytes * 8 < plan("svg", 600).response_bytes


@pytest.mark.parametrize(
    ("fmt", "dpi", "what"), [("png", 600, "lower dpi"), ("svg", 600, "smaller size"), ("pdf", 300, "smaller size")]
)
def test_a_figure_over_the_response_cap_is_refused_before_drawing(models, fmt, dpi, what):
    with make_client(models, max_response_mb=8) as client:
        answer = post(client, data=png(320, 240), views=8, size=224, format=fmt, dpi=dpi)
    body = answer.json()
    assert answer.status_code == 422 and body["error"] == "too_costly", answer.text
    assert body["limit"] == "LEWEL_MAX_RESPONSE_MB" and "8.0 MiB" in body["message"] and what in body["message"]


def test_a_figure_within_the_cap_is_drawn_and_stays_under_its_estimate(models):
    with make_client(models, max_response_mb=16) as client:
        for fmt in ("png", "svg"):
            answer = post(client, data=png(320, 240), views=1, size=64, format=fmt, dpi=150)
            assert answer.status_code == 200, answer.text
            estimate = plan_request(
                kind="maps", declared=(320, 240, 3), mask=None, views=1, size=64, d=32, num_aligned=4, maps=None,
                frame_cells=32, output=fmt, dpi=150, max_request_pixels=10**9, max_frame_values=10**9,
                max_response_bytes=10**12,
            )
            assert len(answer.content) <= estimate.response_bytes
