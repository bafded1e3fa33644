"""*Measure this model* (``app.profile_build``) with Streamlit's ``AppTest`` against the real service on a tiny
model without a profile: the button, a build that ends in the measured tabs and banner, a failed build's
error; and when the page offers it at all (``measure_reason``)."""

from __future__ import annotations

import shutil
import time

import pytest
from api_factory import build_models
from servers import app_page, running_service
from streamlit.testing.v1 import AppTest

from app.client import ApiClient
from app.profile_build import SECTION, measure_reason
from lewel.data.gallery import SCENE_KEY, scenes_available
from lewel.maps.profiles import sidecar_path

pytestmark = pytest.mark.skipif(not scenes_available(), reason="the profile's scenes need tuxpaint-stamps-default")
#: a profile of the tiny model in a few seconds: one random control, six scenes per split
PROFILE_ENV = {"LEWEL_PROFILE_CONTROL_SEEDS": "1", "LEWEL_PROFILE_CONTROL_SCHEMES": "pytorch", "LEWEL_PROFILE_MAX_IMAGES": "6"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app_profile_build")
    tiny = build_models(folder / "all")["tiny"]
    shutil.copy(tiny, folder / "tiny.pt")  # the tiny model alone, without a profile
    with pytest.MonkeyPatch.context() as patch:
        for name, value in PROFILE_ENV.items():
            patch.setenv(name, value)
        with running_service(folder, "tiny") as url:
            yield url, folder / "tiny.pt"


def measure_buttons(at: AppTest) -> list:
    return [b for b in at.button if b.label == SECTION]


def run_until(at: AppTest, done, seconds: float = 90) -> None:
    """Rerun the page until ``done(at)`` (the progress bar polls in a browser; here the test reruns the page)."""
    deadline = time.monotonic() + seconds
    while not done(at):
        assert time.monotonic() < deadline, "the build did not finish"
        time.sleep(0.5)
        at.run()
        assert not at.exception


def test_measure_this_model_ends_in_the_measured_tabs_and_banner(service, monkeypatch):
    url, checkpoint = service
    at = app_page(url, monkeypatch, size=64, views=0, gallery_item=SCENE_KEY)
    at.run()
    assert not at.exception and not at.error
    assert any("tiny has no map profile" in i.value for i in at.info)
    assert "Top object maps (by AUROC)" not in [t.label for t in at.tabs] and measure_buttons(at)
    assert at.number_input(key="profile_images").value == 6  # the service's LEWEL_PROFILE_MAX_IMAGES caps it
    measure_buttons(at)[0].click().run()
    assert not at.exception
    run_until(at, lambda page: "Top object maps (by AUROC)" in [t.label for t in page.tabs])
    assert not at.error and not measure_buttons(at) and sidecar_path(checkpoint).is_file()
    banner = (at.success or at.warning)[0].value
    assert "no map profile" not in banner and "random network" in banner, banner
    assert any("The service measured this profile" in c.value for c in at.caption)

    at.session_state["size"] = 128  # measured at 64 px: at 128 the page offers to measure again
    at.run()
    assert not at.exception and any("measured at 64 px, the page shows 128 px" in i.value for i in at.info)
    assert measure_buttons(at)


def test_a_failed_build_shows_its_error_and_the_button_again(service, monkeypatch):
    url, _ = service
    real = ApiClient.profile_build

    def failed(self, model):  # the service's answer after a build that failed (tests/test_api_profile_builds.py)
        status = real(self, model)
        return {**status, "status": "failed", "profile": None, "error": "the profile build failed: OSError: disk on fire"}

    monkeypatch.setattr(ApiClient, "profile_build", failed)
    at = app_page(url, monkeypatch, size=96, views=0, gallery_item=SCENE_KEY)
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == ["**Measuring tiny failed.** the profile build failed: OSError: disk on fire"]
    assert measure_buttons(at)


@pytest.mark.parametrize(
    ("info", "size", "words"),
    [
        ({"id": "m", "status": "available", "has_maps": True, "profile": None}, 224, "m has no map profile"),
        ({"id": "m", "status": "available", "has_maps": True, "profile": None, "profile_error": "stale"}, 224, "stale"),
        ({"id": "m", "status": "loaded", "has_maps": True, "profile": {"size": 224}}, 128, "measured at 224 px"),
        ({"id": "m", "status": "loaded", "has_maps": True, "profile": {"size": 224}}, 224, None),
        ({"id": "m", "status": "available", "has_maps": False, "profile": None}, 224, None),
        ({"id": "m", "status": "error", "has_maps": None, "profile": None}, 224, None),
    ],
)
def test_the_button_is_offered_without_a_profile_at_the_pages_size(info, size, words):
    reason = measure_reason(info, size)
    assert reason is None if words is None else words in reason
