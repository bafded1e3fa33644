"""The app in a real browser: ``python -m app`` (the service on the bundled demo model, and the Streamlit
app) on localhost, driven through Playwright in Debian's Chromium (``/usr/bin/chromium``; Playwright never
downloads a browser here). It uploads an image, waits for the map grid, selects a map and saves a screenshot
under the test's temporary folder (and in ``LEWEL_SCREENSHOT_DIR`` when set). Assertions are on the page's
text, not on pixels.

Without Chromium the test is skipped, unless ``LEWEL_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a
failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import ROOT, free_port, stop

CHROMIUM = Path("/usr/bin/chromium")
SAMPLE = ROOT / "static" / "samples" / "three_objects.png"
#: flags for a closed network: no background connections, no first-run work (see the env tool's notes)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 180_000


def _require_browser() -> None:
    missing = not CHROMIUM.exists()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = True
    if missing:
        reason = f"needs Debian's Chromium at {CHROMIUM} and the playwright package (./scripts/test installs them as root)"
        if os.environ.get("LEWEL_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def _start_app(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    """``python -m app`` on free ports; returns the process and the address it printed."""
    port, api_port = free_port(), free_port()
    log = (tmp_path / "app.log").open("w")
    env = {**os.environ, "LEWEL_MODELS_DIR": str(tmp_path / "no-models"), "LEWEL_WARMUP_SIZE": "64"}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "--port", str(port), "--api-port", str(api_port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        output = (tmp_path / "app.log").read_text()
        found = re.search(r"LEWEL explorer: (http://\S+)", output)
        if found:
            return process, found.group(1)
        assert process.poll() is None, output
        time.sleep(0.3)
    process.kill()
    raise AssertionError(f"the app did not start: {(tmp_path / 'app.log').read_text()}")


def test_upload_see_the_grid_select_a_map(tmp_path):
    _require_browser()
    from playwright.sync_api import expect, sync_playwright

    photo, broken = SAMPLE, tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    process, url = _start_app(tmp_path)
    assert url.startswith("http://127.0.0.1:")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            expect.set_options(timeout=TIMEOUT_MS)
            page.goto(url)
            expect(page.get_by_role("heading", name="LEWEL explorer")).to_be_visible()
            expect(page.get_by_text("lewel_m_demo", exact=False).first).to_be_visible()

            page.get_by_text("Upload", exact=True).click()
            expect(page.get_by_text("Upload an image in the sidebar")).to_be_visible()
            page.locator("input[type=file]").set_input_files(str(photo))
            inspect = page.get_by_role("button", name=re.compile(r"Inspect \d+"))
            expect(inspect.first).to_be_visible()
            for row in ("view 0 · whole image", "view 1 · byol1", "view 2 · byol1"):
                expect(page.get_by_text(row, exact=False).first).to_be_visible()
            # the default demo model has a profile: its top object maps (by AUROC) come first, with their numbers
            expect(page.get_by_role("tab", name="Top object maps (by AUROC)", exact=True)).to_be_visible()
            expect(page.get_by_text("beat every random network", exact=False)).to_be_visible()
            # under each tile its measured Figure-5 pattern, held-out AUROC and the category it looks at most
            measured = r"map \d+ · (object|multi-object|global|background|mixed|undecided) \([^)]*%\) · AUROC 0\.\d\d held-out"
            expect(page.get_by_text(re.compile(measured)).first).to_be_visible()
            page.get_by_role("tab", name="Background maps (by AUROC)", exact=True).click()
            expect(page.get_by_text(re.compile(measured)).first).to_be_visible()
            # the profile measured Figure 5's patterns: those tabs, not the shape heuristic
            assert page.get_by_role("tab", name="Object (heuristic)", exact=True).count() == 0
            page.get_by_role("tab", name="Global pattern (measured)", exact=True).click()
            expect(page.get_by_text(re.compile(r"The model's \*?\*?\d+ maps with the global pattern|decided from instance masks"))).to_be_visible()
            page.get_by_role("tab", name="Multi-object pattern (measured)", exact=True).click()
            expect(page.get_by_text(re.compile(r"maps with the multi-object pattern.*decided from instance masks|No multi-object maps"))).to_be_visible()
            page.get_by_role("tab", name="Top object maps (by AUROC)", exact=True).click()
            expect(page.get_by_text(re.compile(r"The model's \d+ top object maps \(by AUROC\)"))).to_be_visible()

            label = inspect.last.inner_text()
            index = int(re.search(r"\d+", label).group())
            inspect.last.click()
            expect(page.get_by_text(f"map {index} on view 0, enlarged")).to_be_visible()
            expect(page.get_by_text("cross-view agreement").first).to_be_visible()
            expect(page.get_by_text(f"group {index // 32} · map {index}").first).to_be_visible()
            time.sleep(1)  # let the last images paint before the screenshots
            grid, selected = tmp_path / "app.png", tmp_path / "app_map.png"
            page.screenshot(path=str(grid))
            page.get_by_role("heading", name="One map").evaluate("heading => heading.scrollIntoView({block: 'start'})")
            time.sleep(0.5)
            page.screenshot(path=str(selected))
            assert grid.stat().st_size > 50_000 and selected.stat().st_size > 50_000
            if os.environ.get("LEWEL_SCREENSHOT_DIR"):
                for shot in (grid, selected):
                    shutil.copy(shot, Path(os.environ["LEWEL_SCREENSHOT_DIR"]) / shot.name)

            page.locator("input[type=file]").set_input_files(str(broken))
            expect(page.get_by_text("The image was rejected (broken.png).")).to_be_visible()
            expect(page.get_by_text("not a usable image", exact=False)).to_be_visible()
            browser.close()
    finally:
        stop(process)
    assert process.returncode == 0, (tmp_path / "app.log").read_text()
