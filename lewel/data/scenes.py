"""Multi-object scenes: Debian's Tux Paint cut-outs pasted onto backgrounds, with exact instance masks.

Why: no natural-image data set can be downloaded here, yet alignment maps must be trained and judged on images
with objects. The ~800 cut-outs of ``tuxpaint-stamps-default`` (animals, food, vehicles, plants, tools, ...)
pasted onto procedural or photographic backgrounds give scenes whose object masks are known exactly.

- ``SceneGenerator(size, seed).scene(index)`` builds scene ``index``; it depends only on ``(seed, index)``.
- ``SceneDataset`` is a map-style torch data set over those scenes (any length: an "infinite" source).
- ``write_scenes`` writes an ImageFolder tree plus instance masks and a ``scenes.json`` index;
  ``read_scenes`` reads it back.

Compositing is binary: a pixel of a resized cut-out is pasted when its alpha is >= ``ALPHA_THRESHOLD`` and
not at all otherwise, so an object's mask is exactly the set of pixels taken from its cut-out.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage
from torch.utils.data import Dataset

from ..files.checkpoints import atomic_write
from .backdrops import backdrop, distractor, photo
from .scene_style import ALPHA_THRESHOLD, SCALE_RANGE, TEXTURED, SceneStyle, composite, soften

STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
INSTALL_HINT = (
    "install Debian's object cut-outs with `sudo apt-get install tuxpaint-stamps-default` "
    "(./scripts/setup installs them when run as root)"
)
MIN_STAMP_PIXELS = 64  #: cut-outs with fewer opaque pixels at full resolution are skipped as nearly empty
MIN_STAMP_FILL = 0.02  #: ... and so are those whose opaque pixels fill less than this share of their box
RESAMPLE = Image.Resampling.BILINEAR  #: resizes cut-outs (Pillow: antialiased, on premultiplied alpha)
MIN_VISIBLE = 0.5  #: a later paste may hide at most half of any earlier object
PLACEMENT_TRIES = 20  #: placements tried per object before giving up on it
EXCLUDED = ("symbols/alphabets", "symbols/math")  #: glyphs (letters, digits, operators), not objects
BACKGROUNDS = ("gradient", "noise", "texture")
TEXTURES = ("brick", "grass", "gravel", "moon", "cell", "hubble_deep_field", "immunohistochemistry")
VAL_SEED_OFFSET = 1_000_003  #: ``write_scenes`` draws the validation split with seed + this offset
SPLITS = ("train", "val")
INDEX_NAME = "scenes.json"
FORMAT = "lewel-scenes"


class StampsNotFoundError(FileNotFoundError):
    """The Tux Paint stamps folder is missing or holds no usable cut-out."""


@dataclass(frozen=True)
class Stamp:
    """One cut-out: its PNG, ``identity`` (path below the stamps folder without ``.png``, e.g.
    ``animals/insects/bee``) and whether it may be mirrored (Tux Paint's ``nomirror`` says not)."""

    path: Path
    identity: str
    mirror: bool = True

    @property
    def category(self) -> str:
        """The top-level folder: ``animals``, ``food``, ``vehicles``, ..."""
        return self.identity.split("/", 1)[0]


@functools.lru_cache(maxsize=256)
def load_cutout(path: str | os.PathLike) -> Image.Image | None:
    """The RGBA cut-out of a stamp cropped to its opaque box (alpha >= ``ALPHA_THRESHOLD``), or ``None``
    when it cannot be read or is nearly empty (see ``MIN_STAMP_PIXELS``, ``MIN_STAMP_FILL``)."""
    try:
        with Image.open(path) as image:
            rgba = image.convert("RGBA")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    opaque = np.asarray(rgba)[..., 3] >= ALPHA_THRESHOLD
    count = int(opaque.sum())
    if count < MIN_STAMP_PIXELS:
        return None
    rows, cols = np.flatnonzero(opaque.any(axis=1)), np.flatnonzero(opaque.any(axis=0))
    box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    if count < MIN_STAMP_FILL * (box[2] - box[0]) * (box[3] - box[1]):
        return None
    return rgba.crop(box)


def _mirrorable(png: Path) -> bool:
    dat = png.with_suffix(".dat")
    try:
        return "nomirror" not in dat.read_text(errors="replace").split()
    except OSError:
        return True


@functools.lru_cache(maxsize=8)
def _index(root: str) -> tuple[Stamp, ...]:
    folder = Path(root)
    if not folder.is_dir():
        raise StampsNotFoundError(f"no Tux Paint stamps at {folder}: {INSTALL_HINT}")
    stamps = []
    for png in sorted(folder.rglob("*.png")):
        relative = png.relative_to(folder).with_suffix("").as_posix()
        if "/" in relative and load_cutout(png) is not None:
            stamps.append(Stamp(png, relative, _mirrorable(png)))
    if not stamps:
        raise StampsNotFoundError(f"no usable cut-out (PNG in a category folder) under {folder}: {INSTALL_HINT}")
    return tuple(stamps)


def index_stamps(stamps_dir: str | os.PathLike = STAMPS_DIR) -> tuple[Stamp, ...]:
    """Every usable cut-out under ``stamps_dir``, sorted by path (indexed once per process and folder).

    A stamp is a PNG inside a category folder (nested folders allowed; other files are ignored) that loads
    and is not nearly empty. Raises ``StampsNotFoundError`` saying how to install the package when missing.
    """
    return _index(str(Path(stamps_dir).resolve()))


def available_textures() -> tuple[str, ...]:
    """The texture backgrounds that load offline from the installed scikit-image."""
    return tuple(name for name in TEXTURES if photo(name) is not None)


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    start, end = rng.uniform(0, 255, (2, 3))
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    t = xx * math.cos(angle) + yy * math.sin(angle)
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-9)
    return _to_uint8(start + (end - start) * t[..., None])


def _noise(rng: np.random.Generator, size: int) -> np.ndarray:
    sigma = size * rng.uniform(0.03, 0.15)
    field = ndimage.gaussian_filter(rng.standard_normal((size, size, 3)), sigma=(sigma, sigma, 0), mode="wrap")
    low, high = field.min(axis=(0, 1)), field.max(axis=(0, 1))
    field = (field - low) / np.maximum(high - low, 1e-9)
    base, amplitude = rng.uniform(40, 215, 3), rng.uniform(40, 160, 3)
    return _to_uint8(base + amplitude * (field - 0.5))


def _photo(rng: np.random.Generator, size: int, names: Sequence[str]) -> tuple[np.ndarray, str]:
    name = names[rng.integers(len(names))]
    texture = photo(name)
    side = max(8, int(rng.uniform(0.3, 1.0) * min(texture.shape[:2])))
    top = rng.integers(0, texture.shape[0] - side + 1)
    left = rng.integers(0, texture.shape[1] - side + 1)
    crop = np.rot90(texture[top : top + side, left : left + side], k=int(rng.integers(4)))
    channels = crop.shape[2]
    image = Image.fromarray(np.ascontiguousarray(crop[..., 0] if channels == 1 else crop))
    resized = np.asarray(image.resize((size, size), RESAMPLE), dtype=np.float64)
    if channels == 1:
        low, high = rng.uniform(0, 255, (2, 3))
        return _to_uint8(low + (high - low) * resized[..., None] / 255.0), name
    return _to_uint8(resized), name


@dataclass(frozen=True)
class Scene:
    """One scene of ``size×size`` pixels with K objects (in paste order; later ones occlude earlier ones).

    - ``image``: PIL RGB image;
    - ``masks``: ``K×size×size`` bool, the *visible* pixels of each object (disjoint; their union is exactly
      the set of pixels taken from cut-outs);
    - ``categories``, ``identities``: per object its stamp's category folder and identity (``Stamp``);
    - ``boxes``: ``K×4`` int ``(x0, y0, x1, y1)``, end exclusive: where each resized cut-out was pasted;
    - ``mirrored``: whether each cut-out was mirrored left-right;
    - ``background``: ``gradient``, ``noise``, ``texture:<scikit-image sample>``, ``photo:<sample>`` (a
      ``SceneStyle`` pool's backdrop, ``+N`` with N distractors) or ``given``.
    """

    image: Image.Image
    masks: np.ndarray
    categories: tuple[str, ...]
    identities: tuple[str, ...]
    boxes: np.ndarray
    mirrored: tuple[bool, ...]
    background: str

    @property
    def largest(self) -> int:
        """Index of the object with the most visible pixels (the first one on ties)."""
        return int(np.argmax(self.masks.reshape(len(self.masks), -1).sum(axis=1)))

    @property
    def category(self) -> str:
        """The scene's class: the category of its largest visible object."""
        return self.categories[self.largest]

    def instance_map(self) -> np.ndarray:
        """``size×size`` uint8: 0 on the background, k + 1 on the visible pixels of object k."""
        labels = np.zeros(self.masks.shape[1:], dtype=np.uint8)
        for k, mask in enumerate(self.masks):
            labels[mask] = k + 1
        return labels


class SceneGenerator:
    """Deterministic scenes: 1–4 (``min_objects``..``max_objects``) cut-outs at random scale (longest side
    ``SCALE_RANGE`` of the image), position (fully inside the frame) and left-right mirroring, pasted in turn
    onto a background (a two-colour gradient, smoothed colour noise, or a crop of a scikit-image texture or
    photo, tinted when grey). A paste that would hide more than ``MIN_VISIBLE`` of an earlier object, or
    keep fewer than ``min_pixels`` of its own, is redrawn (up to ``PLACEMENT_TRIES`` times, ten times as
    often for the first ``min_objects``, then the object is dropped). Cut-outs are drawn uniformly among the
    usable stamps minus the folders in ``exclude`` (by default ``EXCLUDED``: letters, digits and operators
    are glyphs, not objects), optionally restricted to some top-level ``categories``. Scene ``index``
    depends only on ``(seed, index)``, so workers of a DataLoader reproduce it byte for byte.
    """

    def __init__(
        self,
        size: int = 64,
        seed: int = 0,
        *,
        min_objects: int = 1,
        max_objects: int = 4,
        stamps_dir: str | os.PathLike = STAMPS_DIR,
        categories: Sequence[str] | None = None,
        exclude: Sequence[str] = EXCLUDED,
        style: SceneStyle | None = None,
    ) -> None:
        if size < 16:
            raise ValueError(f"size must be at least 16 pixels, got {size}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if not 1 <= min_objects <= max_objects <= 255:
            raise ValueError(f"need 1 <= min_objects <= max_objects <= 255, got {min_objects}, {max_objects}")
        excluded = tuple(prefix.rstrip("/") + "/" for prefix in exclude)
        stamps = tuple(s for s in index_stamps(stamps_dir) if not s.identity.startswith(excluded))
        if categories is not None:
            wanted = set(categories)
            stamps = tuple(s for s in stamps if s.category in wanted)
        if not stamps:
            raise ValueError(f"no stamps left under {stamps_dir} (categories {categories}, excluding {list(exclude)})")
        self.size, self.seed = size, seed
        self.min_objects, self.max_objects = min_objects, max_objects
        self.stamps_dir = Path(stamps_dir)
        self.exclude = tuple(exclude)
        self.stamps = stamps
        self.classes: tuple[str, ...] = tuple(sorted({s.category for s in stamps}))
        self.min_pixels = max(16, size * size // 500)
        self.textures = available_textures()
        self.style = SceneStyle() if style is None else style

    def _rngs(self, index: int) -> tuple[np.random.Generator, np.random.Generator]:
        """Scene ``index``'s background and object generators; with ``style.shared_backdrops`` K the background
        one is scene ``index mod K``'s."""
        if index < 0:
            raise IndexError(f"scene index must be >= 0, got {index}")
        background, objects = np.random.SeedSequence([self.seed, index]).spawn(2)
        if self.style.shared_backdrops:
            background, _ = np.random.SeedSequence([self.seed, index % self.style.shared_backdrops]).spawn(2)
        return np.random.default_rng(background), np.random.default_rng(objects)

    def background(self, index: int) -> tuple[np.ndarray, str]:
        """Scene ``index``'s background (``size×size×3`` uint8) and its kind."""
        rng, _ = self._rngs(index)
        if self.style.pool is not None:
            canvas, name = backdrop(rng, self.size, self.style.pool)
            count = int(rng.integers(0, self.style.distractors + 1)) if self.style.distractors else 0
            for _ in range(count):
                distractor(rng, canvas, self.style.pool, flat=self.style.flat_distractors)
            return canvas, f"photo:{name}" + (f"+{count}" if count else "")
        kinds = BACKGROUNDS if self.textures else BACKGROUNDS[:2]
        kind = kinds[rng.integers(len(kinds))]
        if kind == "gradient":
            return _gradient(rng, self.size), kind
        if kind == "noise":
            return _noise(rng, self.size), kind
        image, name = _photo(rng, self.size, self.textures)
        return image, f"texture:{name}"

    def scene(self, index: int, background: np.ndarray | None = None) -> Scene:
        """Scene ``index``; ``background`` (``size×size×3`` uint8) replaces the drawn one, objects unchanged."""
        _, rng = self._rngs(index)
        if background is None:
            canvas, kind = self.background(index)
            canvas = canvas.copy()
        else:
            canvas, kind = np.array(background, dtype=np.uint8), "given"
            if canvas.shape != (self.size, self.size, 3):
                raise ValueError(f"background must be {self.size}×{self.size}×3, got {canvas.shape}")
        full: list[np.ndarray] = []
        visible: list[np.ndarray] = []
        placed: list[tuple[Stamp, tuple[int, int, int, int], bool]] = []
        for _ in range(int(rng.integers(self.min_objects, self.max_objects + 1))):
            tries = PLACEMENT_TRIES * (10 if len(placed) < self.min_objects else 1)
            for _ in range(tries):
                candidate = self._draw(rng)
                if candidate is None:
                    continue
                stamp, rgba, box, mirror = candidate
                new = np.zeros((self.size, self.size), dtype=bool)
                new[box[1] : box[3], box[0] : box[2]] = rgba[..., 3] >= ALPHA_THRESHOLD
                if any((v & ~new).sum() < MIN_VISIBLE * f.sum() for v, f in zip(visible, full, strict=True)):
                    continue
                region = canvas[box[1] : box[3], box[0] : box[2]]
                opaque = rgba[..., 3] >= ALPHA_THRESHOLD
                if self.style.hard:
                    region[opaque] = rgba[..., :3][opaque]
                else:
                    region[:] = composite(rng, region, rgba, opaque, blend=self.style.blend, grain=self._grain(rng, rgba.shape[:2]))
                visible = [v & ~new for v in visible] + [new]
                full.append(new)
                placed.append((stamp, box, mirror))
                break
        if not placed:
            raise RuntimeError(f"could not place any cut-out in scene {index} of {self.size}×{self.size} pixels")
        return Scene(
            image=Image.fromarray(canvas, "RGB"),
            masks=np.stack(visible),
            categories=tuple(s.category for s, _, _ in placed),
            identities=tuple(s.identity for s, _, _ in placed),
            boxes=np.array([b for _, b, _ in placed], dtype=np.int64).reshape(-1, 4),
            mirrored=tuple(m for _, _, m in placed),
            background=kind,
        )

    def _grain(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray | None:
        """``h×w`` shading factors from a photograph's grain (``style.texture``), or None."""
        if not self.style.texture:
            return None
        patch, _ = backdrop(rng, max(shape), self.style.pool or "train")
        luminance = patch[: shape[0], : shape[1]] @ np.array([0.299, 0.587, 0.114]) / 255.0
        strength = rng.uniform(0, self.style.texture)
        return 1 + strength * (luminance - luminance.mean()) / max(float(luminance.std()), 1e-3) * 0.5

    def _draw(self, rng: np.random.Generator) -> tuple[Stamp, np.ndarray, tuple[int, int, int, int], bool] | None:
        """A random stamp resized, maybe mirrored, and its random box; None when too few pixels survive."""
        stamp = self.stamps[rng.integers(len(self.stamps))]
        cutout = load_cutout(stamp.path)
        side = rng.uniform(*self.style.scale_range) * self.size
        factor = side / max(cutout.size)
        width = min(self.size, max(1, round(cutout.width * factor)))
        height = min(self.size, max(1, round(cutout.height * factor)))
        mirror = bool(stamp.mirror and rng.random() < 0.5)
        left = int(rng.integers(0, self.size - width + 1))
        top = int(rng.integers(0, self.size - height + 1))
        resized = cutout.resize((width, height), RESAMPLE)
        if mirror:
            resized = resized.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        rgba = np.asarray(resized)
        box = (left, top, left + width, top + height)
        if self.style.soften:
            rgba, box = soften(rng, rgba, box, sigma=self.style.soften * self.size / 128, size=self.size)
        if int((rgba[..., 3] >= ALPHA_THRESHOLD).sum()) < self.min_pixels:
            return None
        return stamp, rgba, box, mirror


class SceneDataset(Dataset):
    """Scenes ``0 .. length-1`` of ``SceneGenerator(size, seed, **options)`` as ``(sample, label)``.

    ``sample`` is ``transform(image)`` (the PIL image without a transform; a two-view training transform
    works as well); ``label`` indexes ``classes`` (sorted category folders) with the category of the largest
    visible object, for kNN evaluation. Scenes are generated on the fly: any ``length`` costs nothing.
    """

    def __init__(
        self,
        length: int,
        size: int = 64,
        seed: int = 0,
        transform: Callable[[Image.Image], Any] | None = None,
        **options: Any,
    ) -> None:
        if length < 0:
            raise ValueError(f"length must be >= 0, got {length}")
        self.length, self.transform = length, transform
        self.generator = SceneGenerator(size, seed, **options)
        self.classes = self.generator.classes
        self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[Any, int]:
        if not 0 <= index < self.length:
            raise IndexError(f"scene index {index} out of range for {self.length} scenes")
        scene = self.generator.scene(index)
        sample = scene.image if self.transform is None else self.transform(scene.image)
        return sample, self.class_to_idx[scene.category]


@dataclass(frozen=True)
class SceneRecord:
    """A written scene: image path, instance-mask path, its objects' categories and identities, label."""

    image: Path
    mask: Path
    split: str
    index: int
    label: int
    categories: tuple[str, ...]
    identities: tuple[str, ...]

    def load_masks(self) -> np.ndarray:
        """``K×H×W`` bool visible masks, read from the instance PNG (pixel value k + 1 = object k)."""
        with Image.open(self.mask) as image:
            labels = np.asarray(image)
        return labels[None] == np.arange(1, len(self.categories) + 1, dtype=labels.dtype)[:, None, None]


@dataclass(frozen=True)
class SceneTree:
    """A folder written by ``write_scenes``: settings, ``classes`` and per split its records."""

    root: Path
    size: int
    seed: int
    classes: tuple[str, ...]
    splits: dict[str, tuple[SceneRecord, ...]]

    def records(self, split: str = "val") -> tuple[SceneRecord, ...]:
        if split not in self.splits:
            raise ValueError(f"{self.root} has no split {split!r}; it has {sorted(self.splits)}")
        return self.splits[split]

    def pairs(self, split: str = "val") -> Iterator[tuple[Path, np.ndarray]]:
        """``(image path, K×H×W bool masks)`` for every scene of ``split``."""
        for record in self.records(split):
            yield record.image, record.load_masks()


def write_scenes(
    out: str | os.PathLike,
    *,
    train: int,
    val: int,
    size: int = 64,
    seed: int = 0,
    backgrounds: str = "procedural",
    progress: Callable[[str, int, int], None] | None = None,
    **options: Any,
) -> Path:
    """Write ``train`` + ``val`` scenes under ``out`` (a new or empty folder) and return its index path.

    Layout: ``<split>/<category>/<id>.png`` (ImageFolder: class = category of the largest visible object),
    ``masks/<split>/<id>.png`` (uint8 instance map: 0 background, k + 1 object k) and ``scenes.json`` (seed,
    size, classes, per scene its paths, label, categories and identities). The train split is drawn with
    ``seed``, the validation split with ``seed + VAL_SEED_OFFSET``, so they share no scene. ``backgrounds``
    ``photos`` draws the ``textured`` benchmark (``SceneStyle.textured``): train scenes on the ``train``
    backdrops, validation scenes alternately on the ``calibration`` (even ids) and ``heldout`` (odd ids) ones,
    the way a profile splits a folder. ``options`` go to ``SceneGenerator``. ``progress(split, done, total)``
    is called after each scene.
    """
    root = Path(out)
    if train < 0 or val < 0:
        raise ValueError("the numbers of train and val scenes must be >= 0")
    if backgrounds not in ("procedural", "photos"):
        raise ValueError(f"backgrounds must be 'procedural' or 'photos', got {backgrounds!r}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and is not an empty folder: choose a new one")

    def generator(split_seed: int, pool: str) -> SceneGenerator:
        style = SceneStyle.textured(pool) if backgrounds == "photos" else None
        return SceneGenerator(size, split_seed, style=style, **options)

    val_seed = seed + VAL_SEED_OFFSET
    generators = {"train": generator(seed, "train"), "val": generator(val_seed, "calibration")}
    odd_val = generator(val_seed, "heldout") if backgrounds == "photos" else generators["val"]
    classes = generators["train"].classes
    class_to_idx = {name: i for i, name in enumerate(classes)}
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, count in (("train", train), ("val", val)):
        entries = splits.setdefault(split, [])
        for index in range(count):
            scene = (odd_val if split == "val" and index % 2 else generators[split]).scene(index)
            name = f"{index:06d}.png"
            image = Path(split) / scene.category / name
            mask = Path("masks") / split / name
            for relative in (image, mask):
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
            scene.image.save(root / image)
            Image.fromarray(scene.instance_map(), "L").save(root / mask)
            entries.append(
                {
                    "index": index,
                    "image": image.as_posix(),
                    "mask": mask.as_posix(),
                    "label": class_to_idx[scene.category],
                    "categories": list(scene.categories),
                    "identities": list(scene.identities),
                    "boxes": scene.boxes.tolist(),
                    "background": scene.background,
                }
            )
            if progress is not None:
                progress(split, index + 1, count)
    index_data = {
        "format": FORMAT,
        "version": 1,
        "size": size,
        "seed": seed,
        "split_seeds": {split: generators[split].seed for split in SPLITS},
        "backgrounds": backgrounds,
        "stamps_dir": str(generators["train"].stamps_dir),
        "excluded": list(generators["train"].exclude),
        "alpha_threshold": ALPHA_THRESHOLD,
        "classes": list(classes),
        "splits": splits,
    }
    text = json.dumps(index_data, indent=1)
    return atomic_write(root / INDEX_NAME, lambda temporary: temporary.write_text(text))


def read_scenes(root: str | os.PathLike) -> SceneTree:
    """Open a folder written by ``write_scenes`` (``lewel data scenes``) through its ``scenes.json``."""
    folder = Path(root)
    path = folder / INDEX_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: write scenes with `lewel data scenes --out {folder} ...`")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not a scenes index (format {FORMAT!r})")
    splits = {
        split: tuple(
            SceneRecord(
                image=folder / entry["image"],
                mask=folder / entry["mask"],
                split=split,
                index=int(entry["index"]),
                label=int(entry["label"]),
                categories=tuple(entry["categories"]),
                identities=tuple(entry["identities"]),
            )
            for entry in entries
        )
        for split, entries in data["splits"].items()
    }
    return SceneTree(folder, int(data["size"]), int(data["seed"]), tuple(data["classes"]), splits)
