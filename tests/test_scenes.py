"""Multi-object scenes: determinism, masks equal to the pasted alpha, labels from the stamp folders, the
data set, the written ImageFolder tree and its reader, and the install hint when the stamps are missing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from conftest import needs_stamps
from lewel.cli import main
from lewel.data.scenes import (
    ALPHA_THRESHOLD,
    EXCLUDED,
    MIN_VISIBLE,
    RESAMPLE,
    STAMPS_DIR,
    VAL_SEED_OFFSET,
    SceneDataset,
    SceneGenerator,
    StampsNotFoundError,
    index_stamps,
    read_scenes,
    write_scenes,
)
from lewel.views.augmentations import eval_transform


#: the fake stamps: identity -> the colour every opaque pixel has
COLOURS = {
    "animals/cat": (220, 40, 40),
    "animals/birds/owl": (40, 180, 60),
    "food/apple": (90, 90, 90),
    "vehicles/car": (230, 200, 30),
}


def _soft_ellipse(width: int, height: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    radius = np.hypot((xx + 0.5 - width / 2) / (width / 2), (yy + 0.5 - height / 2) / (height / 2))
    return np.clip((1 - radius) * 4 * 255, 0, 255).astype(np.uint8)  # opaque core, soft rim


@pytest.fixture(scope="module")
def fake_stamps(tmp_path_factory) -> Path:
    """Four solid-colour cut-outs in the package's layout (RGBA, LA, palette with transparency, a nested
    folder, a ``nomirror`` .dat) plus files that must be ignored or skipped."""
    root = tmp_path_factory.mktemp("stamps")
    for folder in ("animals/birds", "food", "vehicles", "broken", "empty"):
        (root / folder).mkdir(parents=True)
    cat = np.zeros((30, 40, 4), np.uint8)
    cat[..., :3] = COLOURS["animals/cat"]
    cat[..., 3] = _soft_ellipse(40, 30)
    Image.fromarray(cat, "RGBA").save(root / "animals/cat.png")
    owl = np.zeros((36, 36, 4), np.uint8)
    owl[..., :3] = COLOURS["animals/birds/owl"]
    owl[4:32, 4:32, 3] = np.tril(np.full((28, 28), 255, np.uint8))  # a right triangle: mirroring shows
    Image.fromarray(owl, "RGBA").save(root / "animals/birds/owl.png")
    (root / "animals/birds/owl.dat").write_text("noflip\nnomirror\n")
    yy, xx = np.mgrid[0:32, 0:32]
    ring = np.hypot(yy - 15.5, xx - 15.5)
    apple = np.stack([np.full((32, 32), 90, np.uint8), np.where((ring < 15) & (ring > 7), 255, 0).astype(np.uint8)], -1)
    Image.fromarray(apple, "LA").save(root / "food/apple.png")
    car = Image.new("P", (30, 24), 0)
    car.putpalette([0, 0, 0, *COLOURS["vehicles/car"]] + [0] * 762)
    car.paste(1, (0, 12, 30, 24))
    car.paste(1, (0, 0, 10, 12))  # an L shape
    car.save(root / "vehicles/car.png", transparency=0)
    (root / "animals/cat.txt").write_text("A cat.\n")
    (root / "animals/cat_desc.ogg").write_bytes(b"OggS\x00not really")
    (root / "broken/bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a png")
    Image.new("RGBA", (20, 20), (255, 0, 0, 0)).save(root / "empty/blank.png")
    Image.new("RGBA", (20, 20), (255, 0, 0, 255)).save(root / "top_level.png")
    return root


def expected_full_mask(stamps: Path, identity: str, box, mirrored: bool, size: int) -> np.ndarray:
    """The documented recipe: crop to alpha >= threshold, resize to the box, mirror, threshold."""
    with Image.open(stamps / f"{identity}.png") as image:
        rgba = image.convert("RGBA")
    ys, xs = np.nonzero(np.asarray(rgba)[..., 3] >= ALPHA_THRESHOLD)
    cutout = rgba.crop((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
    placed = cutout.resize((box[2] - box[0], box[3] - box[1]), RESAMPLE)
    if mirrored:
        placed = ImageOps.mirror(placed)
    full = np.zeros((size, size), bool)
    full[box[1] : box[3], box[0] : box[2]] = np.asarray(placed)[..., 3] >= ALPHA_THRESHOLD
    return full


def test_index_keeps_pngs_in_category_folders_that_load(fake_stamps):
    stamps = index_stamps(fake_stamps)
    assert sorted(s.identity for s in stamps) == sorted(COLOURS)
    by_identity = {s.identity: s for s in stamps}
    assert by_identity["animals/birds/owl"].category == "animals"
    assert not by_identity["animals/birds/owl"].mirror and by_identity["vehicles/car"].mirror
    assert SceneGenerator(64, stamps_dir=fake_stamps).classes == ("animals", "food", "vehicles")


def test_masks_are_exactly_the_pasted_alpha(fake_stamps):
    size = 64
    generator = SceneGenerator(size, seed=3, stamps_dir=fake_stamps)
    black, white = np.zeros((size, size, 3), np.uint8), np.full((size, size, 3), 255, np.uint8)
    seen_mirrored = seen_occlusion = False
    for index in range(12):
        scene = generator.scene(index)
        on_black = generator.scene(index, background=black)
        on_white = generator.scene(index, background=white)
        assert on_black.identities == scene.identities and np.array_equal(on_black.masks, scene.masks)
        union = scene.masks.any(axis=0)
        # a pixel comes from a cut-out exactly where the masks say so
        changed = (np.asarray(on_black.image) != np.asarray(on_white.image)).any(axis=-1)
        np.testing.assert_array_equal(changed, ~union)
        assert scene.masks.sum(axis=0).max() <= 1  # visible masks are disjoint
        pixels = np.asarray(on_black.image).astype(int)
        fulls = [
            expected_full_mask(fake_stamps, identity, box, mirrored, size)
            for identity, box, mirrored in zip(scene.identities, scene.boxes, scene.mirrored, strict=True)
        ]
        objects = zip(scene.masks, scene.identities, scene.categories, strict=True)
        for k, (mask, identity, category) in enumerate(objects):
            assert category == identity.split("/")[0]
            assert np.abs(pixels[mask] - COLOURS[identity]).max() <= 3  # the right cut-out is where its mask is
            hidden_by_later = np.any(fulls[k + 1 :], axis=0) if k + 1 < len(fulls) else np.zeros_like(mask)
            np.testing.assert_array_equal(mask, fulls[k] & ~hidden_by_later)
            assert mask.sum() >= MIN_VISIBLE * fulls[k].sum()
            seen_occlusion |= bool((fulls[k] & hidden_by_later).any())
        seen_mirrored |= any(scene.mirrored)
        assert "animals/birds/owl" not in {i for i, m in zip(scene.identities, scene.mirrored, strict=True) if m}
        assert scene.category == scene.categories[int(np.argmax(scene.masks.sum(axis=(1, 2))))]
        np.testing.assert_array_equal(scene.instance_map() > 0, union)
    assert seen_mirrored and seen_occlusion


def test_same_seed_same_bytes_whatever_the_order(fake_stamps):
    first = SceneGenerator(64, seed=5, stamps_dir=fake_stamps)
    second = SceneGenerator(64, seed=5, stamps_dir=fake_stamps)
    forward = [first.scene(i) for i in range(6)]
    backward = [second.scene(i) for i in reversed(range(6))][::-1]
    for a, b in zip(forward, backward, strict=True):
        assert a.image.tobytes() == b.image.tobytes()
        assert np.array_equal(a.masks, b.masks) and a.identities == b.identities and a.background == b.background
    other = SceneGenerator(64, seed=6, stamps_dir=fake_stamps)
    assert [s.image.tobytes() for s in forward] != [other.scene(i).image.tobytes() for i in range(6)]


@needs_stamps
def test_real_stamps_deterministic_across_loader_workers():
    dataset = SceneDataset(8, size=64, seed=11, transform=lambda image: torch.from_numpy(np.asarray(image).copy()))
    direct = [dataset[i] for i in range(len(dataset))]
    loader = DataLoader(dataset, batch_size=3, num_workers=2, collate_fn=list)
    parallel = [item for batch in loader for item in batch]
    for (image, label), (again, label_again) in zip(direct, parallel, strict=True):
        assert torch.equal(image, again) and label == label_again


@needs_stamps
def test_real_scenes_labels_and_masks():
    generator = SceneGenerator(64, seed=0)
    assert 500 < len(generator.stamps) <= len(index_stamps())
    black, white = np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 255, np.uint8)
    backgrounds, counts = set(), set()
    for index in range(40):
        scene = generator.scene(index)
        counts.add(len(scene.masks))
        backgrounds.add(scene.background.split(":")[0])
        for identity, category in zip(scene.identities, scene.categories, strict=True):
            assert identity.split("/")[0] == category and (STAMPS_DIR / f"{identity}.png").is_file()
            assert not identity.startswith(tuple(e + "/" for e in EXCLUDED))
        assert ((scene.boxes >= 0) & (scene.boxes <= 64)).all()
        on_black, on_white = (np.asarray(generator.scene(index, b).image) for b in (black, white))
        changed = (on_black != on_white).any(axis=-1)
        np.testing.assert_array_equal(changed, ~scene.masks.any(axis=0))
        assert scene.masks.sum(axis=(1, 2)).min() > 0
    assert counts == {1, 2, 3, 4}
    assert backgrounds == {"gradient", "noise", "texture"}


def test_dataset_labels_index_the_sorted_categories(fake_stamps):
    dataset = SceneDataset(5, size=64, seed=2, transform=eval_transform(32), stamps_dir=fake_stamps)
    assert len(dataset) == 5 and dataset.classes == ("animals", "food", "vehicles")
    for index in range(5):
        image, label = dataset[index]
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert dataset.classes[label] == dataset.generator.scene(index).category
    with pytest.raises(IndexError):
        dataset[5]
    assert isinstance(SceneDataset(1, size=64, stamps_dir=fake_stamps)[0][0], Image.Image)


def test_written_tree_reads_back(fake_stamps, tmp_path):
    out = tmp_path / "scenes"
    index = write_scenes(out, train=3, val=4, size=64, seed=7, stamps_dir=fake_stamps)
    data = json.loads(index.read_text())
    assert data["split_seeds"] == {"train": 7, "val": 7 + VAL_SEED_OFFSET}
    tree = read_scenes(out)
    assert (tree.size, tree.seed, tree.classes) == (64, 7, ("animals", "food", "vehicles"))
    assert [len(tree.records(s)) for s in ("train", "val")] == [3, 4]
    for split, seed in (("train", 7), ("val", 7 + VAL_SEED_OFFSET)):
        generator = SceneGenerator(64, seed, stamps_dir=fake_stamps)
        for (path, masks), record in zip(tree.pairs(split), tree.records(split), strict=True):
            scene = generator.scene(record.index)
            assert path == out / split / scene.category / f"{record.index:06d}.png"
            with Image.open(path) as image:
                assert image.tobytes() == scene.image.tobytes()  # PNG is lossless
            np.testing.assert_array_equal(masks, scene.masks)
            assert record.identities == scene.identities and tree.classes[record.label] == scene.category
    folder = ImageFolder(str(out / "val"))
    assert len(folder) == 4 and set(folder.classes) <= set(tree.classes)
    assert tree.records("train")[0].image.read_bytes() != tree.records("val")[0].image.read_bytes()
    with pytest.raises(FileExistsError):
        write_scenes(out, train=1, val=1, size=64, stamps_dir=fake_stamps)
    with pytest.raises(ValueError, match="no split"):
        tree.records("test")


def test_missing_stamps_say_how_to_install(tmp_path, capsys):
    with pytest.raises(StampsNotFoundError, match="sudo apt-get install tuxpaint-stamps-default"):
        SceneGenerator(64, stamps_dir=tmp_path / "missing")
    argv = ["data", "scenes", "--out", str(tmp_path / "out"), "--train", "1", "--val", "1"]
    argv += ["--stamps-dir", str(tmp_path / "missing")]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "sudo apt-get install tuxpaint-stamps-default" in error and "./scripts/setup" in error
    with pytest.raises(FileNotFoundError, match="lewel data scenes"):
        read_scenes(tmp_path)
