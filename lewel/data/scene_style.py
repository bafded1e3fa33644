"""How a generated scene is drawn: ``SceneStyle`` (the ``scenes`` and ``textured`` benchmarks) and the soft paste.

``soften`` blurs a resized cut-out's alpha and grows its box by the blur's reach; ``composite`` lays a cut-out
over the canvas by that alpha, its colours optionally moved toward the backdrop's. The object's mask stays
one rule: the pixels whose (blurred) alpha is >= ``ALPHA_THRESHOLD``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .backdrops import POOLS

ALPHA_THRESHOLD = 128  #: a cut-out pixel belongs to the object when its alpha is >= this
SCALE_RANGE = (0.25, 0.65)  #: the ``scenes`` benchmark: an object's longest side, as a share of the image side


@dataclass(frozen=True)
class SceneStyle:
    """How scenes are drawn. The default draws the ``scenes`` benchmark; ``textured(pool)`` the ``textured`` one.

    - ``pool``: ``None`` for gradient, noise and texture backgrounds; a ``lewel.data.backdrops.POOLS`` name for
      photographic backdrops from that pool only;
    - ``distractors``: up to this many blob-shaped photographic patches pasted before the objects (background);
    - ``blend``: an object's colours move up to this share toward the mean of the backdrop under it;
    - ``soften``: the cut-out's alpha is blurred with a sigma of up to this many pixels per 128 px of side, and
      composited by it (a pixel belongs to the object where the blurred alpha is >= ``ALPHA_THRESHOLD``);
    - ``scale_range``: an object's longest side, as a share of the image side;
    - ``flat_distractors``: the share of distractors that are cartoon-like (one colour, dark outline);
    - ``texture``: an object's shading is modulated by up to this share by a photograph's grain (objects are
      no longer the only untextured regions);
    - ``shared_backdrops``: K > 0 gives scene i the background (backdrop and distractors) of scene i mod K, so
      K backgrounds serve every scene and only the objects tell scenes apart (a training option: a contrastive
      task can then not be solved by the backdrop); 0: every scene draws its own.
    """

    pool: str | None = None
    distractors: int = 0
    blend: float = 0.0
    soften: float = 0.0
    scale_range: tuple[float, float] = SCALE_RANGE
    flat_distractors: float = 0.0
    texture: float = 0.0
    shared_backdrops: int = 0

    def __post_init__(self) -> None:
        if self.pool is not None and self.pool not in POOLS:
            raise ValueError(f"unknown backdrop pool {self.pool!r}: choose one of {', '.join(POOLS)}")
        if self.distractors < 0 or not 0 <= self.blend <= 1 or self.soften < 0 or self.shared_backdrops < 0:
            raise ValueError("need distractors >= 0, 0 <= blend <= 1, soften >= 0 and shared_backdrops >= 0")
        low, high = self.scale_range
        if not 0 < low <= high <= 1:
            raise ValueError(f"scale_range must satisfy 0 < low <= high <= 1, got {self.scale_range}")

    @property
    def hard(self) -> bool:
        """Pasted pixel for pixel (no blending, no soft outline): the mask is exactly the pasted pixels."""
        return self.blend == 0 and self.soften == 0 and self.texture == 0

    @classmethod
    def textured(cls, pool: str = "train", **changes: object) -> SceneStyle:
        """The ``textured`` benchmark's style for a backdrop pool (``TEXTURED`` with ``changes``)."""
        return cls(**{**TEXTURED, "pool": pool, **changes})  # type: ignore[arg-type]


#: the ``textured`` benchmark: photographic backdrops, up to 3 distractors, objects 18-65 % of the side, their
#: colours up to 35 % toward the backdrop's, outlines blurred by up to 1 px per 128 px (docs/data.md)
TEXTURED: dict[str, object] = {"distractors": 3, "blend": 0.35, "soften": 1.0, "scale_range": (0.18, 0.65)}


def soften(
    rng: np.random.Generator, rgba: np.ndarray, box: tuple[int, int, int, int], *, sigma: float, size: int
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A resized cut-out (``h×w×4`` uint8 at ``box`` = x0, y0, x1, y1 in a ``size``-pixel frame) with its alpha
    blurred by a sigma drawn in ``[0, sigma)`` pixels, grown by the blur's reach on every side that stays in
    the frame, and its new box."""
    drawn = rng.uniform(0, sigma)
    pad = math.ceil(2 * drawn)
    if pad == 0:
        return rgba, box
    grown = np.pad(rgba, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    alpha = ndimage.gaussian_filter(np.pad(rgba[..., 3], pad).astype(np.float64), drawn)
    grown[..., 3] = np.clip(np.rint(alpha), 0, 255).astype(np.uint8)
    left, top = max(0, box[0] - pad), max(0, box[1] - pad)
    right, bottom = min(size, box[2] + pad), min(size, box[3] + pad)
    inner = grown[top - box[1] + pad : bottom - box[1] + pad, left - box[0] + pad : right - box[0] + pad]
    return np.ascontiguousarray(inner), (left, top, right, bottom)


def composite(
    rng: np.random.Generator, region: np.ndarray, rgba: np.ndarray, opaque: np.ndarray, *, blend: float,
    grain: np.ndarray | None = None,
) -> np.ndarray:
    """``region`` (``h×w×3`` uint8) with the cut-out ``rgba`` laid over it by its alpha; with ``blend`` > 0 the
    cut-out's colours first move a share drawn in ``[0, blend)`` toward the mean of the region under its
    ``opaque`` pixels (objects that take on the photograph's colours); ``grain`` (``h×w`` factors around 1)
    multiplies its shading."""
    colours = rgba[..., :3].astype(np.float64)
    if blend:
        share = rng.uniform(0, blend)
        colours = (1 - share) * colours + share * region[opaque].reshape(-1, 3).mean(axis=0)
    if grain is not None:
        colours = colours * grain[..., None]
    alpha = rgba[..., 3:4].astype(np.float64) / 255.0
    return np.clip(np.rint(alpha * colours + (1 - alpha) * region), 0, 255).astype(np.uint8)
