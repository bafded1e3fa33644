"""The page's state: URL parameters in and out, and stored values that are stale, out of range or of the
wrong type never reach the page as a traceback (AppTest against the real service on tiny models)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest
from servers import app_page
from test_app import inspect_buttons, service  # noqa: F401 - the service fixture

from app import state

GALLERY = ["static:one_object.png", "skimage:coffee", "scene"]
MODELS = ["tiny", "tiny_m"]


def parse(**params: str) -> dict:
    return state.from_query(params, gallery=GALLERY, models=MODELS, presets=["byol1", "mocov2"], sizes=[64, 224], max_views=8)


def test_query_values_are_validated():
    values = parse(image="skimage:coffee", model="tiny_m", views="3", seed="12", size="64", preset="mocov2", map="7")
    assert values == {
        "gallery_item": "skimage:coffee",
        "image_source": "Gallery",
        "model": "tiny_m",
        "views": 3,
        "seed": 12,
        "size": 64,
        "preset": "mocov2",
        "selected_map": 7,
    }
    assert parse(image="../../etc/passwd", model="nope", views="99", seed="-1", size="100", preset="x", map="a") == {}
    assert parse(model="tiny", compare="tiny")["model"] == "tiny" and "model_b" not in parse(model="tiny", compare="tiny")
    assert parse(compare="tiny_m") == {"model_b": "tiny_m", "compare": True}


def test_query_round_trip():
    session = {"image_source": "Gallery", "gallery_item": "scene", "scene_index": 4, "model": "tiny", "views": 2,
               "preset": "byol1", "seed": 3, "size": 224, "selected_map": 5, "compare": True, "model_b": "tiny_m"}
    query = state.to_query(session)
    assert query == {"image": "scene", "scene": "4", "model": "tiny", "views": "2", "preset": "byol1", "seed": "3",
                     "size": "224", "compare": "tiny_m", "map": "5"}
    back = parse(**query)
    assert all(session[key] == value for key, value in back.items() if key in session)
    assert "image" not in state.to_query({**session, "image_source": "Upload"})


def test_checked_index():
    assert state.checked_index(5, 32) == 5
    assert state.checked_index(40, 32, default=3) == 3
    assert state.checked_index("map 35 · object on view 0 · group 1", 128, default=0) == 0
    assert state.checked_index(None, 8, default=2) == 2


@pytest.fixture
def app(service, monkeypatch) -> AppTest:
    return app_page(service, monkeypatch)


def test_a_shared_url_opens_the_same_page(app):
    app.query_params.update({"image": "skimage:coffee", "model": "tiny_m", "views": "1", "seed": "5", "size": "64", "map": "9"})
    app.run()
    assert not app.exception and not app.error
    assert app.session_state["gallery_item"] == "skimage:coffee" and app.session_state["model"] == "tiny_m"
    assert app.session_state["views"] == 1 and app.session_state["seed"] == 5 and app.session_state["selected_map"] == 9
    assert app.selectbox(key="selected_map").value == 9


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("selected_map", "map 35 · object on view 0 · group 1 · aligned representation 3"),  # an old label
        ("selected_map", 500),  # a map index from a model with more maps
        ("aligned_rep", 99),
        ("pattern_tab", "Top object maps (by AUROC)"),  # a tab this model does not have
        ("first-All", 1000),
        ("scene_index", -4),
        ("model", "removed_model"),
    ],
)
def test_stale_state_never_becomes_a_traceback(app, key, value):
    app.session_state["size"] = 64
    app.session_state["gallery_item"] = "skimage:astronaut"
    app.session_state[key] = value
    if key == "first-All":
        app.session_state["pattern_tab"] = "All"
    app.run()
    assert not app.exception and not app.error
    assert inspect_buttons(app) or key == "pattern_tab"


def test_clicks_in_several_orders(app):
    app.session_state["size"] = 64
    app.run()
    assert not app.exception
    for step in (
        lambda: app.selectbox(key="gallery_item").set_value("skimage:coffee"),
        lambda: inspect_buttons(app)[-1].click(),
        lambda: app.selectbox(key="gallery_item").set_value("static:three_objects.png"),
        lambda: app.slider(key="views").set_value(4),
        lambda: app.toggle(key="compare").set_value(True),
        lambda: app.selectbox(key="model").set_value("tiny_m"),
        lambda: app.select_slider(key="size").set_value(96),
        lambda: app.toggle(key="compare").set_value(False),
        lambda: app.selectbox(key="selected_map").set_value(31),
        lambda: app.selectbox(key="gallery_item").set_value("skimage:astronaut"),
    ):
        step()
        app.run()
        assert not app.exception and not app.error, [e.value for e in (*app.exception, *app.error)]


def test_the_launcher_names_a_taken_port_and_the_variable_to_change():
    import socket
    import subprocess
    import sys

    from app.__main__ import port_problem, upload_limit_mb

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = port_problem("127.0.0.1", port, "API_PORT", "--api-port")
        assert message is not None and str(port) in message and "API_PORT=" in message and "--api-port" in message
        done = subprocess.run(
            [sys.executable, "-m", "app", "--api-port", str(port), "--port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 2 and f"port {port}" in done.stderr and "PORT=" in done.stderr
    assert "Traceback" not in done.stderr and "terminate called" not in done.stderr
    assert upload_limit_mb({"LEWEL_MAX_UPLOAD_MB": "20"}) == 20 and upload_limit_mb({"LEWEL_MAX_UPLOAD_MB": "0.5"}) == 1


def test_python_m_app_reads_port_and_api_port_and_flags_win():
    import pytest

    from app.__main__ import parse_args

    args = parse_args([], {"PORT": "9123", "API_PORT": "9124"})
    assert (args.port, args.api_port) == (9123, 9124)
    args = parse_args(["--port", "7000"], {"PORT": "9123", "API_PORT": "9124"})
    assert (args.port, args.api_port) == (7000, 9124)
    assert (parse_args([], {}).port, parse_args([], {}).api_port) == (8501, 8000)
    with pytest.raises(SystemExit):
        parse_args([], {"PORT": "eighty"})
