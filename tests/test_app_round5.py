"""Issue 43 with Streamlit's ``AppTest`` against the service on tiny models: a New scene that is new, an aligned
representation past its range lowered and said, and a service that stops: the page fails at once with a Retry."""

from __future__ import annotations

import time

import httpx2
import pytest
from api_factory import build_models
from servers import app_page, running_service, start_service, stop, wait_until_ready

from app.gallery import SCENE_KEY
from lewel.data.gallery import scenes_available


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("round5_models")
    build_models(folder)
    return folder


@pytest.fixture(scope="module")
def service(models) -> str:
    with running_service(models, "tiny") as url:
        yield url


@pytest.mark.skipif(not scenes_available(), reason="generated scenes need tuxpaint-stamps-default")
def test_new_scene_draws_a_scene_not_shown_yet_and_says_its_number(service, monkeypatch):
    at = app_page(service, monkeypatch, size=64, views=0, gallery_item=SCENE_KEY)
    at.run()
    seen = {int(at.session_state["scene_index"])}
    for _ in range(3):
        at.button(key="new_scene").click().run()
        assert not at.exception
        scene = int(at.session_state["scene_index"])
        assert scene not in seen, (scene, seen)  # it went 0 -> 1, then (after Previous) 0 -> 1 again
        assert any(f"New scene: **scene {scene}**, not shown before" in c.value for c in at.sidebar.caption)
        seen.add(scene)
        at.button(key="previous_scene").click().run()
        seen.add(int(at.session_state["scene_index"]))


def test_an_aligned_representation_past_its_range_is_lowered_and_said(service, monkeypatch):
    at = app_page(service, monkeypatch, size=64, views=0, gallery_item="skimage:coffee")
    at.run()
    at.number_input(key="aligned_rep").set_value(99).run()  # tiny: d 32, h 4 -> 8 aligned representations
    assert not at.exception and not at.error
    assert at.number_input(key="aligned_rep").value == 7
    assert any("99 is past the end: this model has 8 aligned representations (0–7), so it shows 7." in c.value for c in at.caption)


def test_a_stopped_service_fails_at_once_with_a_retry_and_the_sidebar_stays(models, monkeypatch):
    server, url = start_service(models, "tiny")
    try:
        with httpx2.Client(base_url=url, timeout=30) as client:
            wait_until_ready(server, client, seconds=90)
        at = app_page(url, monkeypatch, size=64, views=0, gallery_item="skimage:coffee")
        at.run()
        assert not at.exception and not at.error
    finally:
        stop(server)
    started = time.monotonic()
    at.run()  # the same page, the service gone: its maps are cached, every other request would fail
    assert time.monotonic() - started < 20
    assert not at.exception
    assert any("The LEWEL service is not reachable" in e.value for e in at.error)
    assert [b for b in at.button if b.label == "Retry"], "no Retry"  # the README promises one
    assert [b for b in at.sidebar.button if b.label == "New views"]  # the sidebar from the last answer
    assert not [b for b in at.button if b.label.startswith("Inspect ")]  # nothing else was asked
