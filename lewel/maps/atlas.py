"""The map atlas: for every map index of a model, where across a whole data set that map concentrates most.

``build_atlas(out)`` reads the shards ``lewel.maps.extraction.extract_maps`` wrote to ``out`` and, streaming
shard by shard, keeps for each map index m:

- its **top N** (image, view) pairs under two scores of how concentrated map m is there (higher first; ties
  go to the lower image index, then the lower view): ``peak_ratio``, the peak ÷ the uniform value 1/(h·w);
  and ``stretched_mass``, the share of the map *stretched to its own range* ((p − min)/(max − min), as the
  maps are drawn) held by its ⌈10 %⌉ highest cells (``TOP_FRACTION``), which ranks the shape of a nearly
  flat map rather than its tiny absolute height; each with the peak cell (row, column, and its box in
  original pixels);
- the means of its ``lewel.maps.map_statistics`` and the shares of the three patterns;
- with object masks: its AUROC (``lewel.maps.map_auroc``) and pointing rate (``lewel.maps.pointing_hits``,
  next to its chance), means over the (image, view) pairs that have both object and background cells, as
  ``lewel.maps.profiles.index_means`` takes them.

When the checkpoint has a current profile with measured patterns (``lewel.maps.profiles``, version 3), each index
also gets its measured ``pattern``, its ``top_categories`` (name and held-out AUROC, best first) and its
preferred ``category``, and the atlas ``measured_patterns`` (the counts next to the random controls').

``write_atlas`` writes ``atlas.json``, ``index.html`` (one section per map index, thumbnails with the map
overlaid, stretched to its range, and the peak cell outlined) and ``thumbs/*.png``, linked relatively so that
the page opens from disk. ``make_atlas`` does both steps (extraction, then atlas) into a folder that appears
whole or not at all (the service's on-demand build). The page is drawn by ``lewel.drawing.atlas_page``; the
service reads and serves atlases with ``api.atlas_files`` (``api/routes/atlas.py``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..data.sources import UnreadableImage, reopen_source
from ..drawing.atlas_page import CRITERIA_TITLES, atlas_html  # CRITERIA_TITLES also as lewel.maps.atlas.CRITERIA_TITLES
from ..files.checkpoints import atomic_write
from ..files.shards import iter_shards, read_index
from ..models.heads import map_aligned_index, map_group
from .extraction import extract_maps
from .mask_scores import map_auroc, pointing_chance, pointing_hits
from .profiles import ProfileError, find_profile, has_patterns, patterns_line
from .statistics import PATTERNS, TOP_FRACTION

ATLAS_FORMAT = "lewel-map-atlas"
ATLAS_VERSION = 1
ATLAS_NAME = "atlas.json"
HTML_NAME = "index.html"
THUMB_DIR = "thumbs"
DEST_NAME = "atlas"  #: ``lewel atlas OUT`` writes to ``OUT/atlas/`` unless told otherwise
DEFAULT_TOP = 8
DEFAULT_THUMB = 96  #: thumbnail side in pixels
CRITERIA = ("peak_ratio", "stretched_mass")
MEAN_STATISTICS = ("entropy", "normalized_entropy", "effective_area", "active_area", "peak_ratio", "top_mass", "blobs")
MISSING_GREY = 128  #: background of a thumbnail whose image cannot be opened again


# --- Scores ----------------------------------------------------------------------------------------------------


def concentration(maps: np.ndarray | torch.Tensor) -> dict[str, np.ndarray]:
    """Scores of maps ``...×h×w`` (renormalised to sum 1, float64): ``peak_ratio`` (max × h·w),
    ``stretched_mass`` (the ⌈``TOP_FRACTION`` · h·w⌉ highest cells' share of the range-stretched map; a flat
    map counts as uniform) and ``peak`` (flat index of the first largest cell), each of shape ``...``."""
    p = np.asarray(maps, dtype=np.float64)
    cells = p.shape[-1] * p.shape[-2]
    flat = p.reshape(*p.shape[:-2], cells)
    flat = flat / flat.sum(axis=-1, keepdims=True)
    high, low = flat.max(axis=-1, keepdims=True), flat.min(axis=-1, keepdims=True)
    span = high - low
    stretched = np.where(span > 0, (flat - low) / np.where(span > 0, span, 1.0), 1.0)
    k = math.ceil(TOP_FRACTION * cells)
    top = -np.sort(-stretched, axis=-1)[..., :k].sum(axis=-1)
    return {
        "peak_ratio": high[..., 0] * cells,
        "stretched_mass": top / stretched.sum(axis=-1),
        "peak": flat.argmax(axis=-1),
    }


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


class _Top:
    """The best ``n`` (image, view) entries of each of d maps under one score, merged shard by shard.

    Kept per map (``d×k``, k <= n): ``score``, ``order`` (image index × V + view, the tie-breaker),
    ``maps`` (``d×k×h×w``), and the entry's box, flip, image size and id."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.fields: dict[str, np.ndarray] | None = None

    def merge(self, candidates: dict[str, np.ndarray]) -> None:
        """``candidates``: the same fields with ``d×M`` leading axes."""
        merged = candidates if self.fields is None else {
            name: np.concatenate([self.fields[name], value], axis=1) for name, value in candidates.items()
        }
        order = np.lexsort((merged["order"], -merged["score"]), axis=-1)[:, : self.n]
        self.fields = {
            name: np.take_along_axis(value, order.reshape(order.shape + (1,) * (value.ndim - 2)), axis=1)
            for name, value in merged.items()
        }


# --- Building ------------------------------------------------------------------------------------------------------


def _accumulate(out: Path, index: dict[str, Any], top: int, progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    """One pass over the shards: the tops of both criteria, sums of the statistics, AUROC and pointing."""
    d, h = index["model"]["d"], index["model"]["h"]
    views = index["views_per_image"]
    tops = {name: _Top(top) for name in CRITERIA}
    sums = {name: np.zeros(d) for name in MEAN_STATISTICS}
    patterns = np.zeros((d, len(PATTERNS)))
    entries = 0
    auroc_sum, auroc_count = np.zeros(d), np.zeros(d)
    hits, chance, scored_views = np.zeros(d), 0.0, 0
    for done, shard in enumerate(iter_shards(out, index), start=1):
        count = len(shard["index"])
        if count:
            maps = shard["maps"]  # N×V×d×h×w
            grid = maps.shape[-2:]
            flat_maps = maps.reshape(count * views, d, *grid)
            scores = concentration(flat_maps)  # fields (N·V)×d
            order = (shard["index"][:, None] * views + np.arange(views)[None]).reshape(-1)
            per_entry = {
                "order": np.broadcast_to(order[None], (d, order.size)),
                "view": np.broadcast_to(np.tile(np.arange(views), count)[None], (d, order.size)),
                "maps": flat_maps.transpose(1, 0, 2, 3),
                "box": np.broadcast_to(shard["boxes"].reshape(-1, 4)[None], (d, order.size, 4)),
                "flip": np.broadcast_to(shard["flips"].reshape(-1)[None], (d, order.size)),
                "size": np.broadcast_to(np.repeat(shard["sizes"], views, axis=0)[None], (d, order.size, 2)),
                "id": np.broadcast_to(np.repeat(shard["ids"].astype(object), views)[None], (d, order.size)),
                "peak": scores["peak"].T,
                **{name: scores[name].T for name in CRITERIA},
            }
            for name in CRITERIA:
                tops[name].merge({**per_entry, "score": per_entry[name]})
            for name in MEAN_STATISTICS:
                sums[name] += shard[f"stat_{name}"].astype(np.float64).sum(axis=(0, 1))
            pattern = shard["stat_pattern"].reshape(-1, d)
            for k in range(len(PATTERNS)):
                patterns[:, k] += (pattern == k).sum(axis=0)
            entries += count * views
            if "coverage" in shard:
                coverage = torch.from_numpy(shard["coverage"].reshape(count * views, *grid).astype(np.float64))
                tensor = torch.from_numpy(flat_maps.astype(np.float64))
                auroc = map_auroc(tensor, coverage).numpy()
                valid = ~np.isnan(auroc[:, 0])
                auroc_sum += auroc[valid].sum(axis=0)
                auroc_count += valid.sum()
                hits += pointing_hits(tensor[valid], coverage[valid]).numpy().sum(axis=0)
                chance += float(pointing_chance(coverage[valid]).sum())
                scored_views += int(valid.sum())
        if progress is not None:
            progress(done, len(index["shards"]))
    return {
        "d": d, "h": h, "tops": tops, "sums": sums, "patterns": patterns, "entries": entries,
        "auroc": (auroc_sum, auroc_count), "pointing": (hits, chance, scored_views),
    }


def _cell_box(box: np.ndarray, flip: bool, cell: tuple[int, int], grid: tuple[int, int]) -> list[float]:
    """The box ``[x0, y0, x1, y1]`` (original pixels) of view cell ``(row, col)`` of a view cropped at ``box``."""
    x0, y0, x1, y1 = (float(v) for v in box)
    rows, cols = grid
    row, col = cell
    col = cols - 1 - col if flip else col
    width, height = (x1 - x0) / cols, (y1 - y0) / rows
    return [x0 + col * width, y0 + row * height, x0 + (col + 1) * width, y0 + (row + 1) * height]


def _records(acc: dict[str, Any], index: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per map index: means, pattern shares, AUROC, pointing and both top lists."""
    d, h, views = acc["d"], acc["h"], index["views_per_image"]
    grid = tuple(index["grid"])
    entries = max(acc["entries"], 1)
    auroc_sum, auroc_count = acc["auroc"]
    hits, chance, scored = acc["pointing"]
    records = []
    for m in range(d):
        lists: dict[str, list[dict[str, Any]]] = {}
        for name in CRITERIA:
            fields = acc["tops"][name].fields
            chosen = []
            for rank in range(0 if fields is None else fields["score"].shape[1]):
                order = int(fields["order"][m, rank])
                cell = divmod(int(fields["peak"][m, rank]), grid[1])
                image_index, view = divmod(order, views)
                chosen.append({
                    "rank": rank,
                    "image_index": image_index,
                    "id": str(fields["id"][m, rank]),
                    "view": view,
                    "score": float(fields["score"][m, rank]),
                    "peak_ratio": float(fields["peak_ratio"][m, rank]),
                    "stretched_mass": float(fields["stretched_mass"][m, rank]),
                    "cell": list(cell),
                    "cell_box": _cell_box(fields["box"][m, rank], bool(fields["flip"][m, rank]), cell, grid),
                    "box": [int(v) for v in fields["box"][m, rank]],
                    "flip": bool(fields["flip"][m, rank]),
                    "image_size": [int(v) for v in fields["size"][m, rank]],
                    "thumbnail": f"{THUMB_DIR}/m{m:04d}_i{image_index:07d}_v{view}.png",
                })
            lists[name] = chosen
        records.append({
            "index": m,
            "group": map_group(m, d, h),
            "aligned": map_aligned_index(m, d, h),
            "statistics": {name: float(acc["sums"][name][m] / entries) for name in MEAN_STATISTICS},
            "patterns": {name: float(acc["patterns"][m, k] / entries) for k, name in enumerate(PATTERNS)},
            "auroc": _finite(auroc_sum[m] / auroc_count[m]) if auroc_count[m] else None,
            "auroc_views": int(auroc_count[m]),
            "pointing": _finite(hits[m] / scored) if scored else None,
            "pointing_chance": _finite(chance / scored) if scored else None,
            "top": lists,
        })
    return records


ATLAS_CATEGORIES = 3  #: categories per map index the atlas keeps from the profile


def _measured(checkpoint: dict[str, Any], d: int) -> dict[str, Any] | None:
    """The profile next to the extracted checkpoint (``checkpoint["path"]``) when it is current and has
    measured patterns, else ``None`` (no sidecar, a stale or unreadable one, or one without patterns)."""
    path = checkpoint.get("path")
    if not path:
        return None
    try:
        profile = find_profile(path, d=d)
    except (ProfileError, OSError):
        return None
    return profile if has_patterns(profile) else None


def _measured_fields(profile: dict[str, Any] | None, m: int) -> dict[str, Any]:
    """Map index ``m``'s measured pattern, top categories and preferred category from ``profile``."""
    if profile is None:
        return {"pattern": None, "top_categories": [], "category": None}
    record = profile["maps"][m]
    preferred = record.get("category")
    return {
        "pattern": record.get("pattern"),
        "top_categories": [
            {"name": c["name"], "auroc_heldout": c.get("auroc_heldout")} for c in (record.get("categories") or [])[:ATLAS_CATEGORIES]
        ],
        "category": None if not preferred else {"name": preferred["name"], "significant": bool(preferred.get("significant"))},
    }


def build_atlas(
    out: str | os.PathLike,
    *,
    top: int = DEFAULT_TOP,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], dict[tuple[int, int, int], np.ndarray]]:
    """The atlas of the extraction in ``out`` as a JSON-friendly dict, and the maps its thumbnails show:
    ``(map index, image index, view) -> h×w`` float32. ``progress(done, total)`` counts shards."""
    if top < 1:
        raise ValueError(f"top must be >= 1, got {top}")
    out = Path(out)
    index = read_index(out)
    acc = _accumulate(out, index, top, progress)
    records = _records(acc, index)
    profile = _measured(index["checkpoint"], acc["d"])
    for record in records:
        record.update(_measured_fields(profile, record["index"]))
    shown: dict[tuple[int, int, int], np.ndarray] = {}
    for name in CRITERIA:
        fields = acc["tops"][name].fields
        if fields is None:
            continue
        for m in range(acc["d"]):
            for rank in range(fields["score"].shape[1]):
                image_index, view = divmod(int(fields["order"][m, rank]), index["views_per_image"])
                shown[m, image_index, view] = fields["maps"][m, rank].astype(np.float32)
    aurocs = [r["auroc"] for r in records if r["auroc"] is not None]
    atlas = {
        "format": ATLAS_FORMAT,
        "version": ATLAS_VERSION,
        "extraction": os.fspath(out.resolve()),
        "checkpoint": index["checkpoint"],
        "model": index["model"],
        "data": index["data"],
        "size": index["size"],
        "grid": index["grid"],
        "views_per_image": index["views_per_image"],
        "preset": index["preset"],
        "seed": index["seed"],
        "images": index["extracted"],
        "skipped": len(index["skipped"]),
        "entries": acc["entries"],
        "has_masks": index["has_masks"],
        "top": top,
        "criteria": {
            "peak_ratio": "peak value x h*w (1.0 = uniform)",
            "stretched_mass": f"share of the map stretched to its range ((p - min) / (max - min)) in its "
            f"ceil({TOP_FRACTION} * h*w) highest cells",
        },
        "mean_auroc": _finite(sum(aurocs) / len(aurocs)) if aurocs else None,
        "measured_patterns": patterns_line(profile["summary"]) if profile is not None else None,
        "maps": records,
    }
    return atlas, shown


# --- Writing -----------------------------------------------------------------------------------------------------


def _view_picture(image: Image.Image | None, entry: dict[str, Any], side: int) -> np.ndarray:
    """The entry's view as the model saw it geometrically (crop, flip, resize; no colour augmentation)."""
    if image is None:
        return np.full((side, side, 3), MISSING_GREY, dtype=np.uint8)
    crop = image if entry["view"] == 0 else image.crop(tuple(entry["box"]))
    if entry["flip"]:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(crop.convert("RGB").resize((side, side), Image.Resampling.BILINEAR))


def _thumbnail(picture: np.ndarray, heatmap: np.ndarray, cell: list[int]) -> Image.Image:
    """``picture`` with the map overlaid (stretched to its range) and its peak ``cell`` outlined."""
    from ..drawing.render import overlay

    blended = Image.fromarray(overlay(picture, heatmap, alpha=0.5, scale="range"))
    rows, cols = heatmap.shape
    side = blended.width
    row, col = cell
    box = [col * side / cols, row * side / rows, (col + 1) * side / cols - 1, (row + 1) * side / rows - 1]
    ImageDraw.Draw(blended).rectangle(box, outline=(255, 255, 255), width=max(1, side // 48))
    return blended


def write_thumbnails(
    atlas: dict[str, Any],
    shown: dict[tuple[int, int, int], np.ndarray],
    dest: Path,
    *,
    side: int = DEFAULT_THUMB,
    data_root: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> str | None:
    """Draw every thumbnail the atlas names into ``dest``, opening each image once; returns a note when the
    images could not be opened again (the maps are then drawn on grey). ``progress(done, total)`` counts
    the images drawn from."""
    note = None
    try:
        source = reopen_source(atlas["data"], root=data_root)
        positions = {image_id: i for i, image_id in enumerate(source.ids)}
    except (ValueError, OSError) as error:
        source, positions = None, {}
        note = f"the images could not be opened again ({error}); thumbnails show the maps on grey (lewel atlas --data DIR)"
    wanted: dict[str, list[dict[str, Any]]] = {}
    for record in atlas["maps"]:
        for entries in record["top"].values():
            for entry in entries:
                wanted.setdefault(entry["id"], []).append({**entry, "map": record["index"]})
    (dest / THUMB_DIR).mkdir(parents=True, exist_ok=True)
    for done, (image_id, entries) in enumerate(wanted.items(), start=1):
        image = None
        if source is not None and image_id in positions:
            try:
                image = source.load(positions[image_id]).image
            except UnreadableImage:
                image = None
        for entry in entries:
            path = dest / entry["thumbnail"]
            if path.is_file():
                continue
            heatmap = shown[entry["map"], entry["image_index"], entry["view"]]
            _thumbnail(_view_picture(image, entry, side), heatmap, entry["cell"]).save(path)
        if progress is not None:
            progress(done, len(wanted))
    return note


def write_atlas(
    out: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    *,
    top: int = DEFAULT_TOP,
    thumb_size: int = DEFAULT_THUMB,
    data_root: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    thumbnail_progress: Callable[[int, int], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Build the atlas of ``out`` and write ``atlas.json``, ``index.html`` and ``thumbs/`` to ``dest``
    (default ``out/atlas``); returns the atlas and ``dest``. ``progress`` counts shards read,
    ``thumbnail_progress`` images drawn from."""
    target = Path(dest) if dest is not None else Path(out) / DEST_NAME
    atlas, shown = build_atlas(out, top=top, progress=progress)
    target.mkdir(parents=True, exist_ok=True)
    for stale in (target / THUMB_DIR).glob("*.png"):
        stale.unlink()
    note = write_thumbnails(atlas, shown, target, side=thumb_size, data_root=data_root, progress=thumbnail_progress)
    if note is not None:
        atlas["thumbnails_note"] = note
    text = json.dumps(atlas, indent=1, allow_nan=False)
    atomic_write(target / ATLAS_NAME, lambda temporary: temporary.write_text(text + "\n"))
    page = atlas_html(atlas)
    atomic_write(target / HTML_NAME, lambda temporary: temporary.write_text(page, encoding="utf-8"))
    return atlas, target


#: the stages ``make_atlas`` reports, in order
MAKE_STAGES = ("maps", "atlas", "thumbnails")
BUILDING_PREFIX = ".building-"  #: ``.NAME.building-PID-*``: a folder process PID's ``make_atlas`` is filling for ``NAME``
REPLACED_PREFIX = ".replaced-"  #: ``.NAME.replaced-*``: the atlas a finished build has just replaced


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine); a PID we may not signal exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_pid(folder: Path, prefix: str) -> int | None:
    """The PID in ``folder``'s name ``…PREFIXPID-…`` (``prefix`` ends with ``-``), or ``None``."""
    pid, dash, _ = folder.name.split(prefix, 1)[-1].partition("-")
    return int(pid) if dash and pid.isdigit() else None


@dataclass(frozen=True)
class StaleFolder:
    """A leftover ``remove_stale_builds`` removed: its ``path``, what it was (``kind``: ``building``, a half-built
    atlas; ``replaced``, an atlas a finished build had replaced; ``temporary``, a service's temporary atlas
    root), the atlas ``name`` it was for (``None`` for a temporary root), the ``pid`` of the process that left
    it (when its name has one) and the ``files`` and ``bytes`` it held."""

    path: Path
    kind: str
    name: str | None
    pid: int | None
    files: int
    bytes: int


def _contents(folder: Path) -> tuple[int, int]:
    """Files and bytes under ``folder`` (links not followed)."""
    files = size = 0
    for entry in folder.rglob("*"):
        if entry.is_file() and not entry.is_symlink():
            files += 1
            size += entry.lstat().st_size
    return files, size


def remove_stale_builds(parent: str | os.PathLike, temporary_prefix: str | None = None) -> list[StaleFolder]:
    """Remove the leftovers of killed builds under ``parent``: ``.NAME.building-PID-*`` folders of processes
    that are gone, and every ``.NAME.replaced-*``; with ``temporary_prefix`` also the ``PREFIXPID-*`` folders
    (a service's temporary atlas root) of processes that are gone. Folders of live processes stay (another
    service may be building); returns what was removed, with what it held (for the caller's log)."""
    parent = Path(parent)
    if not parent.is_dir():
        return []
    removed = []
    for entry in parent.iterdir():
        name, pid = entry.name, None
        if name.startswith(".") and REPLACED_PREFIX in name:
            kind, atlas, stale = "replaced", name[1:].split(REPLACED_PREFIX, 1)[0], True
        elif name.startswith(".") and BUILDING_PREFIX in name:
            pid = owner_pid(entry, BUILDING_PREFIX)
            kind, atlas, stale = "building", name[1:].split(BUILDING_PREFIX, 1)[0], pid is None or not process_alive(pid)
        elif temporary_prefix is not None and name.startswith(temporary_prefix):
            pid = owner_pid(entry, temporary_prefix)
            kind, atlas = "temporary", None
            stale = pid is not None and pid != os.getpid() and not process_alive(pid)
        else:
            continue
        if stale and entry.is_dir() and not entry.is_symlink():
            files, size = _contents(entry)
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(StaleFolder(entry, kind, atlas, pid, files, size))
    return removed


def _swap_in(built: Path, dest: Path) -> None:
    """Put the folder ``built`` at ``dest`` by renames: ``dest`` is the old atlas or the new one, whole (for a
    moment, between the two renames, none)."""
    replaced = None
    if dest.exists():
        replaced = dest.with_name(f".{dest.name}{REPLACED_PREFIX}{uuid.uuid4().hex[:8]}")
        os.replace(dest, replaced)
    os.replace(built, dest)
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)


def make_atlas(
    checkpoint: str | os.PathLike,
    data: str,
    dest: str | os.PathLike,
    *,
    size: int = 128,
    top: int = DEFAULT_TOP,
    thumb_size: int = DEFAULT_THUMB,
    batch_size: int = 32,
    shard_size: int = 32,
    device: str = "cpu",
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Extract the maps of ``data`` (``lewel.maps.extraction.open_source``: ``scenes:N``, a folder) with
    ``checkpoint`` at ``size`` px (view 0 only) and write their atlas to ``dest``; returns the atlas.

    The work happens in ``.NAME.building-*`` next to ``dest`` and the finished atlas is renamed into place,
    so ``dest`` never holds half an atlas; the maps themselves are not kept (``extraction`` is null). Leftover
    folders of a killed build of the same ``dest`` are removed first (one build per ``dest`` at a time).
    ``progress(stage, done, total)`` reports each stage of ``MAKE_STAGES``: images extracted (a shard of
    ``shard_size`` at a time), shards read, images drawn from; an exception it raises stops the build and
    leaves ``dest`` as it was."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for prefix in (BUILDING_PREFIX, REPLACED_PREFIX):
        for leftover in dest.parent.glob(f".{dest.name}{prefix}*"):
            shutil.rmtree(leftover, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}{BUILDING_PREFIX}{os.getpid()}-", dir=dest.parent))

    def stage(name: str) -> Callable[[int, int], None] | None:
        return None if progress is None else lambda done, total: progress(name, done, total)

    try:
        extract_maps(
            checkpoint, data, work / "maps", size=size, batch_size=batch_size, shard_size=shard_size, workers=0,
            writers=1, device=device, progress=stage("maps"),
        )
        atlas, built = write_atlas(
            work / "maps", work / DEST_NAME, top=top, thumb_size=thumb_size, progress=stage("atlas"),
            thumbnail_progress=stage("thumbnails"),
        )
        atlas["extraction"] = None
        text = json.dumps(atlas, indent=1, allow_nan=False)
        atomic_write(built / ATLAS_NAME, lambda temporary: temporary.write_text(text + "\n"))
        _swap_in(built, dest)
        return atlas
    finally:
        shutil.rmtree(work, ignore_errors=True)
