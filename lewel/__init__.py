"""LEWEL explorer: LEWEL_B / LEWEL_M models, their alignment maps, and checkpoint I/O.

The public names are imported on first use (module ``__getattr__``), so that ``import lewel`` and the
``lewel`` command line do not load torch until something needs it; ``from lewel import load_model`` works as
usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .files.checkpoints import CheckpointError
    from .config import ModelConfig
    from .inference import Extraction, LewelModel, MapsUnavailableError, load_model
    from .models import build_model
    from .models.heads import map_aligned_index, map_group, map_index

__version__ = "0.1.0"

#: public name -> the submodule that defines it
_SOURCES: dict[str, str] = {
    "CheckpointError": ".files.checkpoints",
    "Extraction": ".inference",
    "LewelModel": ".inference",
    "MapsUnavailableError": ".inference",
    "ModelConfig": ".config",
    "build_model": ".models",
    "load_model": ".inference",
    "map_aligned_index": ".models.heads",
    "map_group": ".models.heads",
    "map_index": ".models.heads",
}

__all__ = sorted(_SOURCES)


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES)
