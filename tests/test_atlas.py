"""The map atlas (``lewel atlas``): top-N against a brute-force ranking, means, AUROC, the static page, the endpoint."""

from __future__ import annotations

import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from checkpoint_factory import our_training_file
from conftest import tiny_config
from fastapi.testclient import TestClient
from image_factory import make_image_folder
from PIL import Image

from api.atlas_files import served_atlas
from api.main import create_app
from api.settings import Settings
from lewel import cli
from lewel.data.scenes import STAMPS_DIR
from lewel.data.sources import SceneSource
from lewel.drawing.atlas_folder import HTML_NAME, write_atlas
from lewel.drawing.atlas_page import CRITERIA_TITLES
from lewel.inference import load_model
from lewel.maps import PATTERNS, TOP_FRACTION
from lewel.maps.atlas import ATLAS_NAME, CRITERIA, MEAN_STATISTICS, build_atlas
from lewel.maps.extraction import SCENE_SEED, extract_maps
from lewel.maps.pattern_names import role_text
from lewel.maps.profiles import build_profile, index_means, patterns_line, score_images, sidecar_path, write_profile
from lewel.maps.shards import iter_shards

TOP = 4
EMPTY = Path(__file__).parent / "fixtures" / "no-models-here"


@pytest.fixture(scope="module")
def extraction(tmp_path_factory) -> dict[str, Path]:
    """A tiny LEWEL_M model's maps of 10 images (2 views each, 3×3 maps at 96 px), and their atlas."""
    root = tmp_path_factory.mktemp("atlas")
    checkpoint = root / "tiny_m.pt"
    torch.manual_seed(0)
    our_training_file(checkpoint, tiny_config("lewel_m"))
    data = make_image_folder(root / "data", per_class=5, size=56)
    (data / "class1" / "odd name & <b>.png").write_bytes((data / "class1" / "0.png").read_bytes())
    out = root / "out"
    extract_maps(checkpoint, str(data), out, size=96, views=1, preset="byol1", seed=1, shard_size=3, batch_size=4,
                 device="cpu")
    assert cli.main(["atlas", str(out), "--top", str(TOP), "--thumb-size", "48", "--quiet"]) == 0
    return {"root": root, "checkpoint": checkpoint, "data": data, "out": out, "dest": out / "atlas"}


def brute_force(out: Path, criterion: str) -> dict[int, list[tuple[float, int, int]]]:
    """Per map index, every (score, image index, view), best first (ties: lower image, then lower view)."""
    entries: dict[int, list[tuple[float, int, int]]] = {}
    for shard in iter_shards(out):
        for row, image_index in enumerate(shard["index"]):
            for view in range(shard["maps"].shape[1]):
                for m, heatmap in enumerate(shard["maps"][row, view]):
                    p = heatmap.astype(np.float64).ravel()
                    p = p / p.sum()
                    if criterion == "peak_ratio":
                        score = p.max() * p.size
                    else:
                        q = (p - p.min()) / (p.max() - p.min()) if p.max() > p.min() else np.ones_like(p)
                        score = sorted(q, reverse=True)[: math.ceil(TOP_FRACTION * p.size)]
                        score = sum(score) / q.sum()
                    entries.setdefault(m, []).append((float(score), int(image_index), view))
    return {m: sorted(values, key=lambda e: (-e[0], e[1], e[2])) for m, values in entries.items()}


@pytest.mark.parametrize("criterion", CRITERIA)
def test_top_n_equals_a_brute_force_ranking(extraction, criterion):
    atlas = json.loads((extraction["dest"] / ATLAS_NAME).read_text())
    expected = brute_force(extraction["out"], criterion)
    assert len(atlas["maps"]) == len(expected) == 32
    for record in atlas["maps"]:
        chosen = record["top"][criterion]
        assert [(t["image_index"], t["view"]) for t in chosen] == [(i, v) for _, i, v in expected[record["index"]][:TOP]]
        np.testing.assert_allclose([t["score"] for t in chosen], [s for s, _, _ in expected[record["index"]][:TOP]], rtol=1e-12)


def test_per_index_means_and_pattern_shares(extraction):
    atlas, _ = build_atlas(extraction["out"], top=1)
    shards = list(iter_shards(extraction["out"]))
    patterns = np.concatenate([s["stat_pattern"] for s in shards]).reshape(-1, 32)
    assert atlas["entries"] == len(patterns) == 22  # 11 images × 2 views
    for name in MEAN_STATISTICS:
        values = np.concatenate([s[f"stat_{name}"] for s in shards]).reshape(-1, 32).astype(np.float64)
        np.testing.assert_allclose([r["statistics"][name] for r in atlas["maps"]], values.mean(axis=0), rtol=1e-9)
    for record in atlas["maps"]:
        shares = [record["patterns"][p] for p in PATTERNS]
        assert shares == pytest.approx([(patterns[:, record["index"]] == k).mean() for k in range(3)])
        assert record["auroc"] is None and record["group"] == record["index"] // 8 and record["aligned"] == record["index"] % 8
    assert not atlas["has_masks"] and atlas["mean_auroc"] is None


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.links += [values[k] for k in ("src", "href") if values.get(k)]
        if values.get("id"):
            self.ids.add(values["id"])


def test_the_page_references_only_files_that_exist(extraction):
    dest = extraction["dest"]
    page = _References()
    page.feed((dest / HTML_NAME).read_text(encoding="utf-8"))
    assert {f"map-{m}" for m in range(32)} <= page.ids
    images = [link for link in page.links if not link.startswith("#")]
    assert len(images) == 32 * len(CRITERIA) * TOP
    for link in page.links:
        if link.startswith("#"):
            assert link[1:] in page.ids
        else:
            assert "://" not in link and not link.startswith("/")  # relative: the page opens from disk
            assert (dest / link).is_file(), link
    assert {p.name for p in (dest / "thumbs").iterdir()} == {Path(link).name for link in images}
    assert Image.open(dest / images[0]).size == (48, 48)
    assert "odd name &amp; &lt;b&gt;.png" in (dest / HTML_NAME).read_text(encoding="utf-8")


def test_thumbnails_fall_back_to_grey_when_the_data_moved(extraction, tmp_path):
    atlas, dest = write_atlas(extraction["out"], tmp_path / "atlas", top=1, thumb_size=32, data_root=tmp_path / "gone")
    assert "could not be opened again" in atlas["thumbnails_note"]
    assert all((dest / t["thumbnail"]).is_file() for r in atlas["maps"] for t in r["top"]["peak_ratio"])


@pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="generated scenes need tuxpaint-stamps-default")
def test_scenes_keep_their_masks_and_the_atlas_scores_auroc(extraction, tmp_path):
    out = tmp_path / "scenes"
    extract_maps(extraction["checkpoint"], "scenes:8", out, size=96, shard_size=5, batch_size=8, device="cpu")
    atlas, _ = build_atlas(out, top=2)
    assert atlas["has_masks"] and atlas["images"] == 8
    # the same per-index AUROC as the profile's scoring of the same scenes (whole image, no views)
    means = index_means(score_images(load_model(extraction["checkpoint"]), SceneSource(8, 96, SCENE_SEED), size=96))
    scored = [r for r in atlas["maps"] if r["auroc"] is not None]
    assert len(scored) == 32
    np.testing.assert_allclose([r["auroc"] for r in scored], means["auroc"].numpy(), atol=0.03)
    np.testing.assert_allclose([r["pointing"] for r in scored], means["pointing"].numpy(), atol=1 / 8 + 1e-9)  # float16 ties
    assert all(r["auroc_views"] == scored[0]["auroc_views"] > 0 for r in scored)


@pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="generated scenes need tuxpaint-stamps-default")
def test_each_index_gets_its_measured_pattern_and_categories_from_the_profile(extraction, tmp_path):
    checkpoint = tmp_path / "tiny_m.pt"
    shutil.copy(extraction["checkpoint"], checkpoint)
    out = tmp_path / "out"
    shutil.copytree(extraction["out"], out, ignore=shutil.ignore_patterns("atlas"))
    index = json.loads((out / "index.json").read_text())
    index["checkpoint"]["path"] = str(checkpoint)  # the copy, whose folder holds the profile
    (out / "index.json").write_text(json.dumps(index))
    assert build_atlas(out, top=1)[0]["measured_patterns"] is None  # no profile yet
    profile = build_profile(checkpoint, data="scenes:6", size=128, batch_size=6, control_seeds=1)
    write_profile(profile, sidecar_path(checkpoint))
    atlas, dest = write_atlas(out, tmp_path / "atlas", top=1, thumb_size=32)
    assert atlas["measured_patterns"] == patterns_line(profile["summary"])
    for record in atlas["maps"]:
        measured = profile["maps"][record["index"]]
        assert record["pattern"] == measured["pattern"] and record["pattern_confidence"] == measured["pattern_confidence"]
        assert [c["name"] for c in record["top_categories"]] == [c["name"] for c in measured["categories"][:3]]
        assert (record["category"] or {}).get("name") == (measured["category"] or {}).get("name")
    page = (dest / HTML_NAME).read_text(encoding="utf-8")
    assert "measured pattern" in page and "looks at" in page
    assert all(f"measured pattern {role_text(r['pattern'], r['pattern_leaning'], r['pattern_confidence'])}" in page for r in atlas["maps"])
    named = next(r for r in atlas["maps"] if r["top_categories"])
    assert named["top_categories"][0]["name"] in page


def test_atlas_endpoint(extraction, tmp_path):
    atlas_dir = tmp_path / "atlases"
    atlas, _ = write_atlas(extraction["out"], atlas_dir / "tiny_m", top=2, thumb_size=32)
    settings = Settings(bundled_models_dir=EMPTY, warmup_size=64, atlas_dir=atlas_dir)
    with TestClient(create_app(settings)) as client:
        body = client.get("/v1/atlas/tiny_m")
        written = json.loads((atlas_dir / "tiny_m" / ATLAS_NAME).read_text())
        assert body.status_code == 200 and body.json() == served_atlas(written, "tiny_m")
        assert body.json()["checkpoint"] == {"model": "tiny_m", "file": "tiny_m.pt", "sha256": written["checkpoint"]["sha256"]}
        one = client.get("/v1/atlas/tiny_m/maps/5").json()
        assert one["map"] == atlas["maps"][5] and one["model"] == atlas["model"] and "maps" not in one
        thumbnail = one["map"]["top"]["peak_ratio"][0]["thumbnail"]
        picture = client.get(f"/v1/atlas/tiny_m/{thumbnail}")
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
        for url, words in (
            ("/v1/atlas/other", ["other", "has no other/atlas.json", "lewel atlas"]),
            ("/v1/atlas/tiny_m/maps/32", ["0 … 31"]),
            ("/v1/atlas/tiny_m/thumbs/nothing.png", ["no thumbnail"]),
            ("/v1/atlas/tiny_m/thumbs/..%2Fatlas.json", []),
        ):
            answer = client.get(url)
            assert answer.status_code == 404 and answer.json()["error"] == "not_found", url
            assert all(word in answer.json()["message"] for word in words), answer.json()
        assert client.get("/v1/atlas/tiny_m/maps/x").status_code == 422
    with TestClient(create_app(Settings(bundled_models_dir=EMPTY, warmup_size=64))) as client:
        answer = client.get("/v1/atlas/tiny_m")
        assert answer.status_code == 404 and "LEWEL_ATLAS_DIR" in answer.json()["message"]
    token = Settings(bundled_models_dir=EMPTY, warmup_size=64, atlas_dir=atlas_dir, api_token="s3cret")
    with TestClient(create_app(token)) as client:
        assert client.get("/v1/atlas/tiny_m").status_code == 401
        assert client.get("/v1/atlas/tiny_m", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_the_page_titles_every_criterion_in_order():
    from lewel.drawing.atlas_page import CRITERIA_TITLES as page_titles

    assert tuple(page_titles) == CRITERIA and page_titles is CRITERIA_TITLES
