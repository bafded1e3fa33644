"""The ``textured`` benchmark: backdrops from scikit-image's bundled photographs only, pools that share no
photograph pixel, masks that match the pasted objects exactly (hard and soft pastes), the spec in every place a
spec is read, and the folder writer's pools."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import needs_stamps
from lewel.cli import main
from lewel.data import backdrops
from lewel.data.backdrops import EVALUATION_PHOTOS, POOLS, TRAIN_PHOTOS, crop_box, photo, pool_regions
from lewel.data.scene_style import ALPHA_THRESHOLD, SceneStyle
from lewel.data.scenes import VAL_SEED_OFFSET, SceneGenerator, write_scenes
from lewel.data.sources import SceneSource, masked_splits, open_source, reopen_source, scene_kind
from lewel.train.data import MIX_SEED_OFFSET, training_images

COLOUR = (200, 30, 120)


@pytest.fixture(scope="module")
def one_stamp(tmp_path_factory) -> Path:
    """A single solid-colour cut-out with a hard-edged alpha (a disc), in a category folder."""
    root = tmp_path_factory.mktemp("stamps")
    (root / "things").mkdir()
    yy, xx = np.mgrid[0:40, 0:40]
    disc = np.zeros((40, 40, 4), np.uint8)
    disc[..., :3] = COLOUR
    disc[..., 3] = np.where(np.hypot(yy - 19.5, xx - 19.5) < 19, 255, 0)
    Image.fromarray(disc, "RGBA").save(root / "things/disc.png")
    return root


def test_pools_use_bundled_photographs_and_share_no_pixel() -> None:
    assert not set(TRAIN_PHOTOS) & set(EVALUATION_PHOTOS)
    train = pool_regions("train")
    assert train and {r.name for r in train} <= set(TRAIN_PHOTOS)
    calibration, heldout = pool_regions("calibration"), pool_regions("heldout")
    assert [r.name for r in calibration] == [r.name for r in heldout]
    assert {r.name for r in calibration} <= set(EVALUATION_PHOTOS)
    for first, second in zip(calibration, heldout, strict=True):
        height, width = photo(first.name).shape[:2]
        covered = np.zeros((height, width), int)
        for region in (first, second):
            assert 0 <= region.top < region.bottom <= height and 0 <= region.left < region.right <= width
            covered[region.top : region.bottom, region.left : region.right] += 1
        assert covered.max() == 1 and covered.min() == 1  # the two halves tile the photograph
    with pytest.raises(ValueError, match="unknown backdrop pool"):
        pool_regions("test")


def test_crops_stay_inside_their_region() -> None:
    rng = np.random.default_rng(0)
    for pool in POOLS:
        for region in pool_regions(pool):
            for _ in range(50):
                top, left, side = crop_box(rng, region)
                assert region.top <= top and top + side <= region.bottom
                assert region.left <= left and left + side <= region.right


def test_backdrops_come_from_the_pool_only(monkeypatch) -> None:
    """Every photograph a scene's backdrop or distractor reads is one of its pool's."""
    read: list[str] = []
    original = backdrops.photo

    def spy(name: str):
        read.append(name)
        return original(name)

    monkeypatch.setattr(backdrops, "photo", spy)
    for pool, allowed in (("train", TRAIN_PHOTOS), ("heldout", EVALUATION_PHOTOS)):
        read.clear()
        generator = SceneGenerator(48, 3, style=SceneStyle.textured(pool))
        kinds = [generator.scene(i).background for i in range(10)]
        assert read and set(read) <= set(allowed)
        assert all(kind.startswith("photo:") and kind[6:].split("+")[0] in allowed for kind in kinds)
        assert any("+" in kind for kind in kinds)  # distractors are drawn


def _alpha_from(generator: SceneGenerator, index: int) -> np.ndarray:
    """The pasted alpha of scene ``index``, read back from the same scene on black and on white."""
    black = np.asarray(generator.scene(index, background=np.zeros((48, 48, 3), np.uint8)).image).astype(float)
    white = np.asarray(generator.scene(index, background=np.full((48, 48, 3), 255, np.uint8)).image).astype(float)
    return 1 - (white - black).max(axis=-1) / 255


def test_hard_textured_paste_masks_are_exactly_the_pasted_pixels(one_stamp) -> None:
    style = SceneStyle.textured("calibration", blend=0.0, soften=0.0)
    generator = SceneGenerator(48, 1, stamps_dir=one_stamp, style=style)
    for index in range(8):
        scene = generator.scene(index)
        np.testing.assert_array_equal(_alpha_from(generator, index) > 0.5, scene.masks.any(axis=0))
        assert np.abs(np.asarray(scene.image)[scene.masks.any(axis=0)].astype(int) - COLOUR).max() <= 3  # resampled rims


def test_soft_outline_masks_are_the_pixels_the_object_dominates(one_stamp) -> None:
    """With one object per scene, a pixel is in its mask exactly where the blurred alpha is >= the threshold;
    only rounding at the threshold itself may differ."""
    style = SceneStyle.textured("heldout", blend=0.0, soften=3.0)
    generator = SceneGenerator(48, 2, stamps_dir=one_stamp, max_objects=1, style=style)
    softened = 0
    for index in range(10):
        scene = generator.scene(index)
        alpha = _alpha_from(generator, index)
        mask = scene.masks[0]
        near = np.abs(alpha - ALPHA_THRESHOLD / 255) <= 1.5 / 255
        np.testing.assert_array_equal((alpha >= ALPHA_THRESHOLD / 255)[~near], mask[~near])
        softened += int(((alpha > 0.02) & (alpha < 0.98)).sum())
        # the object is laid over the backdrop: inside its mask the colour leans to the cut-out's
        pixels = np.asarray(scene.image).astype(float)
        assert np.abs(pixels[mask & (alpha > 0.99)] - COLOUR).max() <= 3
    assert softened > 0  # outlines are soft


def test_textured_is_deterministic_and_scenes_are_unchanged_by_the_default_style() -> None:
    style = SceneStyle.textured("train")
    first, second = SceneGenerator(48, 9, style=style), SceneGenerator(48, 9, style=style)
    for index in (3, 0, 5):
        a, b = first.scene(index), second.scene(index)
        assert a.image.tobytes() == b.image.tobytes() and np.array_equal(a.masks, b.masks)
    plain, default = SceneGenerator(48, 9), SceneGenerator(48, 9, style=SceneStyle())
    assert plain.scene(4).image.tobytes() == default.scene(4).image.tobytes()
    assert plain.scene(4).image.tobytes() != first.scene(4).image.tobytes()


def test_the_spec_everywhere_splits_by_pool() -> None:
    assert scene_kind("textured:8") == "textured" and scene_kind("textured") == "textured"
    assert scene_kind("scenes:8") == "scenes" and scene_kind("texturedx") is None
    calibration, heldout = masked_splits("textured:4", images=None, size=48, calibration_seed=1, heldout_seed=2)
    assert (calibration.pool, heldout.pool) == ("calibration", "heldout")
    described = heldout.describe()
    assert described["kind"] == "textured" and described["spec"] == "textured:4"
    assert described["backdrops"]["pool"] == "heldout" and described["style"]["distractors"] == 3
    again = reopen_source(calibration.describe())
    assert again.load(2).image.tobytes() == calibration.load(2).image.tobytes()
    assert open_source("textured:3", size=48).pool == "heldout"  # a source opened to be measured
    train = training_images("textured:5", image_size=48, seed=0)
    assert train.generator.style.pool == "train"
    assert training_images("textured:5", image_size=48, seed=0, split="val").generator.style.pool == "heldout"
    with pytest.raises(Exception, match="positive"):
        masked_splits("textured:0", images=None, size=48, calibration_seed=1, heldout_seed=2)


def test_a_mix_of_generated_specs_concatenates_parts_drawn_with_their_own_seeds(tmp_path) -> None:
    mix = training_images("scenes:3+textured:2", image_size=48, seed=5)
    assert len(mix) == 5 and mix.classes == training_images("scenes:1", image_size=48, seed=5).classes
    flat, photos = mix.datasets
    assert flat.generator.style.pool is None and photos.generator.style.pool == "train"
    assert (flat.generator.seed, photos.generator.seed) == (5, 5 + MIX_SEED_OFFSET)
    assert np.array_equal(np.asarray(mix[4][0]), np.asarray(photos[1][0]))
    assert training_images("scenes:2+textured:2", image_size=48, seed=5, split="val").datasets[1].generator.style.pool == "heldout"
    odd = tmp_path / "a+b"  # a folder whose name holds the separator is still a folder
    odd.mkdir()
    Image.new("RGB", (8, 8)).save(odd / "x.png")
    assert len(training_images(str(odd), image_size=48, seed=0)) == 1
    with pytest.raises(Exception, match="integer"):
        training_images("scenes:2+textured:x", image_size=48, seed=0)
    with pytest.raises(Exception, match="only training takes a mix"):
        open_source("scenes:2+textured:2", size=48)


def test_shared_backdrops_repeat_backgrounds_and_leave_objects_alone() -> None:
    mix = training_images("scenes:5+textured:5", image_size=48, seed=2, shared_backdrops=2)
    for part in mix.datasets:
        shared, own = part.generator, SceneGenerator(48, part.generator.seed, style=replace(part.generator.style, shared_backdrops=0))
        assert shared.style.shared_backdrops == 2
        for index in range(5):  # scene i's background is scene (i mod 2)'s; its objects are its own
            assert np.array_equal(shared.background(index)[0], own.background(index % 2)[0])
            ours, theirs = shared.scene(index), own.scene(index)
            assert theirs.identities == ours.identities and np.array_equal(ours.masks, theirs.masks)
        assert np.array_equal(np.asarray(shared.scene(1).image), np.asarray(own.scene(1).image))
        assert not np.array_equal(np.asarray(shared.scene(2).image), np.asarray(own.scene(2).image))
    with pytest.raises(ValueError, match="train split only"):
        training_images("textured:4", image_size=48, seed=0, split="val", shared_backdrops=2)
    with pytest.raises(ValueError, match="generated scenes"):
        training_images("coco:x.json", image_size=48, seed=0, shared_backdrops=2)
    with pytest.raises(ValueError, match="shared_backdrops"):
        SceneStyle(shared_backdrops=-1)


def test_scene_source_with_a_study_style_names_its_pool() -> None:
    source = SceneSource(2, 48, 1, kind="textured", style=SceneStyle.textured("calibration", blend=0.0))
    assert source.describe()["backdrops"]["pool"] == "calibration" and source.describe()["style"]["blend"] == 0.0


@needs_stamps
def test_folder_writer_puts_val_scenes_on_calibration_and_heldout_backdrops(tmp_path, capsys) -> None:
    out = tmp_path / "photos"
    assert main(["data", "scenes", "--out", str(out), "--train", "2", "--val", "4", "--size", "48", "--seed", "3",
                 "--backgrounds", "photos"]) == 0  # fmt: skip
    assert "on photographs" in capsys.readouterr().out
    index = json.loads((out / "scenes.json").read_text())
    assert index["backgrounds"] == "photos"
    val_seed = 3 + VAL_SEED_OFFSET
    expected = {
        pool: SceneGenerator(48, val_seed, style=SceneStyle.textured(pool)) for pool in ("calibration", "heldout")
    }
    for entry in index["splits"]["val"]:
        pool = "heldout" if entry["index"] % 2 else "calibration"
        with Image.open(out / entry["image"]) as written:
            assert written.convert("RGB").tobytes() == expected[pool].scene(entry["index"]).image.tobytes()
    train = SceneGenerator(48, 3, style=SceneStyle.textured("train"))
    with Image.open(out / index["splits"]["train"][0]["image"]) as written:
        assert written.convert("RGB").tobytes() == train.scene(0).image.tobytes()
    with pytest.raises(ValueError, match="backgrounds"):
        write_scenes(tmp_path / "other", train=1, val=1, backgrounds="stripes")


def test_a_profile_on_textured_says_which_benchmark(tiny_checkpoint: str) -> None:
    from api.routes.responses import profile_body
    from lewel.maps.profiles import build_profile, describe_data

    profile = build_profile(tiny_checkpoint, data="textured:6", size=128, batch_size=6, control_seeds=1, cache=False)
    assert profile["data"]["heldout"]["kind"] == "textured"
    assert profile["data"]["calibration"]["backdrops"]["pool"] == "calibration"
    assert "on photographs" in describe_data(profile) and "heldout backdrops" in describe_data(profile)
    assert profile_body(profile).benchmark == "textured"
    assert profile_body(build_profile(tiny_checkpoint, data="scenes:4", size=128, control_seeds=1, cache=False)).benchmark == "scenes"
