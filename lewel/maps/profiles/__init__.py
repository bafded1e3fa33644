"""Map profiles: which map indices of a model look at objects, measured on images with object masks.

LEWEL's maps are softmaxes at temperature 1 and stay within a few per cent of uniform, so absolute scores
(the object-mass ratio) read 1.0 for every model. A profile uses the scale-free AUROC of each map against the
object mask (``lewel.maps.map_auroc``) instead, and guards against reading noise as structure twice over:

1. **two splits**: map indices are given their role (``object``: among the highest mean AUROC, ``background``:
   among the lowest) on a *calibration* split only, and every score reported for them is measured on a
   separate *held-out* split;
2. **a family of random controls** (``lewel.maps.controls``): the same procedure, in the same run and on the same
   images, for several seeds of every plausible initialisation scheme of a network of the same shape; the
   verdict asks the model to beat the best of them by more than the images' noise and the controls' spread.

One concept per module, bottom up: ``images`` (the two splits, prepared once), ``scores`` (every image's maps
scored), ``roles`` (chosen on calibration, measured on held-out), ``pattern_summary`` (measured patterns and the
dissection against the family), ``verdict`` (the summary against the family), ``sidecar`` (the JSON file, its
versions, ``NAME.profile.json`` next to a checkpoint), ``queries`` (which indices a profile shows),
``text`` (a profile in words) and ``build`` (``build_profile``, a checkpoint's profile). Their public names are
offered here too (``from lewel.maps.profiles import build_profile``; docs/maps.md, "Map profiles").
"""

from __future__ import annotations

from .build import build_profile
from .images import CALIBRATION_SEED, DEFAULT_IMAGES, DEFAULT_SIZE, HELDOUT_SEED, PreparedImages, profile_data
from .pattern_summary import summarize_patterns
from .queries import (
    best_localising,
    category_indices,
    has_patterns,
    localising_score,
    pattern_indices,
    profile_categories,
    profile_indices,
)
from .roles import DISPLAY_RANK, ROLE_FRACTION, ROLES, select_roles, split_summary
from .scores import (
    ImageScores,
    index_means,
    measure_prepared,
    score_images,
    score_masked_maps,
    score_prepared,
    selected_mean,
)
from .sidecar import (
    PROFILE_FORMAT,
    PROFILE_VERSION,
    READABLE_VERSIONS,
    SIDECAR_SUFFIX,
    ProfileError,
    file_sha256,
    find_profile,
    read_profile,
    sidecar_path,
    write_profile,
)
from .text import describe_data, format_profile, measured_line, patterns_line, patterns_note
from .verdict import CONTROL_KEYS, control_member, summarize_profile

__all__ = [
    "CALIBRATION_SEED",
    "CONTROL_KEYS",
    "DEFAULT_IMAGES",
    "DEFAULT_SIZE",
    "DISPLAY_RANK",
    "HELDOUT_SEED",
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "READABLE_VERSIONS",
    "ROLES",
    "ROLE_FRACTION",
    "SIDECAR_SUFFIX",
    "ImageScores",
    "PreparedImages",
    "ProfileError",
    "best_localising",
    "build_profile",
    "category_indices",
    "control_member",
    "describe_data",
    "file_sha256",
    "find_profile",
    "format_profile",
    "has_patterns",
    "index_means",
    "localising_score",
    "measure_prepared",
    "measured_line",
    "pattern_indices",
    "patterns_line",
    "patterns_note",
    "profile_categories",
    "profile_data",
    "profile_indices",
    "read_profile",
    "score_images",
    "score_masked_maps",
    "score_prepared",
    "select_roles",
    "selected_mean",
    "sidecar_path",
    "split_summary",
    "summarize_patterns",
    "summarize_profile",
    "write_profile",
]
