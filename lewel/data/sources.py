"""The data spec every command reads, and the image sources behind it (one home for both).

A spec (``--data``, ``--val-data``, ``--train``, ``--val``) is one of:

- ``scenes`` or ``scenes:N``: N generated multi-object scenes (``lewel.data.scenes``), with instance masks and
  each instance's stamp category; the seed is the caller's (training, a profile's splits, an extraction);
- ``textured`` or ``textured:N``: the same objects on photographic backdrops with distractors, softer outlines
  and blended colours (``SceneStyle.textured``); the backdrop pool is the caller's (``lewel.data.backdrops``:
  training draws from ``train``, a profile's splits from ``calibration`` and ``heldout``);
- ``coco:ANNOTATIONS.json[:IMAGES_DIR]``: a COCO instances file read with ``pycocotools`` (polygons, RLE and
  uncompressed RLE); ``iscrowd`` regions are neither object nor background. Without IMAGES_DIR the images are
  looked up where COCO puts them (``annotations/instances_val2017.json`` -> ``val2017/``), then beside the file;
- ``voc:ROOT[:SPLIT]``: a Pascal VOC tree (``JPEGImages``, ``SegmentationObject`` for instances,
  ``SegmentationClass`` for their categories, ``ImageSets/Segmentation/SPLIT.txt``, default ``val``); the
  255 border band is neither object nor background, as VOC's evaluation ignores it;
- a folder: written by ``lewel data scenes`` (``scenes.json``), or with ``images/`` + ``masks/`` (same file
  stems; a mask whose nonzero pixels are all 255 is binary, any other is instance-coded: 0 background, k =
  instance k; an optional ``categories.json`` maps each image stem to ``{instance id: category}``), or an
  ImageFolder tree or a flat folder of images (no masks).

Every source yields ``Sample``s (image, instance masks, category per instance, pixels to ignore, an id and a
label) by position, in a fixed order. A file that cannot be read, an image listed but missing, or a mask whose
size differs from its image raises ``UnreadableImage`` naming the file (the commands skip and list it); an
annotation that names an unknown category raises ``DataError`` when the source is opened.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .folders import DataError, ImageFiles

SCENES = "scenes"
TEXTURED = "textured"
MIX = "+"  #: joins generated-scene specs into one training set (``lewel.train.data``): ``scenes:2048+textured:2048``
GENERATED = (SCENES, TEXTURED)  #: the generated benchmarks a spec can name
COCO_PREFIX = "coco:"
VOC_PREFIX = "voc:"
DEFAULT_SCENES = 256  #: ``scenes`` without a count (commands that need another default pass it)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
BINARY_VALUE = 255  #: a mask of 0 and 255 only is a binary object mask, not 255 instances
VOC_IGNORE = 255  #: VOC's void label: object borders and difficult regions
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


class UnreadableImage(ValueError):
    """An image of a data set (or its mask) that cannot be used; commands skip it and list it by id."""


@dataclass(frozen=True)
class Sample:
    """One image of a source.

    ``image`` is RGB; ``instances`` is ``K×H×W`` bool (``None`` for a source without masks; K = 0 for an image
    with no object), ``categories`` names each instance (``""`` where unknown), ``ignore`` (``H×W`` bool or
    ``None``) marks pixels that are neither object nor background; ``label`` is the class index for kNN (-1
    without labels). ``binary``: the mask gave the objects' union only, not separate instances.
    """

    id: str
    image: Image.Image
    label: int = -1
    instances: np.ndarray | None = None
    categories: tuple[str, ...] = ()
    ignore: np.ndarray | None = None
    binary: bool = False

    @property
    def has_masks(self) -> bool:
        return self.instances is not None

    def object_mask(self) -> np.ndarray | None:
        """``H×W``: bool (True = object) without ignored pixels, else int8 (1 object, 0 background, -1
        ignored), the form ``lewel.maps.object_coverage`` takes; ``None`` without masks."""
        if self.instances is None:
            return None
        union = self.instances.any(axis=0) if len(self.instances) else np.zeros(self.image.size[::-1], dtype=bool)
        if self.ignore is None or not self.ignore.any():
            return union
        labels = union.astype(np.int8)
        labels[self.ignore & ~union] = -1
        return labels


class Source:
    """The images of a data set in a fixed order: ``ids[i]`` names image i, ``load(i)`` gives its ``Sample``
    (or raises ``UnreadableImage``), ``describe()`` says where they come from (stored in profiles and atlas
    indexes), ``classes`` names the labels (empty without labels)."""

    ids: list[str]
    has_masks: bool = False
    classes: Sequence[str] = ()

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Sample:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def subset(self, positions: Sequence[int], **description: Any) -> Source:
        """The images at ``positions`` (in that order), described with ``description`` added."""
        return Subset(self, positions, description)


class Subset(Source):
    """Some images of another source (a profile's calibration or held-out split)."""

    def __init__(self, parent: Source, positions: Sequence[int], description: dict[str, Any]) -> None:
        self.parent, self.positions, self.description = parent, list(positions), description
        self.ids = [parent.ids[p] for p in self.positions]
        self.has_masks, self.classes = parent.has_masks, parent.classes

    def load(self, index: int) -> Sample:
        return self.parent.load(self.positions[index])

    def describe(self) -> dict[str, Any]:
        return {**self.parent.describe(), **self.description, "images": len(self.ids)}


def read_image(path: Path) -> Image.Image:
    """An RGB image from ``path`` (``lewel.files.images.decode_image``: EXIF orientation, every colour mode, the
    pixel cap), or ``UnreadableImage`` naming the file."""
    from ..files.images import ImageDecodeError, decode_image

    try:
        return decode_image(path.read_bytes())
    except FileNotFoundError:
        raise UnreadableImage(f"{path} is listed but does not exist") from None
    except (ImageDecodeError, OSError) as error:
        raise UnreadableImage(f"{path}: {error}") from None


def read_label_png(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The pixel values of a mask PNG (palette indices for palette images), checked against the image's
    ``size`` (W, H): a mask of another size is an error naming both, never a resized guess."""
    try:
        with Image.open(path) as mask:
            if mask.mode not in ("P", "L", "1", "I", "I;16", "I;16L", "I;16B", "I;16N"):  # 16-bit ids as stored
                mask = mask.convert("L")
            values = np.asarray(mask)
    except FileNotFoundError:
        raise UnreadableImage(f"{path} (the mask) does not exist") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise UnreadableImage(f"{path} (the mask) cannot be read: {error}") from None
    if values.shape[::-1] != tuple(size):
        raise UnreadableImage(
            f"{path} is {values.shape[1]}×{values.shape[0]} but its image is {size[0]}×{size[1]}: the mask must have its image's size"
        )
    return values.astype(np.int64)


def split_instances(values: np.ndarray, *, ignore_value: int | None = None) -> tuple[np.ndarray, list[int]]:
    """``H×W`` instance ids (0 background) -> ``K×H×W`` bool masks and the ids, ascending (``ignore_value``
    excluded)."""
    ids = [int(v) for v in np.unique(values) if v != 0 and v != ignore_value]
    if not ids:
        return np.zeros((0, *values.shape), dtype=bool), []
    return values[None] == np.asarray(ids)[:, None, None], ids


# --- Sources -----------------------------------------------------------------------------------------------


class SceneSource(Source):
    """Scenes ``0 .. count-1`` of ``SceneGenerator(size, seed)`` (``kind`` ``textured``: in
    ``SceneStyle.textured(pool)``, or in ``style``, a ``SceneStyle``, for studies of the style): each instance with its stamp's category; labels index the generator's
    categories (the largest object's)."""

    has_masks = True

    def __init__(
        self, count: int, size: int, seed: int, *, kind: str = SCENES, pool: str = "heldout", style: Any = None
    ) -> None:
        from .scenes import SceneGenerator, SceneStyle

        if count < 1:
            raise DataError(f"the number of scenes must be >= 1, got {count}")
        if kind not in GENERATED:
            raise DataError(f"unknown generated scenes {kind!r}: choose one of {', '.join(GENERATED)}")
        self.count, self.size, self.seed, self.kind, self.pool = count, size, seed, kind, pool
        if style is None and kind == TEXTURED:
            style = SceneStyle.textured(pool)
        if style is not None and style.pool is not None:
            self.pool = style.pool
        self.generator = SceneGenerator(size, seed, style=style)
        self.classes = self.generator.classes
        self.ids = [f"scene{i:06d}" for i in range(count)]

    def load(self, index: int) -> Sample:
        scene = self.generator.scene(index)
        return Sample(
            id=self.ids[index], image=scene.image, label=self.classes.index(scene.category),
            instances=scene.masks.astype(bool), categories=tuple(scene.categories),
        )

    def describe(self) -> dict[str, Any]:
        described = {"kind": self.kind, "seed": self.seed, "images": self.count, "scene_size": self.size, "spec": f"{self.kind}:{self.count}"}
        if self.kind == TEXTURED:
            from .backdrops import describe_pool

            described["backdrops"] = describe_pool(self.pool)
            style = self.generator.style
            described["style"] = {
                "distractors": style.distractors, "blend": style.blend, "soften": style.soften,
                "scale_range": list(style.scale_range),
            }
        return described


class FolderSource(Source):
    """A flat folder of images or an ImageFolder tree (``lewel.data.folders.ImageFiles``: labels = sorted class
    folders), no masks; ids are the paths relative to ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        files = ImageFiles(root)
        self.root = files.root.resolve()
        self.classes = list(files.classes)
        self.paths = [Path(path) for path, _ in files.samples]
        self.labels = [label for _, label in files.samples]
        self.ids = [path.resolve().relative_to(self.root).as_posix() for path in self.paths]

    def load(self, index: int) -> Sample:
        return Sample(id=self.ids[index], image=read_image(self.paths[index]), label=self.labels[index])

    def describe(self) -> dict[str, Any]:
        return {"kind": "folder", "root": os.fspath(self.root), "classes": self.classes}


class MaskFolderSource(Source):
    """``images/`` + ``masks/`` (binary or instance-coded PNG masks, optional ``categories.json``) or a folder
    written by ``lewel data scenes`` (by split and scene index, every split or only ``scene_split``;
    categories from ``scenes.json``)."""

    has_masks = True

    def __init__(self, root: Path, *, scene_split: str | None = None) -> None:
        self.root = root.resolve()
        self.categories: dict[str, dict[int, str]] = {}
        if (self.root / "scenes.json").is_file():
            from .scenes import read_scenes

            tree = read_scenes(self.root)
            splits = sorted(tree.splits) if scene_split is None else [scene_split]
            records = [r for split in splits for r in sorted(tree.records(split), key=lambda r: r.index)]
            self.pairs = [(r.image, r.mask) for r in records]
            self.layout = "lewel-scenes" if scene_split is None else f"lewel-scenes {scene_split} split"
            for record in records:
                key = record.image.resolve().relative_to(self.root).as_posix()
                self.categories[key] = {k + 1: name for k, name in enumerate(record.categories)}
        else:
            image_dir, mask_dir = self.root / "images", self.root / "masks"
            masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() == ".png"}
            images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.stem in masks)
            self.pairs = [(p, masks[p.stem]) for p in images]
            self.layout = "images/ + masks/"
            self.categories = self._read_categories(self.root / "categories.json", {p.stem: p for p in images})
        if not self.pairs:
            raise DataError(f"{self.root} ({self.layout}) holds no image with a mask")
        self.ids = [image.resolve().relative_to(self.root).as_posix() for image, _ in self.pairs]

    @staticmethod
    def _read_categories(path: Path, images: dict[str, Path]) -> dict[str, dict[int, str]]:
        """``categories.json``: ``{image stem: {instance id: category name}}``, keyed here by image id."""
        if not path.is_file():
            return {}
        try:
            data = json.loads(path.read_text())
            table = {
                stem: {int(instance): str(name) for instance, name in entries.items()} for stem, entries in data.items()
            }
        except (ValueError, AttributeError, TypeError) as error:
            raise DataError(f"{path} must map image stems to {{instance id: category name}}: {error}") from None
        unknown = sorted(set(table) - set(images))
        if unknown:
            raise DataError(f"{path} names images that images/ does not hold (with a mask): {unknown[:5]}")
        return {f"images/{images[stem].name}": entries for stem, entries in table.items()}

    def load(self, index: int) -> Sample:
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path)
        values = read_label_png(mask_path, image.size)
        nonzero = np.unique(values[values != 0])
        names = self.categories.get(self.ids[index])
        if names is None and nonzero.size and set(nonzero.tolist()) == {BINARY_VALUE}:
            return Sample(id=self.ids[index], image=image, instances=(values != 0)[None], categories=("",), binary=True)
        instances, ids = split_instances(values)
        if names is not None:
            missing = [i for i in ids if i not in names]
            if missing:
                raise UnreadableImage(f"{mask_path} has instances {missing} that categories.json does not name")
        categories = tuple((names or {}).get(i, "") for i in ids)
        return Sample(id=self.ids[index], image=image, instances=instances, categories=categories)

    def describe(self) -> dict[str, Any]:
        return {"kind": "masked-folder", "root": os.fspath(self.root), "layout": self.layout}


def _coco_images_dir(annotations: Path) -> Path:
    """Where COCO's layout puts the images of ``annotations/instances_<split>.json``: ``<root>/<split>/``,
    else a folder ``images/`` beside the file."""
    candidates = []
    if annotations.stem.startswith("instances_"):
        candidates.append(annotations.parent.parent / annotations.stem[len("instances_") :])
    candidates.append(annotations.parent / "images")
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise DataError(
        f"no images folder for {annotations} (looked for {', '.join(map(str, candidates))}): give it as "
        f"coco:{annotations}:IMAGES_DIR"
    )


class CocoSource(Source):
    """A COCO instances file (``pycocotools``): every image of the file, ordered by id; each non-crowd
    annotation is an instance with its category's name, ``iscrowd`` annotations are ignored pixels."""

    has_masks = True

    def __init__(self, annotations: str | os.PathLike, images_dir: str | os.PathLike | None = None) -> None:
        from pycocotools.coco import COCO

        self.annotations = Path(annotations).resolve()
        if not self.annotations.is_file():
            raise DataError(f"COCO annotations {str(self.annotations)!r} do not exist")
        self.images_dir = Path(images_dir).resolve() if images_dir else _coco_images_dir(self.annotations)
        if not self.images_dir.is_dir():
            raise DataError(f"COCO images folder {str(self.images_dir)!r} does not exist")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
                self.coco = COCO(os.fspath(self.annotations))
        except (ValueError, KeyError, TypeError, AssertionError) as error:
            raise DataError(f"{self.annotations} is not a COCO instances file: {type(error).__name__}: {error}") from None
        unknown = [a for a in self.coco.dataset.get("annotations", []) if a.get("category_id") not in self.coco.cats]
        if unknown:
            raise DataError(
                f"{self.annotations}: annotation {unknown[0].get('id')} (image {unknown[0].get('image_id')}) names "
                f"category {unknown[0].get('category_id')}, which the file's categories do not list"
            )
        self.image_ids = sorted(self.coco.imgs)
        if not self.image_ids:
            raise DataError(f"{self.annotations} lists no images")
        self.ids = [self.coco.imgs[i]["file_name"] for i in self.image_ids]

    def load(self, index: int) -> Sample:
        record = self.coco.imgs[self.image_ids[index]]
        image = read_image(self.images_dir / record["file_name"])
        if image.size != (record["width"], record["height"]):
            raise UnreadableImage(
                f"{self.images_dir / record['file_name']} is {image.size[0]}×{image.size[1]} but {self.annotations.name} "
                f"gives {record['width']}×{record['height']}"
            )
        annotations = self.coco.loadAnns(self.coco.getAnnIds(imgIds=record["id"], iscrowd=None))
        instances, categories = [], []
        ignore = np.zeros((record["height"], record["width"]), dtype=bool)
        for annotation in annotations:
            with warnings.catch_warnings():  # pycocotools' decoder predates NumPy 2's copy keyword; harmless
                warnings.simplefilter("ignore", DeprecationWarning)
                mask = self.coco.annToMask(annotation).astype(bool)
            if annotation.get("iscrowd", 0):
                ignore |= mask
            else:
                instances.append(mask)
                categories.append(self.coco.cats[annotation["category_id"]]["name"])
        stacked = np.stack(instances) if instances else np.zeros((0, *ignore.shape), dtype=bool)
        return Sample(
            id=self.ids[index], image=image, instances=stacked, categories=tuple(categories),
            ignore=ignore if ignore.any() else None,
        )

    def describe(self) -> dict[str, Any]:
        return {"kind": "coco", "annotations": os.fspath(self.annotations), "images_dir": os.fspath(self.images_dir)}


class VocSource(Source):
    """A Pascal VOC tree: the images of ``ImageSets/Segmentation/<split>.txt``; instance k of an image is
    the value k of its ``SegmentationObject`` PNG, its category the ``SegmentationClass`` value under it; the
    void label 255 is ignored."""

    has_masks = True

    def __init__(self, root: str | os.PathLike, split: str = "val") -> None:
        self.root, self.split = Path(root).resolve(), split
        listing = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not listing.is_file():
            raise DataError(f"{self.root} is not a VOC tree with a {split!r} split: {listing} does not exist")
        for folder in ("JPEGImages", "SegmentationObject", "SegmentationClass"):
            if not (self.root / folder).is_dir():
                raise DataError(f"{self.root} is not a VOC tree: it has no {folder}/ folder")
        self.ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        if not self.ids:
            raise DataError(f"{listing} lists no images")

    def load(self, index: int) -> Sample:
        name = self.ids[index]
        image = read_image(self.root / "JPEGImages" / f"{name}.jpg")
        objects = read_label_png(self.root / "SegmentationObject" / f"{name}.png", image.size)
        classes = read_label_png(self.root / "SegmentationClass" / f"{name}.png", image.size)
        instances, ids = split_instances(objects, ignore_value=VOC_IGNORE)
        categories = []
        for instance_id, mask in zip(ids, instances):
            values, counts = np.unique(classes[mask], return_counts=True)
            value = int(values[np.argmax(counts)])
            if not 0 < value < len(VOC_CLASSES):
                raise UnreadableImage(
                    f"{self.root / 'SegmentationClass' / (name + '.png')}: instance {instance_id} has class value {value}, "
                    f"not one of VOC's 20 classes (1-{len(VOC_CLASSES) - 1})"
                )
            categories.append(VOC_CLASSES[value])
        ignore = objects == VOC_IGNORE
        return Sample(id=name, image=image, instances=instances, categories=tuple(categories), ignore=ignore if ignore.any() else None)

    def describe(self) -> dict[str, Any]:
        return {"kind": "voc", "root": os.fspath(self.root), "image_set": self.split}


# --- The spec ----------------------------------------------------------------------------------------------


def masked_folder_layout(folder: Path) -> str | None:
    """``"lewel-scenes"`` for a folder written by ``lewel data scenes``, ``"images/ + masks/"`` for one with
    those two folders, ``None`` for any other (a folder without masks)."""
    if (folder / "scenes.json").is_file():
        return "lewel-scenes"
    if (folder / "images").is_dir() and (folder / "masks").is_dir():
        return "images/ + masks/"
    return None


def scene_kind(spec: str) -> str | None:
    """``scenes`` or ``textured`` when ``spec`` names generated scenes, else ``None``. Those words always mean
    generated scenes: a folder of that name is ``./scenes``."""
    return next((kind for kind in GENERATED if spec == kind or spec.startswith(kind + ":")), None)


def scene_count(spec: str, default: int = DEFAULT_SCENES) -> int | None:
    """N for ``scenes:N`` or ``textured:N`` (``default`` for a bare ``scenes`` or ``textured``), ``None`` when
    ``spec`` does not name generated scenes (``scene_kind``)."""
    kind = scene_kind(spec)
    if kind is None:
        return None
    if spec == kind:
        return default
    text = spec.split(":", 1)[1]
    if MIX in text:
        raise DataError(
            f"{spec!r} mixes generated scenes: only training takes a mix (of scenes[:N] and textured[:N] alone); "
            "measure one benchmark at a time"
        )
    try:
        count = int(text)
    except ValueError:
        raise DataError(f"{spec!r}: the number of scenes must be an integer, got {text!r}") from None
    if count < 1:
        raise DataError(f"{spec!r}: the number of scenes must be positive")
    return count


def open_source(
    spec: str,
    *,
    size: int = 224,
    seed: int = 0,
    scenes: int = DEFAULT_SCENES,
    root: str | os.PathLike | None = None,
    pool: str = "heldout",
) -> Source:
    """The source ``spec`` names (see the module docstring): generated scenes of ``size`` px drawn with
    ``seed`` (``scenes`` of them for a bare ``scenes``; ``textured`` ones on backdrops of ``pool``, by default
    the held-out one: a source opened here is measured, not learned from); ``root`` replaces a folder's path
    (an atlas re-opens a data set that has moved)."""
    count = scene_count(spec, scenes)
    if count is not None:
        return SceneSource(count, size, seed, kind=scene_kind(spec), pool=pool)
    if spec.startswith(COCO_PREFIX):
        annotations, _, images_dir = spec[len(COCO_PREFIX) :].partition(":")
        return CocoSource(annotations, images_dir or None)
    if spec.startswith(VOC_PREFIX):
        voc_root, _, split = spec[len(VOC_PREFIX) :].partition(":")
        return VocSource(voc_root, split or "val")
    folder = Path(root if root is not None else spec)
    if not folder.exists():
        raise DataError(f"data {spec!r} is neither scenes[:N], textured[:N], coco:FILE, voc:ROOT nor an existing folder")
    if not folder.is_dir():
        raise DataError(f"data path {spec!r} is not a directory")
    if masked_folder_layout(folder) is not None:
        return MaskFolderSource(folder)
    return FolderSource(folder)


def reopen_source(description: dict[str, Any], *, root: str | os.PathLike | None = None) -> Source:
    """The source a ``describe()`` record names again (``root`` replaces a folder's path)."""
    kind = description.get("kind")
    if kind in GENERATED:
        pool = (description.get("backdrops") or {}).get("pool", "heldout")
        return SceneSource(int(description["images"]), int(description["scene_size"]), int(description["seed"]), kind=kind, pool=pool)
    if kind == "coco":
        return CocoSource(description["annotations"], description["images_dir"])
    if kind == "voc":
        return VocSource(root or description["root"], description.get("image_set", "val"))
    return open_source(os.fspath(root or description["root"]))


def alternate_splits(source: Source, limit: int | None = None) -> tuple[Source, Source]:
    """Even positions calibrate, odd ones are held out (``limit`` caps each): a profile's two splits of a
    data set that is not generated."""
    if len(source) < 2:
        raise DataError(f"{source.describe().get('root', source.describe())} has {len(source)} images with masks; a profile needs at least 2 (one per split)")
    rule = {"rule": "in order; even positions calibrate, odd are held out"}
    calibration = list(range(0, len(source), 2))[:limit]
    heldout = list(range(1, len(source), 2))[:limit]
    return (
        source.subset(calibration, split="calibration", **rule),
        source.subset(heldout, split="heldout", **rule),
    )


def masked_splits(
    spec: str, *, images: int | None, size: int, calibration_seed: int, heldout_seed: int, scenes: int = DEFAULT_SCENES
) -> tuple[Source, Source]:
    """The calibration and held-out splits of a masked ``spec``: generated scenes drawn with the two seeds
    (N each for ``scenes:N``, else ``images`` or ``scenes``), a ``lewel data scenes`` folder's ``val`` split
    (else ``train``) and any other masked source split alternately (``images`` caps each split). A source
    without masks is an error naming it."""
    count = scene_count(spec, images or scenes)
    if count is not None:
        kind = scene_kind(spec)
        return (
            SceneSource(count, size, calibration_seed, kind=kind, pool="calibration"),
            SceneSource(count, size, heldout_seed, kind=kind, pool="heldout"),
        )
    folder = Path(spec)
    if masked_folder_layout(folder) == "lewel-scenes":
        from .scenes import read_scenes

        split = "val" if read_scenes(folder).splits.get("val") else "train"
        return alternate_splits(MaskFolderSource(folder, scene_split=split), images)
    source = open_source(spec)
    if not source.has_masks:
        raise DataError(
            f"{spec!r} has no object masks: give scenes[:N], textured[:N], coco:FILE, voc:ROOT, a lewel data scenes folder or "
            "images/ + masks/"
        )
    return alternate_splits(source, images)
