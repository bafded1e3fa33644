"""An atlas as a folder: ``atlas.json`` (``lewel.maps.atlas.build_atlas``'s record), ``index.html`` (the page of
``lewel.drawing.atlas_page``) and ``thumbs/*.png``, linked relatively so that the page opens from disk.

``write_atlas`` builds the atlas of an extraction and writes the folder: one thumbnail per top entry, the view as
the model saw it with the map overlaid (stretched to its range, as ``lewel.drawing.render.overlay`` draws it) and
the peak cell outlined. ``make_atlas`` does both steps (``lewel.maps.extraction.extract_maps``, then
``write_atlas``) into a folder that appears whole or not at all (the service's on-demand build, which
``api.atlas_builds`` runs); ``remove_stale_builds`` clears what killed builds left. This composite needs the data
sources (to open the images again), the maps and the drawing, so it lives here, in the highest of those layers.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..data.sources import UnreadableImage, reopen_source
from ..files.checkpoints import atomic_write
from ..maps.atlas import ATLAS_NAME, DEFAULT_TOP, THUMB_DIR, build_atlas
from ..maps.extraction import extract_maps
from .atlas_page import atlas_html
from .render import overlay

HTML_NAME = "index.html"
DEST_NAME = "atlas"  #: ``lewel atlas OUT`` writes to ``OUT/atlas/`` unless told otherwise
DEFAULT_THUMB = 96  #: thumbnail side in pixels
MISSING_GREY = 128  #: background of a thumbnail whose image cannot be opened again


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


# --- On-demand builds --------------------------------------------------------------------------------------------

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
