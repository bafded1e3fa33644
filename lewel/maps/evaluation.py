"""``lewel eval-maps``: score where a checkpoint's alignment maps look, on images with object masks."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from ..data.scenes import read_scenes
from ..data.sources import MaskFolderSource, Source, UnreadableImage, masked_folder_layout, open_source
from ..files.checkpoints import atomic_write
from ..inference import MapsUnavailableError, load_model
from ..views.augmentations import eval_transform
from .mask_scores import MapScores, object_coverage, score_maps, summarize_scores
from .profiles.images import HELDOUT_SEED

MASKED_DATA = "give a `lewel data scenes` folder, images/ + masks/, coco:ANNOTATIONS.json, voc:ROOT or scenes:N"
DEFAULT_SIZE = 224  #: input side: 7×7 maps with a ResNet (the scenes are resized whole, no crop)


def eval_source(data: str | os.PathLike, split: str) -> Source:
    """The images ``lewel eval-maps`` scores: the ``split`` scenes of a ``lewel data scenes`` folder, else any
    masked source of ``lewel.data.sources`` (a folder path, also one named ``scenes``, is a folder)."""
    spec = os.fspath(data)
    folder = Path(spec)
    if folder.is_dir():
        layout = masked_folder_layout(folder)
        if layout == "lewel-scenes":
            tree = read_scenes(folder)
            if not tree.splits.get(split):
                raise ValueError(f"{data} has no {split} scenes")
            return MaskFolderSource(folder, scene_split=split)
        if layout is None:
            raise ValueError(f"{data} holds no object masks: {MASKED_DATA}")
        spec = os.fspath(folder.resolve())
    source = open_source(spec, seed=HELDOUT_SEED)
    if not source.has_masks:
        raise ValueError(f"{data} holds no object masks: {MASKED_DATA}")
    return source


def evaluate_maps(
    checkpoint: str | os.PathLike,
    data: str | os.PathLike,
    *,
    split: str = "val",
    size: int = DEFAULT_SIZE,
    batch_size: int = 32,
    num_groups: int | None = None,
    device: str | torch.device = "cpu",
    out: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    profile: bool = True,
) -> dict[str, Any]:
    """Score the alignment maps of ``checkpoint`` on the masked images of ``data`` (``eval_source``: the
    ``split`` scenes of a ``lewel data scenes`` folder, COCO, VOC, images/ + masks/, generated scenes).

    Each image is resized whole to ``size×size`` (``eval_transform``), its maps ``B×d×h×w`` are extracted
    in batches and scored against the image's object mask (``lewel.maps.score_maps``; images that cannot be
    read are skipped and listed in ``skipped``); the result is
    ``summarize_scores`` over all maps of all images plus what was evaluated (see docs/maps.md). When
    ``out`` is given the dict is also written there as JSON, atomically. Raises ``MapsUnavailableError`` for
    a checkpoint without LEWEL's coupled head.

    With ``profile`` (the default), ``result["profile"]`` is the map-profile summary of the same folder
    (``lewel.maps.profiles.build_profile``: the scenes split alternately into calibration and held-out halves, the
    object maps chosen on the first and scored on the second, next to a random network of the same shape):
    the AUROC scores are the ones that tell a trained model from noise, the object-mass ratio is not.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    source = eval_source(data, split)
    model = load_model(checkpoint, num_groups=num_groups, map_location=device)
    if not model.has_maps:
        raise MapsUnavailableError(
            f"{checkpoint} is a {model.method} model without LEWEL's coupled head, so it has no alignment maps "
            "to evaluate: use a LEWEL_B or LEWEL_M checkpoint"
        )
    transform = eval_transform(size)
    scores: list[MapScores] = []
    skipped: list[dict[str, str]] = []
    grid: tuple[int, ...] = ()
    with torch.inference_mode():
        for start in range(0, len(source), batch_size):
            images, masks = [], []
            for index in range(start, min(start + batch_size, len(source))):
                try:
                    sample = source.load(index)
                except UnreadableImage as error:
                    skipped.append({"id": source.ids[index], "reason": str(error)})
                    continue
                images.append(transform(sample.image))
                masks.append(sample.object_mask())
            if images:
                maps = model.extract(torch.stack(images)).maps.float().cpu()
                grid = tuple(maps.shape[-2:])
                coverage = torch.stack([object_coverage(m, grid) for m in masks])
                scores.append(score_maps(maps, coverage=coverage))
            if progress is not None:
                progress(min(start + batch_size, len(source)), len(source))
    if not scores:
        raise ValueError(f"none of the {len(source)} images of {data} could be read: {skipped[0]['reason']}")
    result = {
        "checkpoint": os.fspath(checkpoint),
        "data": os.fspath(data),
        "split": split,
        "source": source.describe(),
        "skipped": skipped,
        "size": size,
        "grid": list(grid),
        "method": model.method,
        "backbone": model.backbone_name,
        "d": model.d,
        "h": model.h,
        **summarize_scores(scores, num_groups=model.h),
    }
    if profile:
        from .profiles.build import build_profile

        try:
            spec = os.fspath(Path(data).resolve()) if Path(data).is_dir() else os.fspath(data)  # a folder named scenes stays a folder
            made = build_profile(checkpoint, data=spec, size=size, batch_size=batch_size, device=device, num_groups=num_groups)
            result["profile"] = {"version": made["version"], "data": made["data"], "summary": made["summary"]}
        except ValueError as error:  # too few scenes, or a grid too coarse for object and background cells
            result["profile"] = {"error": str(error)}
    if out is not None:
        text = json.dumps(result, indent=2)
        atomic_write(Path(out), lambda temporary: temporary.write_text(text + "\n"))
    return result


def format_summary(result: dict[str, Any]) -> str:
    """A few readable lines of an ``evaluate_maps`` result."""
    patterns = ", ".join(f"{name} {share:.1%}" for name, share in result["patterns"].items())
    return "\n".join(
        [
            f"{result['checkpoint']}: {result['method']} {result['backbone']}, {result['images']} {result['split']} "
            f"scenes at {result['size']} px, {result['maps_per_image']} maps of "
            f"{result['grid'][0]}×{result['grid'][1]}",
            f"AUROC of all maps {result['auroc']:.3f} over {result['auroc_images']} scenes ({result['auroc_skipped']} "
            "without both object and background cells skipped; 0.5 = no relation)",
            f"object-mass ratio {result['object_mass_ratio']:.3f} (median {result['object_mass_ratio_median']:.3f}; "
            f"1.0 = uniform; objects cover {result['object_share']:.1%} of the images; near 1.0 for every LEWEL "
            "model: docs/maps.md)",
            f"pointing game {result['pointing_game']:.1%} (chance {result['pointing_chance']:.1%})",
            f"patterns (heuristic, relative to each map's range): {patterns}",
        ]
        + (["map profile (calibration / held-out halves, random control):", _profile_lines(result)] if "profile" in result else [])
    )


def _profile_lines(result: dict[str, Any]) -> str:
    from .profiles.text import format_profile

    profile = result["profile"]
    if "error" in profile:
        return f"  not computed: {profile['error']}"
    lines = format_profile({**profile, "checkpoint": {"file": Path(result["checkpoint"]).name}, "model": result}).splitlines()
    return "\n".join("  " + line for line in lines[1:])
