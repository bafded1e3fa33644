"""The app with map profiles: the measured tabs first, AUROC under every tile, the scene's mask sent along,
a banner for models without a profile, and colour bars in units of the uniform value."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from api_factory import build_models
from servers import app_page, running_service
from streamlit.testing.v1 import AppTest
from test_app import MAIN, inspect_buttons, texts

from app import figures
from app.client import ApiClient, ViewParams
from app import gallery
from lewel.data.gallery import SCENE_KEY, load_item, load_mask, scenes_available
from lewel.drawing.render import colour_bar, colour_limits, overlay_with_bar
from lewel.maps.profiles import build_profile, pattern_indices, profile_indices, sidecar_path, write_profile

pytestmark = pytest.mark.skipif(not scenes_available(), reason="the profile's scenes need tuxpaint-stamps-default")


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app_profiles")
    paths = build_models(folder)
    # 48 scenes: enough calibration images for some roles to be decided (global, background, mixed) and others not
    profile = build_profile(paths["tiny"], data="scenes:48", size=128, batch_size=24, control_seeds=1)
    write_profile(profile, sidecar_path(paths["tiny"]))
    with running_service(folder, "tiny") as url:
        yield url, profile


@pytest.fixture
def app(profiled, monkeypatch) -> AppTest:
    return app_page(profiled[0], monkeypatch, size=64, gallery_item=SCENE_KEY)


def test_measured_tabs_come_first_with_auroc_under_each_tile(app, profiled):
    _, profile = profiled
    app.run()
    assert not app.exception
    labels = [t.label for t in app.tabs]
    assert labels[:2] == ["Top object maps (by AUROC)", "Background maps (by AUROC)"]
    assert labels[2:] == [  # the profile measured Figure 5's patterns: no shape heuristic
        "Object pattern (measured)", "Multi-object pattern (measured)", "Global pattern (measured)",
        "Undecided (measured)", "All",
    ]
    shown = [int(b.label.split()[-1]) for b in inspect_buttons(app)]
    assert shown == profile_indices(profile, "object")[:6]
    page = texts(app)
    assert "AUROC" in page and "held-out" in page and "here " in page  # the scene's mask was sent
    banner = (app.success or app.warning)[0].value
    assert f"{profile['summary']['object_auroc']:.2f}" in banner
    assert f"{profile['summary']['random_control']['object_auroc']:.2f}" in banner
    assert "the best of 3 random networks" in banner and f"bound {profile['summary']['controls']['random_bound']:.2f}" in banner
    assert "learned where objects are" not in banner


def test_background_tab_and_switching_to_a_model_without_a_profile(app, profiled):
    _, profile = profiled
    app.session_state["pattern_tab"] = "Background maps (by AUROC)"
    app.run()
    assert not app.exception
    assert [int(b.label.split()[-1]) for b in inspect_buttons(app)] == profile_indices(profile, "background")[:6]
    app.selectbox(key="model").set_value("tiny_m").run()
    assert not app.exception
    assert [t.label for t in app.tabs][0] == "Object (heuristic)"
    assert "has no map profile" in app.warning[0].value and "should not be read as object maps" in app.warning[0].value
    app.toggle(key="compare").set_value(True).run()
    app.selectbox(key="model_b").set_value("tiny").run()
    assert not app.exception and "no map profile" in texts(app)


def test_the_gallery_scene_sends_its_mask(profiled):
    url, _ = profiled
    image, name = load_item(SCENE_KEY, 3)
    mask = load_mask(SCENE_KEY, 3)
    result = ApiClient(url).maps(image, name, "tiny", ViewParams(views=1, size=64), mask)
    assert result.has_mask and result.mask_auroc.shape == (2, 32)
    assert 0 < float(result.mask_object_share[0]) < 1
    assert load_mask("skimage:astronaut") is None
    assert gallery.load_mask(url, SCENE_KEY, 3) == mask and gallery.load_mask(url, "skimage:astronaut") is None
    assert result.measured("object") == profile_indices(profiled[1], "object")


def test_banner_kinds(profiled):
    url, _ = profiled
    result = ApiClient(url).maps(*load_item("skimage:coffee"), "tiny", ViewParams(views=0, size=64))
    good = replace(result, profile={**result.profile, "verdict": "localises"})
    kind, text = figures.profile_banner(good)
    assert kind == "success" and "beat every random network" in text and "learned where objects are" not in text
    assert f"the best of {result.profile['controls']['count']} random networks" in text
    bad = replace(result, profile={**result.profile, "verdict": "not better than random"})
    kind, text = figures.profile_banner(bad)
    assert kind == "warning" and "should not be read as object maps: not better than random" in text
    none = replace(result, profile=None)
    assert "no map profile" in figures.profile_banner(none)[1] and "(heuristic)" in figures.map_caption(none, 0, 0)
    assert result.profile["benchmark"] == "scenes" and "Measured on the scenes benchmark (objects on flat" in text
    textured = replace(result, profile={**result.profile, "benchmark": "textured", "data": "generated scenes on photographs"})
    assert "Measured on the textured benchmark (objects on photographs): generated scenes on photographs." in figures.profile_banner(textured)[1]


def test_colour_bar_states_the_scale_in_units_of_the_uniform_value():
    heat = np.full((4, 4), 1 / 16)
    heat[0, 0] = 1.05 / 16
    heat[3, 3] = 0.97 / 16
    assert colour_limits(heat, "range") == pytest.approx((0.97 / 16, 1.05 / 16))
    assert colour_limits(heat, "peak") == pytest.approx((0.0, 1.05 / 16))
    bar = colour_bar(100, 0.97 / 16, 1.05 / 16, unit=1 / 16, cmap="gray", height=20)
    assert bar.shape == (20, 100, 3)
    assert bar[0, 0].tolist() == [0, 0, 0] and bar[0, -1].tolist() == [255, 255, 255]
    tick = round((1 - 0.97) / (1.05 - 0.97) * 99)
    assert bar[2, tick].tolist() == [0, 0, 0] and bar[2, tick - 3].tolist() != [0, 0, 0]  # uniform = 1x marked
    assert (bar[12:] < 128).any()  # the labels
    tile = overlay_with_bar(np.zeros((64, 64, 3), np.uint8), heat, unit=1 / 16, scale="range")
    assert tile.shape == (82, 64, 3)
    with pytest.raises(ValueError, match="scale"):
        colour_limits(heat, "log")
    large = overlay_with_bar(np.zeros((224, 224, 3), np.uint8), heat, unit=1 / 16, scale="range")[224:]
    ink = np.flatnonzero((large.min(axis=2) < 128).any(axis=1) & (np.arange(len(large)) > len(large) // 4))
    assert ink.max() - ink.min() >= 224 // 16  # label glyphs at least 14 px high on a 224-px tile (they were ~8)


# --- issue 23: the measured Figure 5 in the page --------------------------------------------------------------


def test_pattern_tabs_show_the_services_measured_selection(app, profiled):
    _, profile = profiled
    counts = profile["summary"]["patterns"]
    app.session_state["pattern_tab"] = "Global pattern (measured)"
    app.run()
    assert not app.exception and not app.error
    shown = [int(b.label.split()[-1]) for b in inspect_buttons(app) if not b.key.startswith("inspect-category")]
    assert shown[:6] == pattern_indices(profile, "global")[:6]  # /v1/maps?pattern=global, best first
    page = texts(app)
    assert counts["global"] and f"{counts['global']} maps with the global pattern**, decided from instance masks" in page
    first = shown[0]
    next(b for b in inspect_buttons(app) if b.label == f"Inspect {first}").click().run()
    assert not app.exception
    caption = next(c.value for c in app.caption if c.value.startswith(f"map {first} · "))  # under "One map"
    sure = round(100 * profile["maps"][first]["pattern_confidence"])
    assert caption.startswith(f"map {first} · global ({sure} %) · AUROC") and sure >= 90
    top = profile["maps"][first]["categories"][0]["name"]
    assert f"looks at {top}" in caption
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["maps with the global pattern"] == f"{counts['global']} / 32" and "object maps (view 0, heuristic)" not in metrics
    family = profile["summary"]["patterns_beyond_random"]["global"]
    lines = [c.value for c in app.caption]
    expected = (f"below random ({family['family_min']} to {family['family_max']})" if family["below"]
                else f"{'beyond' if family['beyond'] else 'within'} random (up to {family['family_max']})")
    assert expected in lines  # under the count
    if counts["object"] == 0:  # an absent pattern says so
        app.session_state["pattern_tab"] = "Object pattern (measured)"
        app.run()
        assert not app.exception and "**No object maps**" in texts(app)


def test_maps_that_look_at_a_category(app, profiled):
    _, profile = profiled
    from lewel.maps.profiles import category_indices, profile_categories

    names = profile_categories(profile)
    app.run()
    assert not app.exception
    box = app.selectbox(key="look_category")
    assert list(box.options) == names and box.value is None
    box.set_value(names[0]).run()
    assert not app.exception and not app.error
    expected = category_indices(profile, names[0])
    shown = [int(b.label.split()[-1]) for b in inspect_buttons(app) if b.key.startswith("inspect-category")]
    assert shown == expected[: len(shown)] and (shown or "No map of this model looks at" in texts(app))


def test_a_version_2_profile_says_it_lacks_patterns(tmp_path, monkeypatch):
    import json
    import shutil

    from test_api_profiles import version_2

    paths = build_models(tmp_path / "models")
    profile = build_profile(paths["tiny"], data="scenes:6", size=128, batch_size=6, control_seeds=1)
    sidecar_path(paths["tiny"]).write_text(json.dumps(version_2(profile)))
    shutil.rmtree(tmp_path / "unused", ignore_errors=True)
    with running_service(paths["tiny"].parent, "tiny") as url:
        monkeypatch.setenv("LEWEL_API_URL", url)
        at = AppTest.from_file(str(MAIN), default_timeout=120)
        at.session_state["size"] = 64
        at.session_state["gallery_item"] = "skimage:coffee"
        at.run()
        assert not at.exception and not at.error
        labels = [t.label for t in at.tabs]
        assert labels[:2] == ["Top object maps (by AUROC)", "Background maps (by AUROC)"] and "Object (heuristic)" in labels
        page = texts(at)
        assert "This profile lacks Figure 5's measured patterns" in page and "version-2" in page
        assert "look_category" not in [b.key for b in at.selectbox]


def test_the_two_object_sets_have_two_names_and_one_line_on_how_they_relate(app, profiled):
    """Issue 43, 1: "object maps" named two sets; the tab is the top object maps (by AUROC), the counts the maps
    with the object pattern, and one caption says how they relate."""
    _, profile = profiled
    app.run()
    assert not app.exception
    assert [t.label for t in app.tabs][0] == "Top object maps (by AUROC)"
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["maps with the object pattern"] == f"{profile['summary']['patterns']['object']} / 32"
    assert not any(label.endswith("maps (measured)") for label in metrics)
    page = texts(app)
    assert "Two different sets: the **top object maps (by AUROC)**" in page and "**maps with the object pattern**" in page
    assert f"**{len(profile_indices(profile, 'object'))} top object maps (by AUROC)**" in page


def test_one_maps_table_labels_its_pattern_row_as_the_shape_heuristic(app, profiled):
    """Issue 43, 2: under "pattern (measured)" the per-view row is the shape rule on each view, and says so."""
    app.run()
    table = app.table[0].value
    assert "shape heuristic (this view)" in table.index and "pattern" not in table.index
    assert any("is a shape rule applied to this map on each view" in c.value for c in app.caption)
    assert any(m.label in ("pattern (measured)", "role (measured)") for m in app.metric)


def test_a_maps_pattern_confidence_shows_under_its_tile_when_the_answer_has_it(profiled):
    from dataclasses import replace

    from app import figures
    from app.client import ApiClient, ViewParams
    from lewel.data.gallery import load_item

    url, _ = profiled
    image, name = load_item("skimage:coffee")
    result = ApiClient(url).maps(image, name, "tiny", ViewParams(views=1, size=64))
    pattern = result.pattern_of(3)
    assert pattern and result.pattern_confidence is not None  # the answer carries each map's confidence
    share = round(100 * float(result.pattern_confidence[3]))
    assert f"{pattern} (" in figures.map_caption(result, 0, 3) and f"{share} %)" in figures.map_caption(result, 0, 3)
    older = replace(result, pattern_confidence=None, pattern_leaning=None)  # an older service: no confidence
    assert "%)" not in figures.map_caption(older, 0, 3).split(" · ")[1]
    sure = replace(result, measured_patterns=np.array(["object"] * result.d), pattern_confidence=np.full(result.d, 0.931))
    assert "object (93 %)" in figures.map_caption(sure, 0, 3)
    unsure = replace(sure, measured_patterns=np.array(["undecided"] * result.d), pattern_leaning=np.array(["global"] * result.d))
    assert "undecided (leaning global, 93 %)" in figures.map_caption(unsure, 0, 3)


def test_undecided_maps_have_their_own_tab_and_show_their_leaning(app, profiled):
    """Issue 39: a map whose role the data do not settle is shown as undecided, with the role it leans to and
    how sure, never counted under another pattern."""
    _, profile = profiled
    undecided = pattern_indices(profile, "undecided")
    assert undecided and profile["summary"]["patterns"]["undecided"] == len(undecided)
    app.session_state["pattern_tab"] = "Undecided (measured)"
    app.run()
    assert not app.exception and not app.error
    shown = [int(b.label.split()[-1]) for b in inspect_buttons(app) if not b.key.startswith("inspect-category")]
    assert shown[:6] == undecided[:6]
    assert f"{len(undecided)} undecided maps**" in texts(app)
    first = profile["maps"][shown[0]]
    next(b for b in inspect_buttons(app) if b.label == f"Inspect {shown[0]}").click().run()
    caption = next(c.value for c in app.caption if c.value.startswith(f"map {shown[0]} · "))
    sure = round(100 * first["pattern_confidence"])
    assert caption.startswith(f"map {shown[0]} · undecided (leaning {first['pattern_leaning']}, {sure} %)") and sure < 90
