"""``lewel data scenes``, ``eval-maps``, ``profile``, ``cache``, ``maps`` and ``atlas``: data made and maps
measured, with a progress bar on the long ones."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(unit: str, desc: str, disable: bool) -> Iterator[Callable[[int, int], None]]:
    """A tqdm bar of unknown length, given as the ``progress(done, total)`` callback the library calls."""
    from tqdm import tqdm

    with tqdm(total=None, unit=unit, desc=desc, disable=disable) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield progress


def data_scenes(args: argparse.Namespace) -> int:
    """``lewel data scenes``: generated scenes with their masks, written as an image folder."""
    from ..data.scenes import write_scenes

    def progress(split: str, done: int, total: int) -> None:
        if done % 1000 == 0 or done == total:
            print(f"{split}: {done}/{total} scenes", file=sys.stderr)

    index = write_scenes(
        args.out, train=args.train, val=args.val, size=args.size, seed=args.seed, progress=progress,
        backgrounds=args.backgrounds, min_objects=args.min_objects, max_objects=args.max_objects, stamps_dir=args.stamps_dir,
    )
    on = " on photographs" if args.backgrounds == "photos" else ""
    print(f"wrote {args.train} train and {args.val} val scenes{on} of {args.size}×{args.size} px to {args.out} ({index})")
    return 0


def eval_maps(args: argparse.Namespace) -> int:
    """``lewel eval-maps``: a checkpoint's maps scored on masked data; 2 for a model without maps."""
    from ..inference import MapsUnavailableError
    from ..maps.evaluation import evaluate_maps, format_summary

    try:
        result = evaluate_maps(
            args.checkpoint, args.data, split=args.split, size=args.size, batch_size=args.batch_size,
            num_groups=args.num_groups, device=args.device, out=args.out, profile=args.profile,
        )
    except MapsUnavailableError as error:
        print(f"lewel eval-maps: error: {error}", file=sys.stderr)
        return 2
    print(format_summary(result))
    print(f"wrote {args.out}")
    return 0


def profile(args: argparse.Namespace) -> int:
    """``lewel profile``: the map profile of a checkpoint, written beside it (or to ``--out``)."""
    from ..inference import MapsUnavailableError
    from ..maps.family_cache import ControlCache
    from ..maps.profiles.build import build_profile
    from ..maps.profiles.sidecar import sidecar_path, write_profile
    from ..maps.profiles.text import format_profile

    out = args.out or sidecar_path(args.checkpoint)
    cache = ControlCache(enabled=args.cache)
    with progress_bar("image", "profile", disable=args.quiet) as progress:
        try:
            profile = build_profile(
                args.checkpoint, data=args.data, images=args.images, size=args.size, batch_size=args.batch_size,
                device=args.device, fraction=args.fraction, control_seeds=args.control_seeds,
                control_schemes=[x for x in args.control_schemes.split(",") if x], num_groups=args.num_groups,
                patterns=args.patterns, progress=progress, cache=cache,
            )
        except (MapsUnavailableError, ValueError) as error:
            print(f"lewel profile: error: {error}", file=sys.stderr)
            return 2
    path = write_profile(profile, out)
    print(format_profile(profile))
    if cache.enabled:
        print(f"random controls: {cache.hits} read from the cache {cache.root}, {cache.misses} computed and stored")
    print(f"wrote {path}")
    return 0


def cache(args: argparse.Namespace) -> int:
    """``lewel cache list|clear``: the cached random controls of profiles."""
    from ..maps.family_cache import ControlCache

    cache = ControlCache(args.dir)
    if args.action == "clear":
        print(f"removed {cache.clear()} cached controls from {cache.root}")
        return 0
    entries = cache.entries()
    print(f"{len(entries)} cached controls in {cache.root} ({sum(e.bytes for e in entries) / 2**20:,.1f} MiB)")
    for entry in entries:
        parts, shape = entry.parts, entry.parts.get("shape", {})
        what = (
            f"{shape.get('method', '?')} {shape.get('backbone', '?')} d={shape.get('dim', '?')} h={shape.get('num_groups', '?')}, "
            f"{parts.get('scheme', '?')} seed {parts.get('seed', '?')}, {parts.get('size', '?')} px"
            if parts else "unreadable (recomputed and replaced when next needed)"
        )
        print(f"  {entry.key[:12]}  {entry.bytes / 1024:8,.1f} KiB  {what}")
    return 0


def maps(args: argparse.Namespace) -> int:
    """``lewel maps``: every image of a data set through a model, in shards (rank 0 reports)."""
    import os

    from ..inference import MapsUnavailableError
    from ..maps.extraction import extract_maps

    rank = int(os.environ.get("RANK", "0"))
    with progress_bar("image", "maps", disable=args.quiet or rank != 0) as progress:
        try:
            index = extract_maps(
                args.checkpoint, args.data, args.out, size=args.size, views=args.views, preset=args.preset,
                seed=args.seed, batch_size=args.batch_size, shard_size=args.shard_size, workers=args.workers,
                writers=args.writers, device=args.device, dtype=args.dtype, num_groups=args.num_groups,
                progress=progress,
            )
        except MapsUnavailableError as error:
            print(f"lewel maps: error: {error}", file=sys.stderr)
            return 2
    if index is not None:
        skipped = index["skipped"]
        print(f"wrote the maps of {index['extracted']} images in {len(index['shards'])} shards to {args.out} "
              f"({args.out}/index.json); {len(skipped)} unreadable images skipped")
        for entry in skipped[:10]:
            print(f"  skipped {entry['id']}: {entry['reason']}")
    return 0


def atlas(args: argparse.Namespace) -> int:
    """``lewel atlas``: the atlas of an extraction, its page and thumbnails."""
    from ..drawing.atlas_folder import write_atlas

    with progress_bar("shard", "atlas", disable=args.quiet) as progress:
        atlas, dest = write_atlas(
            args.out, args.dest, top=args.top, thumb_size=args.thumb_size, data_root=args.data, progress=progress
        )
    print(f"atlas of {len(atlas['maps'])} maps over {atlas['images']} images: {dest}/atlas.json, {dest}/index.html")
    if atlas.get("thumbnails_note"):
        print(atlas["thumbnails_note"])
    return 0
