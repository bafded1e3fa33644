"""How fast the app answers a click: ``python -m app`` on the bundled demo models, driven in Debian's Chromium
through Playwright, timing from the click until the page has received the whole answer (the last websocket
message of the rerun and the last image it fetched, with nothing more arriving for ``QUIET_S``), for a tab
switch, a colormap change, an opacity change and a new gallery image; next to the service's own time for that
image's ``/v1/maps`` request (NPZ, the same settings), measured in the same run. The figure downloads (PNG at 300
dpi, PDF, SVG of the shown maps), from the click until the file is saved: the app draws them from the maps it
holds; next to them the service drawing the same PNG (``format=png&dpi=300&indices=…``, a model pass and the
drawing), which is what a download cost before. Also the launcher's time
from start to printing the address, and a fresh page's first render (from opening the address until the
first Inspect button shows: targets <= 3 s). Writes
``benchmarks/results/app_rerun_cpu.json``.

    .venv/bin/python benchmarks/app_rerun.py [--repeats 3] [--out benchmarks/results/app_rerun_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
IMAGES = ["coffee", "chelsea", "rocket", "astronaut", "colour wheel", "three objects"]  #: thumbnails, each new to the app


def start_app(folder: Path) -> tuple[subprocess.Popen, str, str]:
    """``python -m app`` on fixed ports; the process, the app's and the service's address (once printed)."""
    log = (folder / "app.log").open("w")
    env = {**os.environ, "LEWEL_MODELS_DIR": str(folder / "none")}
    process = subprocess.Popen([sys.executable, "-m", "app", "--port", "8765", "--api-port", "8766"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = re.search(r"LEWEL explorer: (http://\S+)\s+\(service: (http://\S+)/docs\)", (folder / "app.log").read_text())
        if found:
            return process, found.group(1), found.group(2)
        if process.poll() is not None:
            raise RuntimeError((folder / "app.log").read_text())
        time.sleep(0.3)
    raise RuntimeError("the app did not start")


QUIET_S = 0.5  #: a rerun is over when nothing (websocket message, image) has arrived for this long


def timed(page, events: list[float], action) -> float:
    """Seconds from ``action()`` until the last message or image of the rerun it started arrived."""
    started = time.perf_counter()
    action()
    deadline = started + 120
    while time.perf_counter() < deadline:
        page.wait_for_timeout(50)  # lets Playwright deliver the events
        last = events[-1] if events else 0.0
        if last > started and time.perf_counter() - last > QUIET_S:
            return last - started
    raise TimeoutError("the page did not settle within 120 s")


def service_seconds(api: str, image: bytes, repeats: int) -> float:
    """Median time of the app's /v1/maps request for ``image`` (NPZ, 2 views, 224 px) straight to the service."""
    form = {"views": "2", "preset": "byol1", "seed": "0", "size": "224", "format": "npz", "model": "lewel_m_demo"}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        httpx.post(f"{api}/v1/maps", files={"image": ("x.png", image)}, data=form, timeout=120).raise_for_status()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def downloaded(page, label: str, folder: Path) -> float:
    """Seconds from pressing a download button until its file is saved."""
    started = time.perf_counter()
    with page.expect_download(timeout=120_000) as waiting:
        page.get_by_role("button", name=label).click()
    waiting.value.save_as(folder / waiting.value.suggested_filename)
    return time.perf_counter() - started


def last_indices(found: list[list[int]]) -> list[int]:
    """The map indices the page's figure shows (its Inspect buttons of view 0, first row)."""
    return found[-1] if found else list(range(6))


def service_figure_seconds(api: str, image: bytes, indices: list[int]) -> float:
    """The service drawing the figure itself (what a download cost before: the model pass and the drawing)."""
    form = {"views": "2", "preset": "byol1", "seed": "0", "size": "224", "format": "png", "dpi": "300",
            "model": "lewel_m_demo", "indices": ",".join(map(str, indices))}
    started = time.perf_counter()
    httpx.post(f"{api}/v1/maps", files={"image": ("x.png", image)}, data=form, timeout=120).raise_for_status()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "app_rerun_cpu.json"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    from lewel.data.gallery import gallery_items, load_item

    folder = Path("/tmp/lewel_app_bench")
    folder.mkdir(exist_ok=True)
    page_indices: list[list[int]] = []
    launched = time.perf_counter()
    process, url, api = start_app(folder)
    address_seconds = time.perf_counter() - launched
    results: dict[str, list[float]] = {"tab_switch": [], "colormap": [], "opacity": [], "new_image": [],
                                       "download_png_300dpi": [], "download_pdf": [], "download_svg": []}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1100}, accept_downloads=True)
            events: list[float] = []
            page.on("websocket", lambda ws: ws.on("framereceived", lambda _: events.append(time.perf_counter())))
            page.on("requestfinished", lambda _: events.append(time.perf_counter()))
            opened = time.perf_counter()
            page.goto(url)
            page.get_by_role("button", name=re.compile(r"Inspect \d+")).first.wait_for(timeout=300_000)
            first_render = time.perf_counter() - opened
            page.get_by_text("Browse the gallery").click()
            tabs = ["Background maps (by AUROC)", "Top object maps (by AUROC)"]
            for repeat in range(args.repeats):
                results["tab_switch"].append(timed(page, events, lambda: page.get_by_role("tab", name=tabs[repeat % 2], exact=True).click()))
                box = page.get_by_role("combobox", name="Colormap", exact=True)
                colormap = ["viridis", "magma", "jet"][repeat % 3]

                def pick() -> None:
                    box.click()
                    box.fill(colormap)
                    page.get_by_role("option", name=colormap, exact=True).click()

                results["colormap"].append(timed(page, events, pick))
                slider = page.locator('[data-testid="stSlider"]').filter(has_text="Overlay opacity").get_by_role("slider")
                results["opacity"].append(timed(page, events, lambda: slider.press("ArrowRight")))
            for name in IMAGES[: args.repeats]:
                results["new_image"].append(timed(page, events, lambda: page.get_by_role("button", name=name, exact=True).click()))
            dpi = page.locator('[data-testid="stSlider"]').filter(has_text="Figure dpi").get_by_role("slider")
            timed(page, events, lambda: dpi.press("ArrowRight"))  # 200 -> 300 dpi
            for label, key in (("PNG", "download_png_300dpi"), ("PDF", "download_pdf"), ("SVG", "download_svg")):
                if label != "PNG":
                    box = page.get_by_role("combobox", name="Figure format", exact=True)
                    timed(page, events, lambda: (box.click(), box.fill(label), page.get_by_role("option", name=label, exact=True).click()))
                for _ in range(args.repeats):
                    results[key].append(downloaded(page, f"Download this figure ({label})", folder))
            buttons = page.get_by_role("button", name=re.compile(r"^Inspect \d+$"))
            page_indices.append([int(b.split()[-1]) for b in buttons.all_inner_texts()[:6]])
            browser.close()
        keys = {item.short: item.key for item in gallery_items()}
        service = [service_seconds(api, load_item(keys[name])[0], 1) for name in IMAGES[: args.repeats]]
        shown = last_indices(page_indices)
        served_figure = [service_figure_seconds(api, load_item(keys[IMAGES[args.repeats - 1]])[0], shown) for _ in range(args.repeats)]
    finally:
        process.terminate()
        process.wait(timeout=30)
    medians = {name: statistics.median(values) for name, values in results.items()}
    report = {
        "benchmark": "app_rerun",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, CPU only",
        "model": "lewel_m_demo (ResNet-18, d 128), 224 px, 3 views (view 0 + 2), 6 maps per row",
        "repeats": args.repeats,
        "seconds": results,
        "median_seconds": medians,
        "launcher_address_seconds": address_seconds,
        "first_render_seconds": first_render,
        "service_maps_seconds_median": statistics.median(service),
        "new_image_minus_service_seconds": medians["new_image"] - statistics.median(service),
        "service_figure_png_300dpi_seconds_median": statistics.median(served_figure),
        "figure_maps": shown,
        "targets": {
            "tab_switch, colormap, opacity": "<= 1 s",
            "new_image": "<= service + 1 s",
            "first_render": "<= 3 s after the address is printed",
            "downloads": "the drawing only: below the service's own figure (model pass and drawing)",
        },
        "met": {
            "widget_changes": max(medians["tab_switch"], medians["colormap"], medians["opacity"]) <= 1.0,
            "new_image": medians["new_image"] - statistics.median(service) <= 1.0,
            "first_render": first_render <= 3.0,
        },
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["median_seconds"]), "service", report["service_maps_seconds_median"],
          "address", round(address_seconds, 2), "first render", round(first_render, 2), "met", report["met"])


if __name__ == "__main__":
    main()
