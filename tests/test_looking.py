"""Which maps look at a point: ``lewel.maps.looking`` on made-up maps, and ``POST /v1/point`` on a tiny model
(the same answer as computing it from ``/v1/maps``' NPZ, documented in the OpenAPI document)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from api_factory import build_models, image_bytes, wait_ready
from fastapi.testclient import TestClient
from test_api import assert_error, settings_for

from api.main import create_app
from lewel.maps.looking import maps_looking_at, point_cells


def test_point_cells_follow_the_crop_and_the_flip():
    boxes = [(0, 0, 100, 50), (50, 0, 100, 50), (50, 0, 100, 50)]
    cells = point_cells((60, 10), boxes, [False, False, True], (2, 4))
    assert cells.cells == [(0, 2), (0, 0), (0, 3)] and cells.views == [0, 1, 2]
    outside = point_cells((10, 10), boxes, [False, False, True], (2, 4))
    assert outside.cells[1:] == [None, None] and outside.views == [0]
    assert point_cells((99, 49), boxes[:1], [False], (2, 4)).cells == [(1, 3)]


def test_ranking_by_value_relative_to_uniform_over_the_containing_views():
    maps = torch.full((2, 3, 2, 2), 0.25)
    maps[0, 1] = torch.tensor([[0.7, 0.1], [0.1, 0.1]])  # map 1 peaks at the top-left cell on view 0
    maps[1, 1] = torch.tensor([[0.1, 0.1], [0.1, 0.7]])
    maps[0, 2] = torch.tensor([[0.1, 0.3], [0.3, 0.3]])  # map 2 is low there
    boxes, flips = [(0, 0, 10, 10), (0, 0, 10, 10)], [False, True]
    ranked, cells = maps_looking_at(maps, (1, 1), boxes, flips)
    assert cells.cells == [(0, 0), (0, 1)]
    assert [m.index for m in ranked] == [1, 0, 2]  # view 1 is flipped: map 1 reads 0.1 there, still 1.6 on average
    one = ranked[0]
    assert one.per_view == pytest.approx([2.8, 0.4]) and one.relative == pytest.approx(1.6) and one.views_above == 0.5
    assert ranked[1].relative == pytest.approx(1.0) and ranked[1].views_above == 0.0
    top, _ = maps_looking_at(maps, (1, 1), boxes, [False, False], top=1)
    assert [m.index for m in top] == [1] and top[0].views_above == 0.5
    none, cells = maps_looking_at(maps, (20, 20), boxes, flips)
    assert none == [] and cells.views == []


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    paths = build_models(tmp_path_factory.mktemp("point_models"))
    with TestClient(create_app(settings_for(paths["tiny"].parent, default_model="tiny"))) as test_client:
        wait_ready(test_client)
        yield test_client


FORM = {"model": "tiny", "views": "2", "seed": "4", "size": "64"}


def test_the_service_ranks_the_maps_as_the_library_does_on_its_maps(client):
    image = image_bytes(size=(80, 60))
    answer = client.post("/v1/point", files={"image": ("a.png", image)}, data={**FORM, "x": "30", "y": "20", "top": "5"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["point"] == [30, 20] and 0 in body["views"] and len(body["cells"]) == 3 and len(body["maps"]) == 5
    relative = [m["relative"] for m in body["maps"]]
    assert relative == sorted(relative, reverse=True) and body["profile"] is None and body["maps"][0]["role"] is None
    npz = client.post("/v1/maps", files={"image": ("a.png", image)}, data={**FORM, "format": "npz"})
    with np.load(io.BytesIO(npz.content)) as arrays:
        maps, boxes, flips = torch.from_numpy(arrays["maps"].astype(np.float32)), arrays["boxes"], arrays["flips"]
    expected, _ = maps_looking_at(maps, (30, 20), [tuple(b) for b in boxes.tolist()], flips.tolist(), top=5)
    assert [m["index"] for m in body["maps"]] == [m.index for m in expected]  # scripts get the page's answer
    assert relative == pytest.approx([m.relative for m in expected], rel=2e-2)


def test_a_point_outside_the_image_is_refused_and_the_route_is_documented(client):
    image = image_bytes(size=(80, 60))
    refused = client.post("/v1/point", files={"image": ("a.png", image)}, data={**FORM, "x": "80", "y": "10"})
    assert_error(refused, 422, "invalid_parameters", "outside the image", "80×60")
    unknown = client.post("/v1/point", files={"image": ("a.png", image)}, data={**FORM, "x": "1", "y": "1", "z": "2"})
    assert_error(unknown, 422, "invalid_parameters", "'z'")
    spec = client.get("/openapi.json").json()
    assert "/v1/point" in spec["paths"] and "PointResponse" in spec["components"]["schemas"]
