"""Watching the maps while a LEWEL model trains: the map profile's score of the online network, and a
Figure-5 grid of a fixed probe set, every ``maps_every`` steps.

The score is the map profile's (``lewel.maps.profiles``), at a smaller scale: map indices are given their role on
a calibration split of masked images, and the AUROC of the selected object maps is measured on a separate
held-out split. Both splits are drawn from the validation side, never from the training images nor from the
scenes the shipped profiles use (seeds 7,000,001 / 7,000,002). The first pass of a fresh run scores the
network at its random initialisation; every pass is also judged against the profile's family of random
networks of the same shape (``lewel.maps.controls``), scored once per run on the same images, with the same verdict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..data.scenes import VAL_SEED_OFFSET
from ..data.sources import SceneSource, Source, UnreadableImage, open_source, scene_count, scene_kind
from ..drawing.render import figure_png, maps_grid
from ..inference import LewelModel
from ..maps.controls import CONTROL_SEEDS, INIT_SCHEMES, control_family, random_like
from ..maps.controls import verdict as controls_verdict
from ..maps.profiles.images import PreparedImages, profile_data
from ..maps.profiles.roles import split_summary
from ..maps.profiles.scores import score_prepared, selected_mean
from ..maps.profiles.verdict import control_member
from ..views.augmentations import eval_transform
from .logging import read_records

CALIBRATION_OFFSET = VAL_SEED_OFFSET  #: generated scenes: calibration split seed = run seed + this (the kNN val split's seed)
HELDOUT_OFFSET = 2_000_003  #: held-out split seed = run seed + this (scenes no split of the run nor of a profile uses)
PHOTOS = ("astronaut", "coffee")  #: scikit-image sample photos (bundled, no download) in the probe set
PROBE_SCENES = 3  #: held-out scenes in the probe set
PROBE_OBJECT_MAPS = 3  #: object maps drawn per probe, then one background map


@dataclass(frozen=True)
class Probe:
    """One image of the probe set: ``name``, the RGB image and its object mask (``None`` for photos)."""

    name: str
    image: Image.Image
    mask: np.ndarray | None


def monitor_splits(val_data: str | None, *, images: int, size: int, seed: int) -> tuple[Source, Source] | None:
    """The calibration and held-out masked images the monitor scores, or ``None`` when ``val_data`` has no
    masks: ``scenes[:N]`` gives ``images`` generated scenes of ``size`` px per split (seeds
    ``seed + CALIBRATION_OFFSET`` and ``seed + HELDOUT_OFFSET``); any other masked source (COCO, VOC, a
    ``lewel data scenes`` folder, ``images/`` + ``masks/``) is split as a profile splits it
    (``lewel.maps.profiles.profile_data``), ``images`` per split at most."""
    if not val_data:
        return None
    if scene_count(val_data) is not None:
        kind = scene_kind(val_data)
        return (
            SceneSource(images, size, seed + CALIBRATION_OFFSET, kind=kind, pool="calibration"),
            SceneSource(images, size, seed + HELDOUT_OFFSET, kind=kind, pool="heldout"),
        )
    if not open_source(val_data).has_masks:
        return None
    return profile_data(val_data, images=images, size=size)


def _probe_scenes(heldout: Source) -> list[Probe]:
    """The first ``PROBE_SCENES`` readable images of the held-out split."""
    probes = []
    for index in range(len(heldout)):
        if len(probes) == PROBE_SCENES:
            break
        try:
            sample = heldout.load(index)
        except UnreadableImage:
            continue
        probes.append(Probe(f"scene {index}", sample.image, sample.object_mask()))
    return probes


def _photos() -> list[Probe]:
    from skimage import data

    probes = []
    for name in PHOTOS:
        try:
            probes.append(Probe(name, Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB"), None))
        except Exception:  # noqa: BLE001 - a sample this scikit-image version lacks is left out of the probes
            continue
    return probes


class MapMonitor:
    """Scores and draws the maps of a training run's online network.

    ``splits`` are the calibration and held-out masked images (``None``: no masks, figures only, with the
    maps in index order); ``size`` is the side images are resized to (whole, no crop). Images are cached
    in memory when the monitor is made, so every pass sees exactly the same inputs.
    """

    def __init__(
        self,
        splits: tuple[Source, Source] | None,
        *,
        size: int,
        batch_size: int = 32,
        control_seeds: int = CONTROL_SEEDS,
        control_schemes: tuple[str, ...] = INIT_SCHEMES,
    ) -> None:
        probes = [] if splits is None else _probe_scenes(splits[1])
        self.probes = probes + _photos()
        self.splits = None if splits is None else (PreparedImages(splits[0], size), PreparedImages(splits[1], size))
        self.size, self.batch_size = size, batch_size
        self.family = control_family(control_schemes, control_seeds) if control_seeds else []
        self._controls: list[tuple[dict[str, Any], torch.Tensor]] | None = None
        self._probe_batch = torch.stack([eval_transform(size)(p.image) for p in self.probes])

    def _score(self, model: LewelModel) -> tuple[dict[str, Any], torch.Tensor]:
        """``split_summary`` of ``model`` on the monitor's splits, and its per-image held-out values."""
        calibration, heldout = (score_prepared(model, s, batch_size=self.batch_size) for s in self.splits)
        summary = split_summary(calibration, heldout, 0.1)
        return summary, selected_mean(heldout, summary["object_maps"])

    def control_scores(self, model: LewelModel) -> list[tuple[dict[str, Any], torch.Tensor]]:
        """The control family of ``model``'s shape on the monitor's splits, scored once per run (the same
        schemes and seeds as a profile's, ``lewel.maps.controls``): ``(member record, per-image values)`` each."""
        if self._controls is None:
            self._controls = []
            for scheme, seed in self.family:
                network = random_like(model, seed, scheme)
                scores = (score_prepared(network, s, batch_size=self.batch_size) for s in self.splits)
                self._controls.append(control_member({"scheme": scheme, "seed": seed}, *scores))
        return self._controls

    @torch.no_grad()
    def measure(self, model: LewelModel, *, label: str = "") -> tuple[dict[str, Any], bytes]:
        """One pass with ``model`` (in eval mode): the scores (``object_auroc`` of the selected object maps on
        the held-out split, ``object_pointing``, ``pointing_chance``, ``all_maps_auroc``, ``background_auroc``,
        ``heldout_images`` scored, the selected ``object_maps``, ``seconds``) and the probe grid as PNG bytes,
        titled with ``label`` and the score. The grid's colours span each map's own range; its colour bar
        says how wide that range is in units of the uniform value (1.0×), so near-flat maps read as such."""
        start = time.perf_counter()
        scores: dict[str, Any] = {}
        device = next(model.parameters()).device
        if self.splits is not None:
            summary, values = self._score(model)
            scores = {
                key: summary[key]
                for key in ("object_auroc", "object_pointing", "pointing_chance", "all_maps_auroc", "background_auroc")
            }
            scores["heldout_images"] = int(len(values))
            scores["object_maps"] = summary["object_maps"]
            controls = self.control_scores(model)
            if controls:
                family, difference, verdict = controls_verdict(values, [c for c, _ in controls], [v for _, v in controls])
                scores.update(
                    best_control=family["best"], random_bound=family["random_bound"], controls=family["count"],
                    difference=difference["object_auroc"], margin=difference["margin"], verdict=verdict,
                )
            objects, backgrounds = summary["object_maps"][:PROBE_OBJECT_MAPS], summary["background_maps"][:1]
            chosen, roles = objects + backgrounds, ["object"] * len(objects) + ["background"] * len(backgrounds)
        else:
            chosen = list(range(min(PROBE_OBJECT_MAPS + 1, model.d or 0)))
            roles = ["no masks"] * len(chosen)
        maps = model.extract(self._probe_batch.to(device), aligned_projection=False).maps.float().cpu()[:, chosen]
        titles = [[f"map {m} ({role})" for m, role in zip(chosen, roles)] for _ in self.probes]
        headline = label
        if "object_auroc" in scores:
            headline += (
                f"  object maps AUROC {scores['object_auroc']:.3f} on {scores['heldout_images']} held-out images, "
                f"pointing {scores['object_pointing']:.2f} (chance {scores['pointing_chance']:.2f})"
            )
            if "verdict" in scores:
                headline += (
                    f"; best of {scores['controls']} random networks {scores['best_control']['object_auroc']:.3f} "
                    f"(bound {scores['random_bound']:.3f}): {scores['verdict']}"
                )
        figure = maps_grid(
            [p.image.resize((self.size, self.size)) for p in self.probes], maps, titles,
            row_titles=[p.name for p in self.probes], scale="range", title=headline.strip() or None,
        )
        png = figure_png(figure, dpi=80)
        scores["seconds"] = time.perf_counter() - start
        return scores, png


def read_map_records(run: str | Path) -> list[dict[str, Any]]:
    """The map monitor's records of a run folder's ``metrics.jsonl`` (``step``, ``epoch``, ``maps``), in
    file order; a resumed run's repeated steps keep their last record."""
    by_step = {record["step"]: record for record in read_records(run) if "maps" in record}
    return [by_step[s] for s in sorted(by_step)]
