"""The service with map profiles: /v1/models summaries, roles and AUROC per map, measured selections, the
measured patterns and categories of a version-3 profile (and a version-2 profile without them), and
per-image AUROC from an uploaded mask (good and bad masks; binary and instance-coded)."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import torch
from api_factory import build_models, image_bytes, wait_ready
from fastapi.testclient import TestClient
from PIL import Image
from test_api import assert_error, settings_for

from api.encoding import decode_array
from api.main import create_app
from lewel.data.scenes import STAMPS_DIR
from lewel.files.images import decode_image
from lewel.inference import load_model
from lewel.maps import map_auroc, object_coverage
from lewel.maps.patterns import PATTERN_ROLES, cell_auroc
from lewel.maps.pattern_names import role_text
from lewel.maps.profiles import (
    build_profile,
    category_indices,
    pattern_indices,
    patterns_line,
    profile_categories,
    profile_indices,
    sidecar_path,
    write_profile,
)
from lewel.views import original_view, views_batch

pytestmark = pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="the profile's scenes need tuxpaint-stamps-default")
SIZE = (64, 48)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    paths = build_models(tmp_path_factory.mktemp("api_profiles") / "models")
    profile = build_profile(paths["tiny"], data="scenes:6", size=128, batch_size=6, control_seeds=1)
    write_profile(profile, sidecar_path(paths["tiny"]))
    stale = dict(profile, checkpoint={"file": "byol.pth", "sha256": "0" * 64})
    sidecar_path(paths["byol"]).write_text(json.dumps(stale))
    return paths, profile


@pytest.fixture(scope="module")
def client(models):
    paths, _ = models
    with TestClient(create_app(settings_for(paths["tiny"].parent, default_model="tiny"))) as test_client:
        wait_ready(test_client)
        yield test_client


def mask_bytes(mask: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, fmt)
    return buffer.getvalue()


def left_half(size: tuple[int, int] = SIZE, value: int = 255) -> np.ndarray:
    width, height = size
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[:, : width // 2] = value
    return mask


def post(client, mask: bytes | None = None, **params):
    files = {"image": ("image.png", image_bytes(size=SIZE, seed=2), "image/png")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, "image/png")
    return client.post("/v1/maps", files=files, data={k: str(v) for k, v in params.items()})


def test_models_carry_their_profile_summary_or_null(client, models):
    _, profile = models
    listed = {m["id"]: m for m in client.get("/v1/models").json()["models"]}
    summary = listed["tiny"]["profile"]
    assert summary["object_maps"] == profile["summary"]["object_maps"]
    assert summary["verdict"] == profile["summary"]["verdict"]
    assert summary["random_control"] == profile["summary"]["random_control"] and len(summary["difference"]["ci95"]) == 2
    assert summary["controls"]["count"] == 3 and summary["controls"]["schemes"] == ["torchvision", "pytorch", "trunc_normal"]
    assert summary["size"] == 128 and summary["grid"] == [4, 4] and "held-out" in summary["data"]
    assert listed["tiny_m"]["profile"] is None and listed["tiny_m"]["profile_error"] is None
    assert listed["byol"]["profile"] is None and "sha256 differs" in listed["byol"]["profile_error"]


def test_maps_carry_role_and_profile_auroc(client, models):
    _, profile = models
    body = post(client, size=64).json()
    roles = {m["index"]: m for m in body["maps"]}
    for record in profile["maps"]:
        assert roles[record["index"]]["role"] == record["role"]
        assert roles[record["index"]]["auroc_heldout"] == pytest.approx(record["auroc_heldout"])
    assert body["profile"]["object_maps"] == profile["summary"]["object_maps"]
    assert body["mask"] is False and body["views"][0]["mask"] is None
    assert body["views"][0]["statistics"][0]["auroc"] is None
    plain = post(client, size=64, model="tiny_m").json()
    assert plain["profile"] is None and all(m["role"] is None for m in plain["maps"])


def test_measured_selections_follow_the_profile(client, models):
    _, profile = models
    objects = post(client, size=64, maps="object").json()
    assert objects["selection"]["indices"] == profile_indices(profile, "object")
    assert {m["role"] for m in objects["maps"]} == {"object"}
    heldout = [m["auroc_heldout"] for m in objects["maps"]]
    assert heldout == sorted(heldout, reverse=True)
    background = post(client, size=64, maps="background").json()
    assert {m["role"] for m in background["maps"]} == {"background"}
    measured = post(client, size=64, order="measured").json()
    assert measured["selection"]["indices"][: len(heldout)] == objects["selection"]["indices"]
    assert sorted(measured["selection"]["indices"]) == list(range(32))
    assert_error(post(client, size=64, model="tiny_m", maps="object"), 422, "no_profile", "lewel profile", "tiny_m")


def test_a_mask_adds_this_images_auroc_and_pointing(client, models):
    paths, _ = models
    mask = left_half()
    body = post(client, mask_bytes(mask), size=64, views=2, seed=1).json()
    assert body["mask"] is True
    view0 = body["views"][0]
    assert view0["mask"]["object_share"] == pytest.approx(0.5) and view0["mask"]["scored"]
    model = load_model(paths["tiny"])
    maps = model.extract(views_batch([original_view(decode_image(image_bytes(size=SIZE, seed=2)), 64)])).maps
    expected = map_auroc(maps, object_coverage(torch.from_numpy(mask > 0), (2, 2))[None])[0]
    got = [s["auroc"] for s in view0["statistics"]]
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)
    assert all(isinstance(s["pointing_hit"], bool) for s in body["views"][2]["statistics"])
    npz = post(client, mask_bytes(mask), size=64, views=1, format="npz")
    arrays = np.load(io.BytesIO(npz.content), allow_pickle=False)
    assert arrays["mask_auroc"].shape == (2, 32) and arrays["roles"].shape == (32,)
    np.testing.assert_allclose(arrays["mask_auroc"][0], expected.numpy(), atol=1e-6)
    assert set(arrays["roles"]) == {"object", "background", "mixed"}


def test_masks_of_another_size_and_zero_one_masks_work(client):
    small = left_half((32, 24))
    assert post(client, mask_bytes(small), size=64).json()["views"][0]["mask"]["object_share"] == pytest.approx(0.5)
    ones = left_half(value=1)
    assert post(client, mask_bytes(ones), size=64).json()["views"][0]["mask"]["object_share"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("mask", "words"),
    [
        (mask_bytes(np.zeros((48, 64), np.uint8)), ("no object pixels",)),
        (mask_bytes(np.full((48, 64), 255, np.uint8)), ("no background pixels",)),
        (mask_bytes(left_half((64, 64))), ("64×64", "64×48", "aspect ratio")),
        (mask_bytes((np.arange(48 * 64).reshape(48, 64) % 200 + 20).astype(np.uint8)), ("not binary",)),
        (b"not an image at all", ("mask", "not an image")),
        (b"", ("mask", "empty")),
    ],
)
def test_bad_masks_are_422_naming_the_problem(client, mask, words):
    assert_error(post(client, mask, size=64), 422, "invalid_mask", "'mask'", *words)
    assert post(client, size=64).status_code == 200  # and the service keeps serving


@pytest.mark.parametrize(("fmt", "magic", "media"), [("png", b"\x89PNG", "image/png"), ("pdf", b"%PDF-", "application/pdf"), ("svg", b"<?xml", "image/svg+xml")])
def test_figures_as_png_pdf_svg_with_the_profile_in_the_titles(client, fmt, magic, media):
    response = post(client, size=64, views=1, maps="object", format=fmt, cmap="viridis", scale="peak", dpi=72)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media) and response.content.startswith(magic)
    assert response.headers["content-disposition"] == f'inline; filename="figure5.{fmt}"'
    if fmt == "svg":
        text = response.content.decode()
        assert "AUROC" in text and "object" in text and "random network" in text  # titles are text in SVG


def test_png_resolution_follows_dpi(client):
    small = Image.open(io.BytesIO(post(client, size=64, maps="object", format="png", dpi=60).content))
    large = Image.open(io.BytesIO(post(client, size=64, maps="object", format="png", dpi=120).content))
    assert large.width == pytest.approx(2 * small.width, rel=0.05)


@pytest.mark.parametrize(("field", "value"), [("cmap", "rainbowz"), ("scale", "log"), ("dpi", "5000"), ("format", "gif")])
def test_bad_figure_parameters_are_422(client, field, value):
    response = post(client, size=64, **{field: value})
    assert response.status_code == 422 and field in response.text


def test_models_carry_the_measured_patterns(client, models):
    _, profile = models
    summary = {m["id"]: m for m in client.get("/v1/models").json()["models"]}["tiny"]["profile"]
    measured = profile["summary"]
    assert summary["patterns"] == measured["patterns"] and sum(summary["patterns"].values()) == 32
    assert summary["patterns_note"] == measured["patterns_note"] and summary["patterns_line"] == patterns_line(measured)
    assert summary["patterns_beyond_random"] == measured["patterns_beyond_random"]
    assert summary["random_control_patterns"] == measured["random_control"]["patterns"]
    assert summary["random_control"]["patterns"] == measured["random_control"]["patterns"]
    assert set(summary["control_patterns"]) == {*PATTERN_ROLES, "undecided"}
    assert summary["control_patterns"]["object"] == measured["control_patterns"]["by_role"]["object"]
    assert summary["dissection_line"] == measured["dissection"]["line"] and "maps prefer one category" in summary["dissection_line"]
    assert summary["categories"] == profile_categories(profile) and summary["categories"]


@pytest.mark.parametrize("pattern", [*PATTERN_ROLES, "undecided"])
def test_pattern_selects_the_maps_of_that_measured_pattern(client, models, pattern):
    _, profile = models
    body = post(client, size=64, pattern=pattern).json()
    expected = pattern_indices(profile, pattern)
    assert body["selection"]["indices"] == expected and body["selection"]["pattern"] == pattern
    assert body["selection"]["ranked_on"] == "profile"
    assert [m["index"] for m in body["maps"]] == expected  # an empty selection is a 200 with zero maps
    assert all(m["measured_pattern"] == pattern for m in body["maps"])
    assert all(len(v["statistics"]) == len(expected) for v in body["views"])
    if not expected:
        assert post(client, size=64, pattern=pattern, format="png", dpi=50).status_code == 200


def test_every_map_carries_its_pattern_and_categories(client, models):
    _, profile = models
    body = post(client, size=64).json()
    for info in body["maps"]:
        record = profile["maps"][info["index"]]
        assert info["measured_pattern"] == record["pattern"]
        assert info["measured_pattern_leaning"] == record["pattern_leaning"]
        assert info["measured_pattern_confidence"] == pytest.approx(record["pattern_confidence"])
        assert [c["name"] for c in info["top_categories"]] == [c["name"] for c in record["categories"][:3]]
        assert info["category"] == (record["category"] and {k: record["category"][k] for k in ("name", "preference_heldout", "significant")})
    npz = np.load(io.BytesIO(post(client, size=64, format="npz").content), allow_pickle=False)
    order = list(npz["indices"])
    assert list(npz["measured_patterns"]) == [profile["maps"][m]["pattern"] for m in order]
    assert list(npz["measured_pattern_leaning"]) == [profile["maps"][m]["pattern_leaning"] for m in order]
    assert np.allclose(npz["measured_pattern_confidence"], [profile["maps"][m]["pattern_confidence"] for m in order])
    assert npz["top_categories"].shape == (32, 3)
    assert json.loads(str(npz["meta"]))["profile"]["patterns"] == profile["summary"]["patterns"]


def test_category_selects_the_maps_that_look_at_it(client, models):
    _, profile = models
    name = profile_categories(profile)[0]
    body = post(client, size=64, category=name).json()
    assert body["selection"]["indices"] == category_indices(profile, name) and body["selection"]["category"] == name
    assert body["selection"]["indices"]
    assert all(name in [c["name"] for c in profile["maps"][m]["categories"]] for m in body["selection"]["indices"])
    pattern = profile["maps"][body["selection"]["indices"][0]]["pattern"]
    both = post(client, size=64, category=name, pattern=pattern).json()["selection"]["indices"]
    assert both == [m for m in category_indices(profile, name) if m in pattern_indices(profile, pattern)]
    npz = np.load(io.BytesIO(post(client, size=64, category=name, format="npz").content), allow_pickle=False)
    assert list(npz["indices"]) == category_indices(profile, name)
    assert json.loads(str(npz["meta"]))["category"] == name


def test_figure_titles_carry_the_measured_pattern(client, models):
    _, profile = models
    pattern = next(p for p in [*PATTERN_ROLES, "undecided"] if pattern_indices(profile, p))
    response = post(client, size=64, pattern=pattern, format="svg", dpi=60)
    assert response.status_code == 200, response.text
    first = pattern_indices(profile, pattern)[0]
    record = profile["maps"][first]
    shown = role_text(record["pattern"], record["pattern_leaning"], record["pattern_confidence"])
    assert shown.startswith(pattern) and f"map {first} · {shown}" in response.content.decode()
    assert response.headers["X-Lewel-Maps"].split(",")[0] == str(first)


def test_pattern_and_category_errors(client, models):
    _, profile = models
    body = assert_error(post(client, size=64, category="no such thing"), 422, "unknown_category", "no such thing")
    assert all(name in body["message"] for name in profile_categories(profile))
    assert_error(post(client, size=64, model="tiny_m", pattern="object"), 422, "no_patterns", "no map profile", "lewel profile")
    assert_error(post(client, size=64, model="tiny_m", category="x"), 422, "no_patterns")
    assert_error(post(client, size=64, pattern="object", order="global"), 422, "invalid_parameters", "order=index or measured")
    for field, value in (("pattern", "shape"), ("category", ""), ("category", "x" * 201)):
        response = post(client, size=64, **{field: value})
        assert response.status_code == 422 and field in response.text


def test_the_npz_carries_every_ordering_a_client_shows(client, models):
    """One NPZ answer holds what the front end orders and selects by (it computes nothing itself): the
    heuristic tabs of view 0, the profile's roles, the measured patterns and the categories."""
    _, profile = models
    npz = np.load(io.BytesIO(post(client, size=64, format="npz").content), allow_pickle=False)
    assert list(npz["order_profile_object"]) == profile_indices(profile, "object")
    assert list(npz["order_profile_background"]) == profile_indices(profile, "background")
    for pattern in PATTERN_ROLES:
        assert list(npz[f"order_pattern_{pattern.replace('-', '_')}"]) == pattern_indices(profile, pattern)
    names = profile_categories(profile)
    assert list(npz["category_names"]) == names and npz["category_order"].shape == (len(names), 32)
    for name, row in zip(names, npz["category_order"], strict=True):
        assert [m for m in row if m >= 0] == category_indices(profile, name)
    patterns = npz["pattern_names"][npz["patterns"][0]]
    for pattern in ("object", "multi-object", "global"):
        order = list(npz[f"order_heuristic_{pattern.replace('-', '_')}"])
        assert sorted(order) == sorted(np.flatnonzero(patterns == pattern).tolist())
        typicality = npz[f"typicality_{pattern.replace('-', '_')}"][0, order]
        assert list(typicality) == sorted(typicality, reverse=True)
    without = np.load(io.BytesIO(post(client, size=64, format="npz", model="tiny_m").content), allow_pickle=False)
    assert without["order_profile_object"].size == 0 and without["category_order"].shape == (0, 32)


def test_the_npz_carries_the_decoded_image_and_frame_densities(client):
    npz = np.load(io.BytesIO(post(client, size=64, format="npz").content), allow_pickle=False)
    assert list(npz["source_size"]) == list(SIZE) and npz["source_image"].shape == (SIZE[1], SIZE[0], 3)
    expected = np.asarray(decode_image(image_bytes(size=SIZE, seed=2)).convert("RGB"))
    assert np.array_equal(npz["source_image"], expected)
    density, mass, cover = npz["frame_density"], npz["frame_maps"], npz["coverage"][:, None]
    covered = np.broadcast_to(cover > 0, mass.shape)
    assert np.allclose(density[covered], (mass / np.where(cover > 0, cover, 1))[covered], rtol=1e-5)
    assert np.isnan(density[~covered]).all()
    big = np.load(io.BytesIO(post_image(client, (900, 300), format="npz", size=64).content), allow_pickle=False)
    assert big["source_image"].shape == (128, 384, 3) and list(big["source_size"]) == [900, 300]


def post_image(client, shape: tuple[int, int], **params):
    files = {"image": ("image.png", image_bytes(size=shape, seed=3), "image/png")}
    return client.post("/v1/maps", files=files, data={k: str(v) for k, v in params.items()})


def test_indices_choose_exactly_the_maps_and_their_order(client, models):
    _, profile = models
    body = post(client, size=64, indices="7,3,12").json()
    assert body["selection"]["indices"] == [7, 3, 12] and [m["index"] for m in body["maps"]] == [7, 3, 12]
    npz = np.load(io.BytesIO(post(client, size=64, indices="5,0", format="npz").content), allow_pickle=False)
    assert list(npz["indices"]) == [5, 0] and npz["maps"].shape[1] == 2
    figure = post(client, size=64, indices="9,2", format="svg", dpi=60)
    assert figure.status_code == 200 and figure.headers["X-Lewel-Maps"] == "9,2"
    assert f"map 9 · {profile['maps'][9]['pattern']}" in figure.content.decode()
    assert_error(post(client, size=64, indices="3,32"), 422, "invalid_parameters", "32", "d=32")
    assert_error(post(client, size=64, indices="3,3"), 422, "invalid_parameters", "3 more than once")
    assert_error(post(client, size=64, indices="3", maps="top"), 422, "invalid_parameters", "maps=all")
    assert_error(post(client, size=64, indices="3", pattern="object"), 422, "invalid_parameters", "pattern=")
    for value in ("", "a", "3,", "-1", "1;2"):
        response = post(client, size=64, indices=value)
        assert response.status_code == 422 and "indices" in response.text, value


def test_alpha_changes_the_figure_and_is_bounded(client):
    pictures = [post(client, size=64, indices="1", format="png", dpi=50, alpha=a).content for a in (0.0, 1.0)]
    assert pictures[0] != pictures[1]
    for value in ("-0.1", "1.5", "x"):
        response = post(client, size=64, alpha=value)
        assert response.status_code == 422 and "alpha" in response.text


def version_2(profile: dict) -> dict:
    """``profile`` as a version-2 sidecar: no measured patterns, no dissection."""
    dropped = ("patterns", "patterns_note", "pattern_thresholds", "patterns_heldout_agreement", "patterns_images",
               "control_patterns", "dissection", "patterns_beyond_random", "patterns_confidence", "patterns_heldout_compared")
    summary = {k: v for k, v in profile["summary"].items() if k not in dropped}
    summary["random_control"] = {k: v for k, v in summary["random_control"].items() if k != "patterns"}
    records = [
        {**{k: v for k, v in r.items() if k not in ("pattern", "pattern_scores", "heldout_pattern", "categories", "category", "shape_shares",
                                                    "pattern_leaning", "pattern_confidence", "pattern_shares", "heldout_pattern_confidence")},
         "patterns": r["shape_shares"]}
        for r in profile["maps"]
    ]
    return {**profile, "version": 2, "summary": summary, "maps": records}


def test_a_version_2_profile_opens_without_patterns(models, tmp_path):
    paths, profile = models
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(paths["tiny"], folder / "tiny.pt")
    write_profile(version_2(profile), sidecar_path(folder / "tiny.pt"))
    with TestClient(create_app(settings_for(folder, default_model="tiny"))) as old:
        wait_ready(old)
        summary = old.get("/v1/models").json()["models"][0]["profile"]
        assert summary["object_maps"] == profile["summary"]["object_maps"] and summary["patterns"] is None
        assert "version-2" in summary["patterns_note"] and summary["categories"] == [] and summary["patterns_line"] is None
        body = post(old, size=64).json()
        assert {m["measured_pattern"] for m in body["maps"]} == {None} and body["maps"][0]["role"] is not None
        assert all(m["top_categories"] == [] and m["category"] is None for m in body["maps"])
        assert_error(post(old, size=64, pattern="global"), 422, "no_patterns", "version-2", "lewel profile again")
        svg = post(old, size=64, maps="object", format="svg", dpi=60).content.decode()
        assert "· object" in svg  # without patterns the titles keep the verdict's role


def two_instances(value: tuple[int, int] = (1, 2)) -> np.ndarray:
    """64×48: instance ``value[0]`` on the top-left quarter, ``value[1]`` on the top-right, background below."""
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[:24, :32], mask[:24, 32:] = value
    return mask


def test_an_instance_coded_mask_gives_each_instance_its_auroc(client, models):
    paths, _ = models
    body = post(client, mask_bytes(two_instances()), size=128, views=1, seed=3).json()
    assert body["mask"] is True and body["mask_instances"] == [1, 2]
    view0 = body["views"][0]
    assert [(i["id"], i["cells"]) for i in view0["mask"]["instances"]] == [(1, 4), (2, 4)]
    assert [i["share"] for i in view0["mask"]["instances"]] == pytest.approx([0.25, 0.25])
    model = load_model(paths["tiny"])
    maps = model.extract(views_batch([original_view(decode_image(image_bytes(size=SIZE, seed=2)), 128)])).maps
    values = maps[0].reshape(32, 16).double()  # a 4×4 grid: 16×12-pixel cells
    rows, cols = torch.arange(16) // 4, torch.arange(16) % 4
    first, second, background = (rows < 2) & (cols < 2), (rows < 2) & (cols >= 2), rows >= 2
    expected = torch.stack([cell_auroc(values, first, background), cell_auroc(values, second, background)])  # 2×32
    got = [s["instance_auroc"] for s in view0["statistics"]]
    np.testing.assert_allclose(np.array(got).T, expected.numpy(), atol=1e-9)
    union = map_auroc(maps, object_coverage(torch.from_numpy(two_instances() > 0), (4, 4))[None])[0]
    np.testing.assert_allclose([s["auroc"] for s in view0["statistics"]], union.numpy(), atol=1e-6)
    assert all(len(s["instance_auroc"]) == 2 for s in body["views"][1]["statistics"])
    npz = np.load(io.BytesIO(post(client, mask_bytes(two_instances()), size=128, views=1, seed=3, format="npz").content))
    assert list(npz["mask_instance_ids"]) == [1, 2] and npz["mask_instance_auroc"].shape == (2, 2, 32)
    np.testing.assert_allclose(npz["mask_instance_auroc"][0], expected.numpy(), atol=1e-9)


def test_instance_masks_in_palette_form_with_an_ignored_band(client):
    mask = two_instances((3, 7))
    mask[24:26] = 255  # VOC's border band: neither object nor background
    picture = Image.fromarray(mask, mode="P")
    picture.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] * 85 + [224, 224, 192])
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    body = post(client, buffer.getvalue(), size=128).json()
    assert body["mask_instances"] == [3, 7] and body["views"][0]["mask"]["scored"]
    assert all(s["instance_auroc"][0] is not None for s in body["views"][0]["statistics"])


def test_binary_masks_stay_binary(client):
    for mask in (left_half(), left_half(value=1)):
        body = post(client, mask_bytes(mask), size=64).json()
        assert body["mask"] is True and body["mask_instances"] is None
        assert body["views"][0]["mask"]["instances"] is None and body["views"][0]["statistics"][0]["instance_auroc"] is None


def test_pattern_and_category_work_with_any_maps(client, models):
    """``maps=`` narrows ``pattern=`` / ``category=`` (they used to need maps=all): maps=object keeps the
    profile's object maps of that pattern, maps=top the heuristic top maps of view 0, in the pattern's order."""
    _, profile = models
    pattern = next(p for p in [*PATTERN_ROLES, "undecided"] if pattern_indices(profile, p))
    for maps in ("object", "background"):
        body = post(client, size=64, pattern=pattern, maps=maps).json()
        role = set(profile_indices(profile, maps))
        assert body["selection"]["indices"] == [m for m in pattern_indices(profile, pattern) if m in role]
    top = post(client, size=64, maps="top", top_k=2).json()["selection"]["indices"]
    both = post(client, size=64, pattern=pattern, maps="top", top_k=2).json()["selection"]["indices"]
    assert both == [m for m in pattern_indices(profile, pattern) if m in top]
    name = profile_categories(profile)[0]
    narrowed = post(client, size=64, category=name, maps="object", order="measured").json()["selection"]["indices"]
    assert narrowed == [m for m in category_indices(profile, name) if m in set(profile_indices(profile, "object"))]


def test_a_category_is_priced_as_its_maps_not_all_d(models):
    """``category=`` returns the maps that look at it: the request's cost counts those, not all d maps."""
    from api.routes.uploads import shown_maps
    from api.schemas import MapsParams

    _, profile = models
    name = profile_categories(profile)[0]
    assert shown_maps(MapsParams(category=name), 32, profile) == len(category_indices(profile, name))
    pattern = profile["maps"][category_indices(profile, name)[0]]["pattern"]
    both = set(category_indices(profile, name)) & set(pattern_indices(profile, pattern))
    assert shown_maps(MapsParams(category=name, pattern=pattern), 32, profile) == len(both)
    assert shown_maps(MapsParams(maps="top", top_k=2), 32, profile) == 6
    assert shown_maps(MapsParams(), 32, profile) is None
