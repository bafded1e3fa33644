"""The page's state tells the truth (issue 25): the gallery choice survives an Upload detour, a new profile
sidecar shows at once, an out-of-range first index is lowered and said, only the view × size combinations
the service accepts are offered, a stopped service keeps the controls and gives a Retry, a refused upload
type is explained in the main area, Compare shows each model's own maps, and the launcher names the
process that stopped and restarts the service."""

from __future__ import annotations

import subprocess
import sys

import pytest
from api_factory import build_models
from servers import app_page, free_port, running_service
from streamlit.testing.v1 import AppTest
from test_app import MAIN, inspect_buttons, texts

from app.__main__ import exit_reason, supervise
from lewel.data.gallery import scenes_available
from app.answers import model_key
from app.image_source import upload_problem
from app.sidebar import allowed_sizes, allowed_views


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app_research")
    paths = build_models(folder)
    with running_service(folder, "tiny") as url:
        yield url, paths


@pytest.fixture
def app(served, monkeypatch) -> AppTest:
    return app_page(served[0], monkeypatch, size=64, gallery_item="skimage:coffee")


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_upload_then_gallery_comes_back_to_the_same_image(app):
    app.run()
    clean(app)
    assert "**coffee.png**" in texts(app)
    app.radio(key="image_source").set_value("Upload").run()
    clean(app)
    app.radio(key="image_source").set_value("Gallery").run()
    clean(app)
    assert app.selectbox(key="gallery_item").value == "skimage:coffee"
    assert "**coffee.png**" in texts(app)
    app.run()  # an unrelated rerun keeps the image
    clean(app)
    assert app.selectbox(key="gallery_item").value == "skimage:coffee" and "**coffee.png**" in texts(app)


def test_a_first_index_past_the_end_is_lowered_and_said(app):
    app.session_state["pattern_tab"] = "All"
    app.run()
    clean(app)
    app.number_input(key="first-All").set_value(125).run()
    clean(app)
    assert app.number_input(key="first-All").value == 26  # d 32, 6 per row
    assert "125 is past the end" in texts(app)
    assert [int(b.label.split()[-1]) for b in inspect_buttons(app)] == list(range(26, 32))


def test_views_and_size_only_as_the_service_accepts(app):
    app.session_state["views"] = 8
    app.session_state["size"] = 512
    app.run()
    clean(app)
    assert not app.error
    size = app.select_slider(key="size").value
    assert 9 * size * size <= 1_048_576 and size == 320
    assert any("over the service's limit of 1,048,576" in w.value for w in app.sidebar.warning)
    assert max(app.select_slider(key="size").options, key=int) == "320"
    assert inspect_buttons(app)  # the page is drawn, not blanked by a refusal
    app.slider(key="views").set_value(1).run()
    clean(app)
    assert "512" in app.select_slider(key="size").options


def test_the_limits_arithmetic():
    limits = {"max_views": 8, "max_input_size": 512, "max_request_pixels": 1_048_576, "max_frame_values": 8_388_608}
    assert allowed_sizes(limits, 3)[-1] == 512 and allowed_sizes(limits, 8)[-1] == 320
    assert allowed_views(limits, 128) == 8 and allowed_views({**limits, "max_frame_values": 4 * 128 * 1024}, 128) == 3
    assert allowed_sizes({"max_input_size": 96}, 8) == [64, 96]


def test_a_refused_upload_type_replaces_the_previous_error(app):
    app.session_state["image_source"] = "Upload"
    app.run()
    app.get("file_uploader")[0].upload("broken.png", b"not an image", "image/png").run()
    clean(app)
    assert "The image was rejected" in app.error[0].value
    app.get("file_uploader")[0].upload("notes.txt", b"some notes", "text/plain").run()
    clean(app)
    assert len(app.error) == 1 and "notes.txt is not an image type" in app.error[0].value
    assert upload_problem("a.PNG", 10, 100) is None and "MB" in upload_problem("a.png", 300, 100)


def test_a_stopped_service_keeps_the_controls_and_offers_retry(app, served, monkeypatch):
    app.run()
    clean(app)
    monkeypatch.setenv("LEWEL_API_URL", f"http://127.0.0.1:{free_port()}")  # the service goes away
    app.session_state["seed"] = 5  # a new request (the last answer is cached)
    app.run()
    clean(app)
    assert any("not reachable" in e.value for e in app.error)
    assert app.selectbox(key="model").value == "tiny" and app.slider(key="views") is not None  # the sidebar stays
    retry = [b for b in app.button if b.label == "Retry"]
    assert retry
    monkeypatch.setenv("LEWEL_API_URL", served[0])  # the service is back: Retry draws the page
    retry[0].click().run()
    clean(app)
    assert not app.error and inspect_buttons(app)


def test_a_service_never_reached_shows_retry_in_the_sidebar(monkeypatch):
    monkeypatch.setenv("LEWEL_API_URL", f"http://127.0.0.1:{free_port()}")
    at = AppTest.from_file(str(MAIN), default_timeout=60)
    at.run()
    clean(at)
    assert "not reachable" in at.error[0].value
    assert any(b.label == "Retry" for b in at.sidebar.button)


@pytest.mark.skipif(not scenes_available(), reason="the profile's scenes need tuxpaint-stamps-default")
def test_a_new_profile_sidecar_shows_at_once(served, monkeypatch, tmp_path):
    from lewel.maps.profiles import build_profile, sidecar_path, write_profile

    url, paths = served
    monkeypatch.setenv("LEWEL_API_URL", url)
    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.session_state["size"] = 64
    at.session_state["gallery_item"] = "skimage:coffee"
    at.session_state["model"] = "tiny_m"
    at.run()
    clean(at)
    assert "has no map profile" in at.warning[0].value
    sidecar = sidecar_path(paths["tiny_m"])
    profile = build_profile(paths["tiny_m"], data="scenes:6", size=128, batch_size=6, control_seeds=1)
    try:
        write_profile(profile, sidecar)
        at.run()
        clean(at)
        assert not any("has no map profile" in w.value for w in at.warning)
        assert [t.label for t in at.tabs][:2] == ["Top object maps (by AUROC)", "Background maps (by AUROC)"]
    finally:
        sidecar.unlink(missing_ok=True)


def test_model_key_follows_the_profile_not_the_load_status():
    entry = {"id": "m", "file": "m.pth", "status": "available", "d": 32, "profile": None}
    assert model_key(entry) == model_key({**entry, "status": "loaded"})
    assert model_key(entry) != model_key({**entry, "profile": {"verdict": "localises"}})


def test_the_launcher_names_the_stopped_service_and_restarts_it(capsys):
    app = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dying = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dying.wait()
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
        started.append(process)
        return process

    def ready(process: subprocess.Popen) -> None:
        if len(started) == 2:
            app.terminate()  # the person stops the app after the second restart

    try:
        status = supervise(app, dying, start, ready, restarts=2, app_url="http://x", poll_s=0.05)
    finally:
        for process in (app, *started):
            if process.poll() is None:
                process.kill()
    err = capsys.readouterr().err
    assert "the LEWEL service" in err and "stopped: exit status 3" in err
    assert "restarting the service (1 of 2)" in err
    assert "the Streamlit app" in err and "killed by signal SIGTERM" in err and status == -15
    assert exit_reason(app) == "killed by signal SIGTERM"


def test_the_launcher_keeps_the_app_up_after_the_last_restart(capsys):
    app = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    service = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    service.wait()
    status = supervise(app, service, lambda: service, lambda p: None, restarts=0, app_url="http://here", poll_s=0.05)
    err = capsys.readouterr().err
    assert "not restarting it again" in err and "The app stays up at http://here" in err and status == 0


def test_a_point_from_the_url_lists_the_maps_that_look_there(app, served):
    app.query_params.update({"image": "skimage:coffee", "size": "64", "views": "2", "point": "200,150"})
    app.run()
    clean(app)
    assert not app.error
    assert "Maps that look here" in [s.value for s in app.subheader]
    page = texts(app)
    assert "At **x=200, y=150**" in page and "POST /v1/point" in page
    table = app.dataframe[-1].value
    assert list(table.columns)[:3] == ["map", "× uniform here", "views above uniform"] and len(table) == 8
    from app.client import ApiClient, ViewParams
    from lewel.data.gallery import load_item

    data, name = load_item("skimage:coffee")
    direct = ApiClient(served[0]).point(data, name, "tiny", ViewParams(views=2, seed=0, size=64), (200, 150))
    assert table["map"].tolist() == [m["index"] for m in direct["maps"]]  # the page shows the service's ranking
    here = [b for b in app.button if b.key and b.key.startswith("inspect-here-")]
    chosen = int(here[1].label.split()[-1])
    here[1].click().run()
    clean(app)
    assert app.session_state["selected_map"] == chosen
    next(b for b in app.button if b.label == "Clear the point").click().run()
    clean(app)
    assert "point" not in app.session_state and "Click a point of the input image" in texts(app)


def test_a_point_outside_the_image_is_said_and_dropped(app):
    app.query_params.update({"image": "skimage:coffee", "size": "64", "point": "5000,10"})
    app.run()
    clean(app)
    assert any("lies outside this image (600×400 px)" in w.value for w in app.warning)
    assert "point" not in app.session_state


def test_point_in_the_url_round_trips():
    from app.state import from_query, parse_point, to_query

    assert parse_point("12,7") == (12, 7) and parse_point("-1,2") is None and parse_point("1;2") is None
    values = from_query({"point": "12,7"}, gallery=[], models=[], presets=[], sizes=[], max_views=8)
    assert values["point"] == (12, 7) and to_query({"point": (12, 7)})["point"] == "12,7"
