"""lewel.data.sources: the data spec and every source, against tiny COCO, VOC and mask folders built from
generated scenes (their instance masks are known exactly), and the profile run on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as coco_mask

from checkpoint_factory import our_training_file
from conftest import needs_stamps, tiny_config
from lewel import cli
from lewel.data import SceneGenerator
from lewel.data.folders import DataError
from lewel.data.sources import (
    VOC_CLASSES,
    CocoSource,
    FolderSource,
    MaskFolderSource,
    SceneSource,
    UnreadableImage,
    VocSource,
    masked_splits,
    open_source,
    reopen_source,
)
from lewel.maps import IGNORED_COVERAGE, map_auroc, object_coverage
from lewel.maps.profiles import PreparedImages, build_profile, describe_data, has_patterns, profile_categories

SIZE = 48


def scenes(count: int = 4, seed: int = 5) -> list:
    generator = SceneGenerator(SIZE, seed)
    return [generator.scene(i) for i in range(count)]


def polygon_of(mask: np.ndarray) -> list[float]:
    """The bounding rectangle of ``mask`` as a COCO polygon (pixel-edge coordinates)."""
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return [float(v) for v in (x0, y0, x1, y0, x1, y1, x0, y1)]


def write_coco(root: Path, scene_list: list, *, crowd: bool = True) -> Path:
    """A COCO instances file over ``scene_list``: image 0's instances as compressed RLE, image 1's as
    uncompressed RLE, the others' first instance as a polygon of its bounding box; a crowd region on image 0."""
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    categories = sorted({c for s in scene_list for c in s.categories})
    cat_ids = {name: 10 + i for i, name in enumerate(categories)}  # ids need not start at 1
    images, annotations = [], []
    for i, scene in enumerate(scene_list):
        name = f"{i:012d}.png"
        scene.image.save(root / "val2017" / name)
        images.append({"id": 100 + i, "file_name": name, "width": SIZE, "height": SIZE})
        for k, (mask, category) in enumerate(zip(scene.masks, scene.categories)):
            fortran = np.asfortranarray(mask.astype(np.uint8))
            if i == 0:
                rle = coco_mask.encode(fortran)
                segmentation = {"size": rle["size"], "counts": rle["counts"].decode()}
            elif i == 1:
                flat = mask.flatten(order="F").astype(int)
                runs, current, length = [], 0, 0
                for value in flat:
                    if value == current:
                        length += 1
                    else:
                        runs.append(length)
                        current, length = value, 1
                runs.append(length)
                segmentation = {"size": [SIZE, SIZE], "counts": runs}
            else:
                segmentation = [polygon_of(mask)]
            annotations.append({
                "id": len(annotations) + 1, "image_id": 100 + i, "category_id": cat_ids[category], "iscrowd": 0,
                "segmentation": segmentation, "area": float(mask.sum()), "bbox": [0, 0, 1, 1],
            })
    if crowd:
        band = np.zeros((SIZE, SIZE), dtype=np.uint8)
        band[:, :4] = 1
        rle = coco_mask.encode(np.asfortranarray(band))
        annotations.append({
            "id": len(annotations) + 1, "image_id": 100, "category_id": 10, "iscrowd": 1,
            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()}, "area": 4.0 * SIZE, "bbox": [0, 0, 4, SIZE],
        })
    path = root / "annotations" / "instances_val2017.json"
    path.write_text(json.dumps({
        "images": images, "annotations": annotations,
        "categories": [{"id": cat_ids[n], "name": n, "supercategory": "x"} for n in categories],
    }))
    return path


def write_voc(root: Path, scene_list: list) -> None:
    """A VOC tree over ``scene_list``: instance k = value k in SegmentationObject, class values from the
    instance order (instance k is class 1 + k), a 255 band along each image's top two rows."""
    for folder in ("JPEGImages", "SegmentationObject", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    names = []
    for i, scene in enumerate(scene_list):
        name = f"2007_{i:06d}"
        names.append(name)
        scene.image.save(root / "JPEGImages" / f"{name}.jpg", quality=95)
        objects = scene.instance_map().astype(np.uint8)
        classes = np.zeros_like(objects)
        for k in range(len(scene.masks)):
            classes[scene.masks[k]] = 1 + k % 20  # instance k is of VOC class 1 + k
        objects[:2] = classes[:2] = 255
        for array, folder in ((objects, "SegmentationObject"), (classes, "SegmentationClass")):
            picture = Image.fromarray(array, mode="L").convert("P")
            picture.save(root / folder / f"{name}.png")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(names) + "\n")


@needs_stamps
def test_coco_instances_come_back_exactly(tmp_path):
    scene_list = scenes()
    write_coco(tmp_path, scene_list)
    source = open_source(f"coco:{tmp_path / 'annotations' / 'instances_val2017.json'}")
    assert isinstance(source, CocoSource) and source.has_masks and len(source) == 4
    assert source.images_dir == (tmp_path / "val2017").resolve()  # COCO's layout, found without IMAGES_DIR
    for i in (0, 1):  # compressed and uncompressed RLE: exact
        sample, scene = source.load(i), scene_list[i]
        assert sample.id == f"{i:012d}.png"
        np.testing.assert_array_equal(sample.instances, scene.masks)
        assert sample.categories == scene.categories
    ignore = source.load(0).ignore
    assert ignore is not None and ignore[:, :4].all() and not ignore[:, 4:].any()
    labels = source.load(0).object_mask()
    assert labels.dtype == np.int8 and set(np.unique(labels)) <= {-1, 0, 1}
    assert (labels[:, :4][~scene_list[0].masks.any(axis=0)[:, :4]] == -1).all()
    polygon = source.load(2)  # a polygon: pycocotools rasterises the box
    box = np.zeros((SIZE, SIZE), dtype=bool)
    x0, y0, x1, y1 = (int(v) for v in np.asarray(polygon_of(scene_list[2].masks[0]))[[0, 1, 2, 5]])
    box[y0:y1, x0:x1] = True
    overlap = (polygon.instances[0] & box).sum() / (polygon.instances[0] | box).sum()
    assert overlap > 0.85
    again = reopen_source(source.describe())
    np.testing.assert_array_equal(again.load(1).instances, scene_list[1].masks)


@needs_stamps
def test_coco_errors_name_the_file(tmp_path):
    scene_list = scenes(2)
    path = write_coco(tmp_path, scene_list, crowd=False)
    data = json.loads(path.read_text())
    data["annotations"][0]["category_id"] = 999
    broken = tmp_path / "annotations" / "instances_broken.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"annotation 1 .* category 999"):
        CocoSource(broken, tmp_path / "val2017")
    (tmp_path / "val2017" / "000000000001.png").unlink()
    source = CocoSource(path)
    with pytest.raises(UnreadableImage, match="000000000001.png is listed but does not exist"):
        source.load(1)
    scene_list[0].image.resize((SIZE // 2, SIZE // 2)).save(tmp_path / "val2017" / "000000000000.png")
    with pytest.raises(UnreadableImage, match=r"is 24×24 but instances_val2017.json gives 48×48"):
        source.load(0)
    (tmp_path / "annotations" / "other.json").write_text(path.read_text())
    with pytest.raises(DataError, match="give it as coco:"):
        CocoSource(tmp_path / "annotations" / "other.json")


@needs_stamps
def test_voc_instances_categories_and_the_void_band(tmp_path):
    scene_list = scenes(3)
    write_voc(tmp_path, scene_list)
    source = open_source(f"voc:{tmp_path}")
    assert isinstance(source, VocSource) and source.ids == ["2007_000000", "2007_000001", "2007_000002"]
    for i, scene in enumerate(scene_list):
        sample = source.load(i)
        expected = scene.masks.copy()
        expected[:, :2] = False  # the 255 band replaced them there
        kept = expected.reshape(len(expected), -1).any(axis=1)
        np.testing.assert_array_equal(sample.instances, expected[kept])
        names = [VOC_CLASSES[1 + k % 20] for k in range(len(scene.masks))]
        assert list(sample.categories) == [n for n, keep in zip(names, kept) if keep]
        assert sample.ignore[:2].all() and not sample.ignore[2:].any()
    with pytest.raises(DataError, match="test"):
        open_source(f"voc:{tmp_path}:test")


@needs_stamps
def test_instance_coded_masks_with_categories_and_binary_masks(tmp_path):
    scene_list = scenes(3)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for i, scene in enumerate(scene_list):
        scene.image.save(tmp_path / "images" / f"s{i}.png")
        mask = scene.instance_map() if i < 2 else (scene.masks.any(axis=0) * 255).astype(np.uint8)
        Image.fromarray(mask).save(tmp_path / "masks" / f"s{i}.png")
    names = {"s0": {str(k + 1): c for k, c in enumerate(scene_list[0].categories)}}
    (tmp_path / "categories.json").write_text(json.dumps(names))
    source = open_source(str(tmp_path))
    assert isinstance(source, MaskFolderSource)
    first = source.load(0)
    np.testing.assert_array_equal(first.instances, scene_list[0].masks)
    assert first.categories == scene_list[0].categories and not first.binary
    second = source.load(1)  # instance-coded, no categories: instances kept, names unknown
    assert len(second.instances) == len(scene_list[1].masks) and set(second.categories) == {""}
    third = source.load(2)  # 0/255: one binary region
    assert third.binary and third.instances.shape == (1, SIZE, SIZE)
    np.testing.assert_array_equal(third.object_mask(), scene_list[2].masks.any(axis=0))
    names["s1"] = {"1": "only the first"}
    (tmp_path / "categories.json").write_text(json.dumps(names))
    with pytest.raises(UnreadableImage, match=r"s1.png has instances \[2"):
        open_source(str(tmp_path)).load(1)
    (tmp_path / "categories.json").write_text(json.dumps({"nope": {"1": "x"}}))
    with pytest.raises(DataError, match="nope"):
        open_source(str(tmp_path))


def test_scene_spec_folders_and_errors(tmp_path):
    with pytest.raises(DataError, match="integer"):
        open_source("scenes:many")
    with pytest.raises(DataError, match="positive"):
        open_source("scenes:0")
    with pytest.raises(DataError, match="neither scenes"):
        open_source(str(tmp_path / "missing"))
    (tmp_path / "flat").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "flat" / "a.png")
    assert isinstance(open_source(str(tmp_path / "flat")), FolderSource)
    assert not open_source(str(tmp_path / "flat")).has_masks
    with pytest.raises(DataError, match="no object masks"):
        masked_splits(str(tmp_path / "flat"), images=None, size=32, calibration_seed=1, heldout_seed=2)


@needs_stamps
def test_generated_scenes_carry_instances_and_categories():
    source = SceneSource(3, SIZE, 5)
    for i, scene in enumerate(scenes(3)):
        sample = source.load(i)
        np.testing.assert_array_equal(sample.instances, scene.masks)
        assert sample.categories == scene.categories and sample.label == source.classes.index(scene.category)


def test_ignored_pixels_make_cells_neither_object_nor_background():
    labels = np.zeros((4, 4), dtype=np.int8)
    labels[:2, :2] = 1  # cell (0, 0): object
    labels[:2, 2:] = -1  # cell (0, 1): ignored only
    labels[2:, :2] = 0  # cell (1, 0): background
    labels[2:, 2:] = -1  # cell (1, 1): a quarter object, the rest ignored -> undecided
    labels[2, 2] = 1
    coverage = object_coverage(labels, (2, 2))
    assert coverage.tolist() == [[1.0, IGNORED_COVERAGE], [0.0, IGNORED_COVERAGE]]
    # object 0.5 above background 0.4: AUROC 1; counted as either kind, the ignored cells (0.1, 0.9) give 2/3
    maps = torch.tensor([[[[0.5, 0.1], [0.4, 0.9]]]])
    assert map_auroc(maps, coverage[None]).item() == 1.0
    plain = labels.clip(0, 1)  # without ignored pixels the labels read as the bool mask does
    assert torch.equal(object_coverage(plain, (2, 2)), object_coverage(plain.astype(bool), (2, 2)))


@needs_stamps
def test_profile_on_a_coco_set_and_the_command(tmp_path):
    write_coco(tmp_path, scenes(6), crowd=True)
    spec = f"coco:{tmp_path / 'annotations' / 'instances_val2017.json'}"
    checkpoint = tmp_path / "tiny.pt"
    our_training_file(checkpoint, tiny_config("lewel_m"))
    calibration, heldout = masked_splits(spec, images=None, size=64, calibration_seed=1, heldout_seed=2)
    assert (calibration.ids, heldout.ids) == ([f"{i:012d}.png" for i in (0, 2, 4)], [f"{i:012d}.png" for i in (1, 3, 5)])
    assert PreparedImages(calibration, 64).masks[0].dtype == np.int8  # the crowd band travels as ignored pixels
    profile = build_profile(str(checkpoint), data=spec, size=64, batch_size=3, control_seeds=1)
    held = profile["data"]["heldout"]
    assert held["kind"] == "coco" and held["split"] == "heldout" and held["images"] == 3
    assert profile["summary"]["heldout_images"] + profile["summary"]["heldout_skipped"] == 3
    assert describe_data(profile).startswith(f"COCO {tmp_path / 'annotations' / 'instances_val2017.json'} (in order;")
    coco_names = {c["name"] for c in json.loads((tmp_path / "annotations" / "instances_val2017.json").read_text())["categories"]}
    assert has_patterns(profile) and set(profile_categories(profile)) <= coco_names  # Figure 5 measured on COCO
    assert all(c["name"] in coco_names for r in profile["maps"] for c in r["categories"])
    assert cli.main(["profile", "--checkpoint", str(checkpoint), "--data", spec, "--size", "64", "--control-seeds", "1"]) == 0
    written = json.loads((tmp_path / "tiny.profile.json").read_text())
    assert written["data"]["calibration"]["kind"] == "coco" and written["data"]["calibration"]["images"] == 3


@needs_stamps
def test_maps_of_a_voc_set_carry_the_ignored_band_and_reopen(tmp_path):
    """``lewel maps`` on VOC: every image extracted with its coverage; cells the void band leaves undecided
    read IGNORED_COVERAGE; the atlas's way back to the images (``reopen_source``) finds them again."""
    from lewel.maps.extraction import extract_maps
    from lewel.maps.shards import iter_shards

    write_voc(tmp_path / "voc", scenes(3))
    checkpoint = tmp_path / "tiny.pt"
    our_training_file(checkpoint, tiny_config("lewel_m"))
    index = extract_maps(checkpoint, f"voc:{tmp_path / 'voc'}", tmp_path / "out", size=64, device="cpu")
    assert index["has_masks"] and index["extracted"] == 3 and index["data"]["kind"] == "voc"
    coverage = np.concatenate([shard["coverage"] for shard in iter_shards(tmp_path / "out")])
    assert coverage.shape[:2] == (3, 1) and np.isclose(coverage, IGNORED_COVERAGE).any()
    again = reopen_source(index["data"])
    assert again.ids == ["2007_000000", "2007_000001", "2007_000002"]


def test_a_16_bit_instance_mask_keeps_ids_over_255_apart(tmp_path):
    scene = scenes(1)[0]
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    scene.image.save(tmp_path / "images" / "s0.png")
    ids = np.array([0, 256, 300, 1000, 4000], dtype=np.uint16)  # the scene's 1-4 objects, ids over 255
    Image.fromarray(ids[scene.instance_map()]).save(tmp_path / "masks" / "s0.png")  # a 16-bit grey PNG
    sample = open_source(str(tmp_path)).load(0)
    np.testing.assert_array_equal(sample.instances, scene.masks)
