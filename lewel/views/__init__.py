"""Views of an image and the augmentations that make them.

- ``crops``: augmented views that remember where they came from (each view's crop box and flip), the presets
  the service and the atlas draw with; its public names are offered here too (``from lewel.views import
  make_views``);
- ``augmentations``: the training and evaluation transforms (BYOL's and MoCo v2's views, the blur, the
  normalisation constants).

docs/views.md describes the views and the frame they are measured in.
"""

from __future__ import annotations

from .crops import (
    CROP_RATIO,
    CROP_SCALE,
    FLIP_PROBABILITY,
    PRESETS,
    Box,
    View,
    augmented_view,
    make_views,
    original_view,
    view_seed,
    views_batch,
)

__all__ = [
    "PRESETS", "CROP_SCALE", "CROP_RATIO", "FLIP_PROBABILITY", "Box", "View", "view_seed", "original_view",
    "augmented_view", "make_views", "views_batch",
]
