"""People's clicks in a real browser (Playwright + Debian's Chromium), in several orders, on ``python -m app``
with the bundled demo models: gallery switches and thumbnails, scenes, uploads, every tab, Inspect, the map
selector, compare on and off, views / seed / size changes, figure downloads in every format, a shared URL.
Every step must leave the page without a traceback or a Streamlit exception block. Also: the service's
``/docs`` and ``/redoc`` render with no network (their assets are served by the service itself)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from servers import ROOT, running_service, stop
from test_app_browser import CHROMIUM, CHROMIUM_ARGS, SAMPLE, _require_browser, _start_app

TIMEOUT_MS = 60_000  #: per step: a rerun on the demo models takes seconds
SETTLE_S = 0.4  #: a rerun starts within this after a click; then the page is settled when Streamlit stops running


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser_flows")
    process, url = _start_app(folder)
    yield url
    stop(process)


def settle(page) -> None:
    """Wait until the page's rerun is over, then fail on any traceback or exception block."""
    time.sleep(SETTLE_S)
    page.wait_for_function(  # Streamlit shows its status widget ("Running…") only while a rerun runs
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')",
        timeout=TIMEOUT_MS,
    )
    time.sleep(0.2)
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, exceptions.first.inner_text()
    body = page.locator("body").inner_text()
    assert "Traceback" not in body and "could not be drawn" not in body, body[:2000]


def open_page(browser, url: str):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
    page.set_default_timeout(TIMEOUT_MS)
    expect.set_options(timeout=TIMEOUT_MS)
    page.goto(url)
    expect(page.get_by_role("heading", name="LEWEL explorer")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"Inspect \d+")).first).to_be_visible()
    settle(page)
    return page


def thumbnail(page, label: str) -> None:
    """Pick a gallery item by its thumbnail button."""
    expander = page.get_by_text("Browse the gallery")
    if not page.get_by_role("button", name=label, exact=True).is_visible():
        expander.click()
    page.get_by_role("button", name=label, exact=True).click()
    settle(page)


def slider_keys(page, label: str, key: str, times: int = 1) -> None:
    widget = page.locator('[data-testid="stSlider"]').filter(has_text=label).get_by_role("slider")
    for _ in range(times):
        widget.press(key)
    settle(page)


def choose(page, label: str, option: str) -> None:
    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    box.fill(option)  # the list is virtualised: filter it down to the option
    page.get_by_role("option", name=option, exact=True).click()
    settle(page)


def download(page, name: str, tmp_path: Path) -> Path:
    with page.expect_download() as waiting:
        page.get_by_role("button", name=name).click()
    path = tmp_path / waiting.value.suggested_filename
    waiting.value.save_as(path)
    return path


def test_gallery_tabs_inspect_and_downloads(browser, app_url, tmp_path):
    from playwright.sync_api import expect

    page = open_page(browser, app_url)
    expect(page.get_by_role("tab", name="Top object maps (by AUROC)", exact=True)).to_be_visible()
    for label in ("three objects", "coffee", "scene", "astronaut", "one object"):
        thumbnail(page, label)
    thumbnail(page, "scene")
    page.get_by_role("button", name="New scene").click()
    settle(page)
    page.get_by_role("button", name="Previous scene").click()
    settle(page)
    expect(page.get_by_text(re.compile(r"here \d\.\d\d")).first).to_be_visible()  # the scene's mask was sent
    tabs = ("Object pattern (measured)", "Multi-object pattern (measured)", "Global pattern (measured)")
    for tab in ("Background maps (by AUROC)", *tabs, "All", "Top object maps (by AUROC)"):
        page.get_by_role("tab", name=tab, exact=True).click()
        settle(page)
    inspect = page.get_by_role("button", name=re.compile(r"Inspect \d+"))
    index = int(re.search(r"\d+", inspect.nth(2).inner_text()).group())
    inspect.nth(2).click()
    settle(page)
    expect(page.get_by_text(f"map {index} on view 0, enlarged")).to_be_visible()
    assert page.locator('[data-testid="stMetricDelta"]').count() == 0  # no up-arrow on a measured number
    choose(page, "Selected map", "map 3")
    expect(page.get_by_text("map 3 on view 0, enlarged")).to_be_visible()
    assert "map=3" in page.url and "image=scene" in page.url  # the URL holds the state
    png = download(page, "Download this figure (PNG)", tmp_path)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    choose(page, "Figure format", "PDF")
    assert download(page, "Download this figure (PDF)", tmp_path).read_bytes()[:5] == b"%PDF-"
    choose(page, "Figure format", "SVG")
    assert b"<svg" in download(page, "Download this figure (SVG)", tmp_path).read_bytes()[:2000]
    assert download(page, "Download all maps (NPZ)", tmp_path).read_bytes()[:2] == b"PK"
    page.close()


def test_views_seed_size_compare_and_uploads_in_another_order(browser, app_url, tmp_path):
    from playwright.sync_api import expect

    page = open_page(browser, app_url)
    page.get_by_text("Compare with a second model").click()
    settle(page)
    expect(page.get_by_role("heading", name="Two models, the same views")).to_be_visible()
    slider_keys(page, "Augmented views", "ArrowRight", 2)
    page.get_by_role("button", name="New views").click()
    settle(page)
    thumbnail(page, "coffee")
    slider_keys(page, "Input size", "ArrowLeft", 2)
    page.get_by_role("tab", name="All", exact=True).click()
    settle(page)
    choose(page, "Model", "lewel_b_demo · lewel_b · resnet18 · d=128, h=4 · localises (0.83 vs best random 0.69)")
    expect(page.get_by_text("lewel_b_demo's object maps beat every random network", exact=False).first).to_be_visible()
    page.get_by_text("Compare with a second model").click()
    settle(page)
    page.get_by_text("Upload", exact=True).click()
    settle(page)
    page.locator("input[type=file]").set_input_files(str(SAMPLE))
    settle(page)
    expect(page.get_by_role("button", name=re.compile(r"Inspect \d+")).first).to_be_visible()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    page.locator("input[type=file]").set_input_files(str(broken))
    expect(page.get_by_text("The image was rejected (broken.png).")).to_be_visible()
    settle(page)
    page.get_by_text("Gallery", exact=True).click()
    settle(page)
    page.close()


def test_a_shared_url_opens_the_same_view(browser, app_url):
    from playwright.sync_api import expect

    page = open_page(browser, app_url + "/?image=skimage:coffee&model=lewel_m_demo&views=1&seed=4&map=9")
    expect(page.get_by_text("map 9 on view 0, enlarged")).to_be_visible()
    expect(page.get_by_text("view 1 · byol1").first).to_be_visible()
    assert page.get_by_text("view 2 · byol1").count() == 0
    page.close()


def test_api_docs_render_with_no_network(browser):
    from playwright.sync_api import expect

    with running_service(ROOT / "models", "lewel_m_demo") as url:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        outside: list[str] = []
        page.on("request", lambda request: outside.append(request.url) if not request.url.startswith((url, "blob:")) else None)
        page.goto(url + "/docs")
        expect(page.get_by_text("/v1/maps").first).to_be_visible()
        expect(page.get_by_text("/v1/models").first).to_be_visible()
        assert outside == [], outside  # Swagger UI: script, styles and favicon all from the service
        page.goto(url + "/redoc")
        expect(page.get_by_text("LEWEL inference service").first).to_be_visible()
        expect(page.get_by_role("menuitem", name="maps")).to_be_visible()
        # ReDoc's bundle still asks for its "API docs by Redocly" footer logo; it fails offline and the page
        # renders without it. Nothing else may leave the machine.
        assert [u for u in outside if not u.endswith("/logo-mini.svg")] == [], outside
        page.close()


def test_an_atlas_built_from_the_button_shows_its_thumbnails(browser, app_url):
    """No atlas yet: the Atlas section's button has the service build one over 16 scenes at 64 px; the
    progress bar follows it and the top images of the selected map appear, following the map selector."""
    from playwright.sync_api import expect

    page = open_page(browser, app_url)
    button = page.get_by_role("button", name="Build an atlas for lewel_m_demo")
    expect(button).to_be_visible()
    scenes = page.get_by_label("Scenes", exact=True)
    scenes.fill("16")
    scenes.press("Enter")
    settle(page)
    choose(page, "Atlas input size (px)", "64")
    button.click()
    expect(page.get_by_text(re.compile(r"^Building the atlas of lewel_m_demo over 16 scenes at 64 px"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Top 8 by peak ÷ uniform"))).to_be_visible(timeout=120_000)
    settle(page)
    captions = page.get_by_text(re.compile(r"^\d\. scene0000\d\d v0 · \d"))
    expect(captions.first).to_be_visible()
    assert captions.count() == 16  # 8 by each score
    assert page.get_by_text("atlas AUROC").count() == 1
    choose(page, "Selected map", "map 9")
    expect(page.get_by_text("Map 9", exact=True)).to_be_visible()  # the atlas follows the selected map
    assert page.get_by_role("button", name="Build an atlas for lewel_m_demo").count() == 0
    page.close()


# --- issue 25: state that tells the truth, limits, failures, compare, maps that look here ----------------------


def page_text(page) -> str:
    return page.locator("body").inner_text()


def test_upload_and_back_keeps_the_gallery_image_and_a_far_first_index_is_lowered(browser, app_url):
    from playwright.sync_api import expect

    page = open_page(browser, app_url + "/?image=skimage:coffee&size=128")
    expect(page.get_by_text("coffee.png").first).to_be_visible()
    page.get_by_text("Upload", exact=True).click()
    settle(page)
    page.get_by_text("Gallery", exact=True).click()
    settle(page)
    box = page.get_by_role("combobox", name="Gallery", exact=True)
    assert "coffee" in box.input_value() or "coffee" in page.locator('[data-testid="stSidebar"]').inner_text()
    expect(page.get_by_text("coffee.png").first).to_be_visible()
    page.get_by_role("tab", name="All", exact=True).click()  # the next, unrelated click keeps the image
    settle(page)
    expect(page.get_by_text("coffee.png").first).to_be_visible()
    assert "image=skimage%3Acoffee" in page.url or "image=skimage:coffee" in page.url
    first = page.get_by_label("First map index")
    first.fill("125")
    first.press("Enter")
    settle(page)
    expect(page.get_by_text(re.compile(r"125 is past the end: the last 6 maps start at 122"))).to_be_visible()
    assert first.input_value() == "122"
    page.close()


def test_views_and_size_over_the_limit_are_clamped_and_the_page_stays(browser, app_url):
    from playwright.sync_api import expect

    page = open_page(browser, app_url + "/?image=skimage:coffee&views=8&size=512")
    expect(page.get_by_text(re.compile(r"8 views at 512 px would be 2,359,296 input pixels"))).to_be_visible()
    assert "over the limit" not in page_text(page)
    expect(page.get_by_text("view 8 · byol1").first).to_be_visible()  # the page is drawn, at 320 px
    assert "size=320" in page.url
    page.close()


def test_a_refused_upload_type_replaces_the_previous_error(browser, app_url, tmp_path):
    from playwright.sync_api import expect

    page = open_page(browser, app_url)
    page.get_by_text("Upload", exact=True).click()
    settle(page)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    page.locator("input[type=file]").set_input_files(str(broken))
    expect(page.get_by_text("The image was rejected (broken.png).")).to_be_visible()
    settle(page)
    notes = tmp_path / "notes.txt"
    notes.write_text("some notes")
    page.locator("input[type=file]").set_input_files(str(notes))
    expect(page.get_by_text(re.compile(r"notes\.txt is not an image type"))).to_be_visible()
    settle(page)
    assert "broken.png" not in page.locator('[data-testid="stMain"]').inner_text()
    page.close()


def test_compare_shows_each_models_own_maps_unless_asked(browser, app_url):
    from playwright.sync_api import expect

    page = open_page(browser, app_url + "/?image=skimage:coffee&size=128&compare=lewel_b_demo")
    expect(page.get_by_role("heading", name="Two models, the same views")).to_be_visible()
    expect(page.get_by_text(re.compile(r"Each model's own maps")).first).to_be_visible()
    assert page_text(page).count("shown: its top object maps (by AUROC)") == 2
    page.get_by_text("Same map indices for both").click()
    settle(page)
    expect(page.get_by_text(re.compile(r"The same map indices \(")).first).to_be_visible()
    page.close()


def test_maps_that_look_here_from_the_url_and_from_a_click(browser, app_url):
    from playwright.sync_api import expect

    page = open_page(browser, app_url + "/?image=skimage:coffee&size=128&point=300,200")
    expect(page.get_by_text(re.compile(r"At x=300, y=200")).first).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"Inspect \d+")).last).to_be_visible()
    target = page.frame_locator('iframe[title*="streamlit_image_coordinates"]').locator("#image")
    expect(target).to_be_visible()
    box = target.bounding_box()
    target.click(position={"x": box["width"] * 0.25, "y": box["height"] * 0.75})
    settle(page)
    expect(page.get_by_text(re.compile(r"At x=1\d\d, y=[23]\d\d")).first).to_be_visible()
    point = re.search(r"point=(\d+)(?:%2C|,)(\d+)", page.url)
    assert point and 130 <= int(point.group(1)) <= 170 and 280 <= int(point.group(2)) <= 320, page.url
    page.close()


def start_service_on(port: int, models: Path) -> "subprocess.Popen":
    import os
    import subprocess
    import sys

    env = {**os.environ, "LEWEL_MODELS_DIR": str(models / "none"), "LEWEL_WARMUP_SIZE": "64"}
    return subprocess.Popen(
        [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def test_a_stopped_service_keeps_the_sidebar_and_retry_brings_the_page_back(browser, tmp_path):
    import os
    import subprocess
    import sys

    import httpx2
    from playwright.sync_api import expect
    from servers import free_port, wait_until_ready

    port, app_port = free_port(), free_port()
    service = start_service_on(port, tmp_path)
    with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        wait_until_ready(service, client, seconds=120)
    log = (tmp_path / "app.log").open("w")
    app = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(app_port), "--api-url", f"http://127.0.0.1:{port}"],
        cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while "LEWEL explorer: " not in (tmp_path / "app.log").read_text():
            assert time.monotonic() < deadline and app.poll() is None, (tmp_path / "app.log").read_text()
            time.sleep(0.3)
        page = open_page(browser, f"http://127.0.0.1:{app_port}/?image=skimage:coffee&size=128")
        stop(service)
        page.get_by_role("button", name="New views").click()
        settle(page)
        expect(page.get_by_text("The LEWEL service is not reachable").first).to_be_visible()
        expect(page.get_by_role("button", name="Retry")).to_be_visible()
        expect(page.get_by_role("button", name="New views")).to_be_visible()  # the sidebar stays
        service = start_service_on(port, tmp_path)
        with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            wait_until_ready(service, client, seconds=120)
        page.get_by_role("button", name="Retry").click()
        settle(page)
        expect(page.get_by_role("button", name=re.compile(r"Inspect \d+")).first).to_be_visible()
        assert "not reachable" not in page_text(page)
        page.close()
    finally:
        stop(app)
        stop(service)


def test_the_launcher_restarts_a_killed_service_and_the_page_comes_back(browser, tmp_path):
    import os
    import signal

    from playwright.sync_api import expect
    from test_app_browser import _start_app

    process, url = _start_app(tmp_path)
    try:
        page = open_page(browser, url + "/?image=skimage:coffee&size=128")
        pid = int(re.search(r"\(pid (\d+)\)", (tmp_path / "app.log").read_text()).group(1))
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 180
        while "the service is back" not in (tmp_path / "app.log").read_text():
            assert time.monotonic() < deadline and process.poll() is None, (tmp_path / "app.log").read_text()
            time.sleep(0.3)
        output = (tmp_path / "app.log").read_text()
        assert f"the LEWEL service (pid {pid}) stopped: killed by signal SIGKILL" in output
        assert "restarting the service (1 of 3)" in output
        page.get_by_role("button", name="New views").click()
        settle(page)
        expect(page.get_by_role("button", name=re.compile(r"Inspect \d+")).first).to_be_visible()
        page.close()
    finally:
        stop(process)


# --- issue 43: state kept across source switches, downloads without a model pass -----------------------------


def test_upload_gallery_upload_keeps_the_file_and_the_scene(browser, app_url):
    """Upload -> Gallery -> Upload finds the uploaded file again, and the gallery the scene it showed (it lost
    both: the uploader was empty and the gallery back at scene 0)."""
    from playwright.sync_api import expect

    page = open_page(browser, app_url + "/?image=scene&scene=5&size=128&views=1")
    number = page.get_by_label("Scene number")
    assert number.input_value() == "5"
    page.get_by_role("button", name="New scene").click()
    settle(page)
    drawn = re.search(r"New scene: scene (\d+), not shown before", page_text(page))
    assert drawn and drawn.group(1) != "5" and number.input_value() == drawn.group(1)
    page.get_by_text("Upload", exact=True).click()
    settle(page)
    page.locator("input[type=file]").set_input_files(str(SAMPLE))
    settle(page)
    expect(page.get_by_text("three_objects.png").first).to_be_visible()
    page.get_by_text("Gallery", exact=True).click()
    settle(page)
    assert page.get_by_label("Scene number").input_value() == drawn.group(1)
    assert f"scene={drawn.group(1)}" in page.url
    page.get_by_text("Upload", exact=True).click()
    settle(page)
    expect(page.get_by_text(re.compile(r"Showing your last upload, three_objects\.png"))).to_be_visible()
    expect(page.get_by_role("button", name=re.compile(r"Inspect \d+")).first).to_be_visible()
    expect(page.get_by_text("three_objects.png").first).to_be_visible()
    page.close()


def test_a_300_dpi_figure_download_from_the_pages_maps(browser, app_url, tmp_path):
    """The figure is drawn in the app from the maps the page holds (tests/test_app.py checks that no request is
    sent); in the browser the button gives the 300-dpi PNG asked for."""
    from PIL import Image

    page = open_page(browser, app_url + "/?image=skimage:coffee&size=128&views=1")
    page.locator('[data-testid="stSlider"]').filter(has_text="Figure dpi").get_by_role("slider").press("ArrowRight")
    settle(page)
    png = download(page, "Download this figure (PNG)", tmp_path)
    with Image.open(png) as drawn:
        assert drawn.format == "PNG" and round(drawn.info["dpi"][0]) == 300
    page.close()
