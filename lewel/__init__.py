"""LEWEL explorer: LEWEL_B / LEWEL_M models, their alignment maps, and checkpoint I/O.

The public names are imported on first use (module ``__getattr__``), so that ``import lewel`` and the
``lewel`` command line do not load torch until something needs it; ``from lewel import load_model`` works as
usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    """Import a public name's submodule on first access and keep the name in this module."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))
