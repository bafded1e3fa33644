"""The app's Atlas section with Streamlit's ``AppTest`` against the real service on the demo models: an
atlas made with the library (``lewel.drawing.atlas_folder.make_atlas``) and served from ``LEWEL_ATLAS_DIR`` shows its top
images next to the index's profile record and follows the selected map; a model without one offers the
build button, and the build it starts ends in thumbnails."""

from __future__ import annotations

import time

import pytest
from servers import ROOT, app_page, running_service
from streamlit.testing.v1 import AppTest

from lewel.data.scenes import STAMPS_DIR
from lewel.drawing.atlas_folder import make_atlas

pytestmark = pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="generated scenes need tuxpaint-stamps-default")
MODELS = ROOT / "models"
TOP = 3


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> str:
    atlases = tmp_path_factory.mktemp("app_atlases")
    make_atlas(MODELS / "lewel_m_demo.safetensors", "scenes:6", atlases / "lewel_m_demo", size=64, top=TOP, thumb_size=48)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LEWEL_ATLAS_DIR", str(atlases))
        with running_service(MODELS, "lewel_m_demo") as url:
            yield url


@pytest.fixture
def app(service, monkeypatch) -> AppTest:
    return app_page(service, monkeypatch, size=64, views=0, gallery_item="skimage:astronaut")


def thumbnails(at: AppTest) -> list[str]:
    """The captions of the Atlas section's thumbnails (``rank. id vV · score``)."""
    captions = [image.caption for element in at.get("image") for image in element.proto.imgs]
    return [c for c in captions if c[:1].isdigit() and " · " in c and " v" in c]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_an_existing_atlas_shows_its_top_images_and_the_profile_record(app):
    app.run()
    assert not app.exception and not app.error
    assert "Atlas" in [s.value for s in app.subheader]
    selected = app.session_state["selected_map"]
    assert app.selectbox(key="atlas_map").value == selected  # the atlas opens on the selected map
    shown = thumbnails(app)
    assert len(shown) == 2 * TOP and all("scene0000" in c for c in shown)
    page = "\n".join(m.value for m in app.markdown) + "\n".join(c.value for c in app.caption)
    assert f"Top {TOP} by peak ÷ uniform" in page and "lewel_m_demo.safetensors" in page and "scenes:6" in page
    values = metrics(app)
    assert values["profile role"] in ("object", "background", "mixed")
    assert 0 <= float(values["profile pointing (held-out)"]) <= 1
    assert 0 <= float(values["atlas AUROC"]) <= 1 and 0 <= float(values["atlas pointing"]) <= 1
    app.selectbox(key="selected_map").set_value(5).run()  # choosing a map in One map moves the atlas with it
    assert not app.exception and app.selectbox(key="atlas_map").value == 5
    app.selectbox(key="atlas_map").set_value(7).run()  # and the atlas selector can go its own way
    assert not app.exception and app.selectbox(key="atlas_map").value == 7
    assert app.selectbox(key="selected_map").value == 5 and len(thumbnails(app)) == 2 * TOP


def test_without_an_atlas_the_button_builds_one(app):
    app.session_state["model"] = "lewel_b_demo"
    app.run()
    assert not app.exception and not app.error
    build = [b for b in app.button if b.label == "Build an atlas for lewel_b_demo"]
    assert build and not thumbnails(app)
    assert any("has no atlas yet" in i.value for i in app.info)
    app.number_input(key="atlas_scenes").set_value(3)
    app.selectbox(key="atlas_size").set_value(64)
    build[0].click().run()
    assert not app.exception and not app.error
    deadline = time.monotonic() + 90
    while not thumbnails(app):  # the progress bar polls in the browser; here the test reruns the page
        assert time.monotonic() < deadline, "the build did not finish"
        time.sleep(0.5)
        app.run()
        assert not app.exception and not app.error
    assert all("scene00000" in c for c in thumbnails(app))
    assert "atlas AUROC" in metrics(app)
