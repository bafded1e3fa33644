"""A figure to draw, as plain arrays, and the function a drawing process runs on it.

This module imports only ``lewel.drawing.render`` (matplotlib, NumPy, Pillow; no torch, no FastAPI), so that the
processes of ``api.drawing_pool`` start light: a job carries what ``figure5_grid`` draws (the views as pictures,
their boxes and flips, the chosen maps, the titles) and what file to make of it.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from lewel.drawing.render import figure5_grid, figure_bytes


@dataclass(frozen=True)
class FigureJob:
    """Figure 5 of ``shown`` maps: ``source`` (the image, downscaled, H×W×3 uint8) of ``source_size`` (W, H),
    ``view_images`` (V of S×S×3 uint8), their ``boxes``, ``flips`` and ``presets``, ``maps`` (V×k×h×w float32),
    ``titles`` (V×k) and the figure's ``title``; drawn with ``cmap``, ``alpha`` and ``scale`` as ``format`` at
    ``dpi``."""

    shown: list[int]
    source: np.ndarray
    source_size: tuple[int, int]
    view_images: list[np.ndarray]
    boxes: list[tuple[int, int, int, int]]
    flips: list[bool]
    presets: list[str | None]
    maps: np.ndarray
    titles: list[list[str]]
    title: str
    cmap: str
    alpha: float
    scale: str
    format: str
    dpi: int


def render(job: FigureJob) -> bytes:
    """The file of ``job`` (``lewel.drawing.render``: ``figure5_grid`` then ``figure_bytes``)."""
    figure = figure5_grid(
        job.source, job.view_images, job.boxes, job.flips, job.source_size, job.maps, job.titles,
        presets=job.presets, cmap=job.cmap, alpha=job.alpha, scale=job.scale, title=job.title,
    )
    return figure_bytes(figure, job.format, dpi=job.dpi)


PARENT_CHECK_S = 1.0  #: how often a drawing process checks that the service that started it still runs


def _exit_with_parent(parent: int) -> None:
    """End this process once ``parent`` is gone: a service killed with SIGKILL cannot stop its drawing processes,
    which would otherwise stay, orphaned, forever."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def start_worker(nice: int, parent: int) -> None:
    """A drawing process's start: end with the service, process ``parent`` (``_exit_with_parent``; given by the
    service, since it may be gone already by now), lower its CPU priority by ``nice`` (the model passes come first)
    and draw a small figure once, so that matplotlib's fonts and caches are loaded before the first request's."""
    threading.Thread(target=_exit_with_parent, args=(parent,), name="lewel-parent-watch", daemon=True).start()
    if nice > 0 and hasattr(os, "nice"):
        os.nice(nice)
    picture = np.zeros((8, 8, 3), np.uint8)
    render(
        FigureJob(
            [0], picture, (8, 8), [picture], [(0, 0, 8, 8)], [False], [None], np.full((1, 1, 2, 2), 0.25, np.float32),
            [["warm-up"]], "warm-up", "jet", 0.5, "range", "png", 50,
        )
    )
