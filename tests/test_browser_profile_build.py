"""*Measure this model* in a real browser (Playwright + Debian's Chromium, as tests/test_app_browser.py): ``python -m
app`` serving a tiny model without a profile beside the demo models; a click on the button has the service measure
it (one random control, six scenes per split), the progress bar follows, and the measured tabs and banner appear."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from api_factory import build_models
from servers import ROOT, free_port, stop
from test_app_browser import CHROMIUM, CHROMIUM_ARGS, _require_browser

from lewel.data.gallery import scenes_available
from lewel.maps.profiles import sidecar_path

pytestmark = pytest.mark.skipif(not scenes_available(), reason="the profile's scenes need tuxpaint-stamps-default")
TIMEOUT_MS = 120_000
#: a MutationObserver that sets ``window.seenProgress`` once the page shows the build's progress line
SEEN_PROGRESS = """() => {
    window.seenProgress = false;
    const check = () => {
        if (/Measuring tiny on 6 scenes per split at 64 px/.test(document.body.innerText)) window.seenProgress = true;
    };
    new MutationObserver(check).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""
PROFILE_ENV = {"LEWEL_PROFILE_CONTROL_SEEDS": "1", "LEWEL_PROFILE_CONTROL_SCHEMES": "pytorch", "LEWEL_PROFILE_MAX_IMAGES": "6"}


def start_app(folder: Path, models: Path) -> tuple[subprocess.Popen, str]:
    """``python -m app --models-dir MODELS`` on free ports with ``PROFILE_ENV``; the process and its address."""
    log_path = folder / "app.log"
    # its own, empty control cache: with the session's, an earlier test's control of the same shape makes the build
    # end before the page's first rerun after the click, and no progress bar is ever drawn
    env = {**os.environ, **PROFILE_ENV, "LEWEL_WARMUP_SIZE": "64", "LEWEL_CACHE_DIR": str(folder / "control-cache")}
    command = [sys.executable, "-m", "app", "--port", str(free_port()), "--api-port", str(free_port()), "--models-dir", str(models)]
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        found = re.search(r"LEWEL explorer: (http://\S+)", log_path.read_text())
        if found:
            return process, found.group(1)
        assert process.poll() is None, log_path.read_text()
        time.sleep(0.3)
    process.kill()
    raise AssertionError(f"the app did not start: {log_path.read_text()}")


def test_measure_this_model_from_the_page_shows_the_measured_tabs(tmp_path):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(build_models(tmp_path / "built")["tiny"], models / "tiny.pt")
    process, url = start_app(tmp_path, models)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto(f"{url}/?model=tiny&size=64&views=0&image=scene")
            expect(page.get_by_text("tiny has no map profile", exact=False).first).to_be_visible()
            assert page.get_by_role("tab", name="Top object maps (by AUROC)", exact=True).count() == 0
            page.evaluate(SEEN_PROGRESS)  # records a progress line however briefly it is drawn
            page.get_by_role("button", name="Measure this model").click()
            expect(page.get_by_role("tab", name="Top object maps (by AUROC)", exact=True)).to_be_visible()
            assert page.evaluate("window.seenProgress"), "no progress line was drawn while the build ran"
            expect(page.get_by_text("The service measured this profile", exact=False)).to_be_visible()
            assert page.get_by_role("button", name="Measure this model").count() == 0
            assert "tiny has no map profile" not in page.locator("body").inner_text()
            browser.close()
    finally:
        stop(process)
    assert sidecar_path(models / "tiny.pt").is_file()
