"""The Streamlit app (``app/``) with Streamlit's ``AppTest``, against the real service in its own process
on tiny models (ResNet-18, d 32, h 4), and its pure parts (client, gallery, figures) on their own."""

from __future__ import annotations

import io
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from api_factory import build_models, image_bytes
from PIL import Image
from servers import APP_MAIN as MAIN
from servers import app_page, free_port, running_service
from streamlit.testing.v1 import AppTest

from app import figures
from app.client import ApiClient, EmbeddingsResult, ServiceError, ViewParams
from app import gallery
from app.gallery import SCENE_KEY
from lewel.data.gallery import load_item, scenes_available
from lewel.maps import PATTERNS

SMALL = ViewParams(views=2, preset="byol1", seed=3, size=64)


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("app_models")
    build_models(folder)
    with running_service(folder, "tiny") as url:
        yield url


@pytest.fixture
def app(service, monkeypatch) -> AppTest:
    """The page pointed at the service, on the gallery's astronaut at 64 px."""
    return app_page(service, monkeypatch, size=64, gallery_item="skimage:astronaut")


def texts(at: AppTest) -> str:
    """Every caption, markdown, metric and alert of the page as one string."""
    parts = [e.value for e in (*at.caption, *at.markdown, *at.error, *at.info)]
    parts += [f"{m.label}: {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def inspect_buttons(at: AppTest) -> list:
    return [b for b in at.button if b.label.startswith("Inspect ")]


def test_main_flow_draws_figure5_rows_and_selects_a_map(app):
    app.run()
    assert not app.exception and not app.error
    assert [t.label for t in app.tabs] == ["Object (heuristic)", "Multi-object (heuristic)", "Global (heuristic)", "All"]
    assert "has no map profile" in app.warning[0].value  # tiny has no profile: its maps are not to be read as objects
    metrics = {m.label: m.value for m in app.metric}
    counts = [int(metrics[f"{p} maps (view 0, heuristic)"].split(" / ")[0]) for p in PATTERNS]
    assert sum(counts) == 32 and all(metrics[f"{p} maps (view 0, heuristic)"].endswith("/ 32") for p in PATTERNS)
    assert 0 <= float(metrics["mean cross-view agreement"]) <= 1
    page = texts(app)
    for row in ("view 0 · whole image", "view 1 · byol1", "view 2 · byol1"):
        assert f"**{row}" in page
    buttons = inspect_buttons(app)
    shown = [int(b.label.split()[-1]) for b in buttons]
    assert shown and len(shown) <= 6 and len(set(shown)) == len(shown)
    choice = shown[-1]
    buttons[-1].click().run()
    assert not app.exception
    assert app.session_state["selected_map"] == choice
    assert app.selectbox(key="selected_map").value == choice
    assert app.session_state["aligned_rep"] == choice % 8  # d 32, h 4: 8 aligned representations
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["channel group"] == f"{choice // 8} of 4"
    assert metrics["aligned representation"] == f"{choice % 8} of 8"
    assert 0 <= float(metrics["cross-view agreement"]) <= 1
    members = ", ".join(str(g * 8 + choice % 8) for g in range(4))
    assert f"maps {members}." in texts(app)
    assert len(app.table) == 1 and not app.dataframe  # the map's statistics per view, shown whole
    app.toggle(key="show_cosines").set_value(True).run()  # the embeddings: one more request, on demand
    assert not app.exception and len(app.dataframe) == 1
    assert len(app.get("download_button")) == 2


def test_object_tab_lists_only_object_maps_most_typical_first(app, service):
    app.run()
    shown = [int(b.label.split()[-1]) for b in inspect_buttons(app)]
    result = ApiClient(service).maps(*load_item("skimage:astronaut"), "tiny", ViewParams(size=64))
    objects = [m for m in range(result.d) if result.patterns[0, m] == "object"]
    typical = result.typicality["object"][0]
    assert shown == sorted(objects, key=lambda m: (-typical[m], m))[:6]


@pytest.mark.parametrize(
    ("tab", "pattern"), [("Multi-object (heuristic)", "multi-object"), ("Global (heuristic)", "global"), ("All", None)]
)
def test_other_tabs(app, tab, pattern):
    app.session_state["pattern_tab"] = tab
    app.session_state["per_row"] = 4
    app.run()
    assert not app.exception
    shown = [int(b.label.split()[-1]) for b in inspect_buttons(app)]
    page = texts(app)
    if pattern is None:
        assert shown == [0, 1, 2, 3] and "Maps 0–3 of 32, by index." in page
    elif shown:
        assert f"are **{pattern}** maps" in page
    else:
        assert f"No map of view 0 is classified as a {pattern} map" in page


def test_new_views_button_changes_the_seed_and_the_views(app):
    app.run()
    before = app.session_state["seed"]
    next(b for b in app.button if b.label == "New views").click().run()
    assert not app.exception and app.session_state["seed"] == before + 1


def test_compare_two_models_side_by_side(app):
    app.session_state["compare"] = True
    app.session_state["model_b"] = "tiny_m"
    app.run()
    assert not app.exception and not app.error
    assert "Two models, the same views" in [s.value for s in app.subheader]
    page = texts(app)
    assert "#### tiny" in page and "#### tiny_m" in page and "lewel_m · resnet18" in page
    assert "Each model's own maps" in page and page.count("its heuristic object maps of view 0") == 2
    tiles = [c for c in app.caption if c.value.startswith("map ")]
    assert tiles  # full-size tiles with readable captions, not one small picture per model
    app.toggle(key="compare_same").set_value(True).run()  # same indices only on request (both have d = 32)
    assert not app.exception and not app.error
    assert "The same map indices" in texts(app) and "map indices of tiny's tab" in texts(app)


def test_scene_gallery_item_and_new_scene(app):
    if not scenes_available():
        pytest.skip("Debian's tuxpaint-stamps-default is not installed")
    app.session_state["gallery_item"] = SCENE_KEY
    app.run()
    assert not app.exception and not app.error
    next(b for b in app.button if b.label == "New scene").click().run()
    drawn = app.session_state["scene_index"]
    assert not app.exception and drawn != 0  # a scene not shown yet on this page, named in the sidebar
    assert any(f"New scene: **scene {drawn}**" in c.value for c in app.sidebar.caption)


def test_upload_flow_and_a_rejected_image(app):
    app.session_state["image_source"] = "Upload"
    app.run()
    assert "Upload an image in the sidebar" in texts(app)
    app.get("file_uploader")[0].upload("photo.png", image_bytes(size=(80, 60)), "image/png").run()
    assert not app.exception and not app.error and inspect_buttons(app)
    app.get("file_uploader")[0].upload("notes.png", b"this is not an image", "image/png").run()
    assert not app.exception
    assert "The image was rejected" in app.error[0].value
    assert "(notes.png)" in app.error[0].value and "not a usable image" in app.error[0].value


def test_a_model_that_fails_to_load_gets_a_message(app):
    app.session_state["model"] = "broken"
    app.run()
    assert not app.exception
    assert "The model failed to load" in app.error[0].value and "broken" in app.error[0].value
    app.session_state["model"] = "byol"
    app.run()
    assert not app.exception and "This model has no alignment maps" in app.error[0].value


def test_service_down_gets_a_message_not_a_traceback(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("LEWEL_API_URL", url)
    at = AppTest.from_file(str(MAIN), default_timeout=60)
    at.run()
    assert not at.exception
    assert "The LEWEL service is not reachable" in at.error[0].value and url in at.error[0].value


# --- the parts on their own ---------------------------------------------------------------------------


def test_client_parses_every_map_and_downloads_what_it_shows(service):
    image, name = load_item("skimage:coffee")
    result = ApiClient(service).maps(image, name, "tiny", SMALL)
    assert result.maps.shape == (3, 32, 2, 2) and result.frame_maps.shape[:2] == (3, 32)
    np.testing.assert_allclose(result.maps.sum(axis=(2, 3)), 1, atol=2e-3)
    assert result.view_images.shape == (3, 64, 64, 3) and result.view_images.dtype == np.uint8
    assert result.boxes.shape == (3, 4) and result.d == 32 and result.h == 4
    assert set(result.patterns.ravel()) <= set(PATTERNS)
    assert result.aligned_maps(5) == [5, 13, 21, 29]
    assert sorted(sum((result.ranked(p) for p in PATTERNS), [])) == list(range(32))
    with np.load(io.BytesIO(result.npz), allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["maps"].astype(np.float32), result.maps)
    again = ApiClient(service).maps(image, name, "tiny", SMALL)
    np.testing.assert_array_equal(again.boxes, result.boxes)  # same params -> the same views


def test_client_errors_are_readable(service):
    api = ApiClient(service)
    with pytest.raises(ServiceError) as error:
        api.maps(image_bytes(), "x.png", "nope", SMALL)
    assert error.value.code == "model_not_found" and "nope" in error.value.message
    with pytest.raises(ServiceError) as error:
        api.maps(image_bytes(), "x.png", "tiny", ViewParams(views=99, size=64))
    assert error.value.title == "The service rejected the settings" and "views" in error.value.message
    with pytest.raises(ServiceError) as error:
        ApiClient(service, token="secret").maps(b"\x89PNG broken", "x.png", "tiny", SMALL)
    assert error.value.title == "The image was rejected"


def test_a_figure_download_is_drawn_from_the_pages_maps(service, monkeypatch):
    """The download is drawn from the answer the page holds (no request, no model pass): the figure the
    service would draw of the same maps, in every format."""
    import httpx

    image, name = load_item("skimage:chelsea")
    api = ApiClient(service)
    result = api.maps(image, name, "tiny", SMALL)
    served = Image.open(io.BytesIO(api.figure(image, name, "tiny", SMALL, [3, 1, 4], fmt="png", dpi=100,
                                               cmap="viridis", alpha=0.7, scale="range")))

    def no_request(*args, **kwargs):
        raise AssertionError("the download asked the service")

    monkeypatch.setattr(httpx, "request", no_request)
    style = figures.Style(cmap="viridis", alpha=0.7, scale="range")
    presets = ["whole image", "byol1", "byol1"]
    drawn = Image.open(io.BytesIO(figures.figure_file(result, [3, 1, 4], presets, style, "png", 100)))
    assert drawn.format == "PNG" and drawn.size == served.size  # the same grid: 3 rows, the input, view and 3 maps
    assert b"map 3" in figures.figure_file(result, [3], presets, style, "svg", 100)
    assert figures.figure_file(result, [3], presets, style, "pdf", 100)[:5] == b"%PDF-"
    assert figures.figure_titles(result, [3])[1] == [f"map 3\n{result.patterns[1, 3]} (heuristic)"]


def test_figures_from_a_result(service):
    image, name = load_item("skimage:chelsea")
    api = ApiClient(service)
    result = api.maps(image, name, "tiny", SMALL)
    picture = Image.open(io.BytesIO(image)).convert("RGB")
    small = Image.fromarray(result.source_image)  # the service's decode, downscaled: the app decodes nothing
    assert result.source_size == picture.size and max(small.size) == 384
    assert np.abs(np.asarray(small.resize((32, 24)), float) - np.asarray(picture.resize((32, 24)), float)).mean() < 4
    style = figures.Style(cmap="viridis", alpha=0.7, scale="range")
    boxed = figures.input_with_box(small, result, 1, result.source_size)
    assert boxed.shape == (*small.size[::-1], 3) and not np.array_equal(boxed, np.asarray(small))
    tile = figures.map_overlay(result, 2, 7, style)
    assert tile.shape == (64 + 18, 64, 3)  # the view, and a colour bar in units of the uniform value under it
    framed = figures.frame_overlay(small, result, 1, 7, style)
    assert framed.shape[1:] == boxed.shape[1:] and framed.shape[0] > boxed.shape[0]
    caption = figures.map_caption(result, 2, 7)
    assert caption.startswith("map 7 · ") and "(heuristic)" in caption and "× uniform" in caption
    presets = ["whole image", "byol1", "byol1"]
    png = api.figure(image, name, "tiny", SMALL, [3, 1, 4], fmt="png", dpi=100, cmap="viridis", alpha=0.7, scale="range")
    drawn = Image.open(io.BytesIO(png))
    assert drawn.format == "PNG" and drawn.width > drawn.height  # 3 rows, 5 columns
    assert b"<svg" in api.figure(image, name, "tiny", SMALL, [3], fmt="svg", dpi=100, cmap="jet", alpha=0.5, scale="peak")
    # the service's bound on its answers, said before the button is pressed: the 16 maps a figure holds at most are
    # some 7.4 MiB of PNG by the service's estimate (lewel.drawing.render.figure_cost), over a 6 MiB limit, and are
    # refused saying what to lower; three maps (5.4 MiB) are not
    limits = {**api.models()["limits"], "max_response_bytes": 6 * 2**20}
    everything = list(range(result.d))
    assert figures.figure_refusal(result, [3, 1, 4], "png", 200, limits) is None
    refusal = figures.figure_refusal(result, everything, "png", 600, limits)
    assert refusal is not None and "lower dpi" in refusal and "MiB" in refusal
    assert figures.figure_refusal(result, everything, "png", 600, api.models()["limits"]) is None
    with pytest.raises(ServiceError) as error:
        api.figure(image, name, "tiny", SMALL, [3, 3], fmt="png", dpi=100, cmap="jet", alpha=0.5, scale="peak")
    assert error.value.code == "invalid_parameters" and "more than once" in error.value.message
    rows = figures.statistics_rows(result, 7, presets)
    assert [r["view"] for r in rows] == [figures.view_label(result, v, presets[v]) for v in range(3)]
    assert rows[1]["view"].startswith("view 1 · byol1") and rows[1]["view"].endswith("flipped") == result.flips[1]
    assert rows[0][figures.HEURISTIC_ROW] == result.patterns[0, 7]
    assert set(f"typicality: {p}" for p in PATTERNS) <= set(rows[0])


def test_embedding_rows_measure_agreement_with_view_0():
    rng = np.random.default_rng(0)
    aligned = rng.normal(size=(3, 8, 32)).astype(np.float32)
    aligned[1] = 2 * aligned[0]  # view 1: the same direction as view 0
    aligned[2, 5] = -aligned[0, 5]
    glob = rng.normal(size=(3, 32)).astype(np.float32)
    rows = figures.embedding_rows(EmbeddingsResult(glob, aligned), 5, ["whole image", "cropflip", "cropflip"])
    assert [r["view"] for r in rows] == ["view 1 · cropflip", "view 2 · cropflip"]
    assert rows[0]["cos(aligned 5, view 0)"] == pytest.approx(1.0)
    assert rows[1]["cos(aligned 5, view 0)"] == pytest.approx(-1.0)


def test_gallery_comes_from_the_service(service):
    keys = [item.key for item in gallery.gallery_items(service)]
    assert {"skimage:astronaut", "skimage:chelsea", "skimage:coffee", "skimage:rocket"} <= set(keys)
    assert any(k.startswith("static:") for k in keys)
    for key in keys:
        if key == SCENE_KEY:
            continue
        data, name = gallery.load_item(service, key)
        assert (data, name) == load_item(key)  # the bytes and file name the library gives
        assert gallery.load_mask(service, key) is None
        assert max(Image.open(io.BytesIO(gallery.thumbnail_png(service, key))).size) <= 96
    if scenes_available():
        first, second = gallery.load_item(service, SCENE_KEY, 0), gallery.load_item(service, SCENE_KEY, 1)
        assert first[0] != second[0] and first[1] == "scene_0000.png"
        mask = np.asarray(Image.open(io.BytesIO(gallery.load_mask(service, SCENE_KEY, 1))))
        assert mask.shape == Image.open(io.BytesIO(second[0])).size[::-1] and set(np.unique(mask)) == {0, 255}
    with pytest.raises(ServiceError) as error:
        gallery.load_item(service, "elsewhere:x")
    assert error.value.status == 404 and "elsewhere:x" in error.value.message
    with pytest.raises(ServiceError):
        gallery.load_item(service, "static:../../pyproject.toml")


def test_launcher_reports_a_service_that_is_never_ready():
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "app", "--api-url", url, "--ready-timeout", "1", "--port", str(free_port())],
        cwd=MAIN.parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"error: the service at {url} was not ready after 1 s" in done.stderr


def test_contrast_note_says_how_far_from_uniform(service):
    result = ApiClient(service).maps(*load_item("skimage:rocket"), "tiny", SMALL)
    note = figures.contrast_note(result, 0, 3, figures.Style(scale="range"))
    values = result.maps[0, 3] * 4  # a 2×2 grid: uniform = 1/4
    assert f"from {values.min():.2f}× to {values.max():.2f}× the uniform value 1/4" in note
    assert note.startswith("Colours stretch") and figures.contrast_note(
        result, 0, 3, figures.Style(scale="peak")
    ).startswith("Colours run from 0")


def test_frame_overlay_draws_density_not_mass_per_cell(service):
    """A cell the crop covers by half holds half the mass of a full one at the same density: drawn alike."""
    result = ApiClient(service).maps(*load_item("skimage:rocket"), "tiny", SMALL)
    rows, cols = result.coverage.shape[1:]
    small = Image.new("RGB", (cols, rows), (128, 128, 128))
    coverage = np.zeros((rows, cols), dtype=np.float32)
    coverage[:, :2] = [0.5, 1.0]
    frame = np.full((rows, cols), np.nan, dtype=np.float32)
    frame[:, :2] = [0.05, 0.1]  # the same density in both columns
    density = np.where(coverage > 0, frame / np.where(coverage > 0, coverage, 1), np.nan)
    flat = replace(
        result,
        coverage=np.stack([coverage] * result.num_views),
        frame_maps=np.broadcast_to(frame, result.frame_maps.shape).copy(),
        frame_density=np.broadcast_to(density, result.frame_density.shape).astype(np.float32),
    )
    drawn = figures.frame_overlay(small, flat, 1, 0, figures.Style(cmap="gray", alpha=1.0, scale="peak"))
    assert drawn[rows // 2, 0].tolist() == drawn[rows // 2, 1].tolist() == [255, 255, 255]
    assert drawn[rows // 2, cols - 1].tolist() == [128, 128, 128]  # outside the crop: the image unchanged
