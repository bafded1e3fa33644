"""LEWEL explorer: LEWEL_B / LEWEL_M models, their alignment maps, and checkpoint I/O."""

from .checkpoints import CheckpointError
from .config import ModelConfig
from .inference import Extraction, LewelModel, MapsUnavailableError, load_model
from .models import build_model
from .models.heads import map_aligned_index, map_group, map_index

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "Extraction",
    "LewelModel",
    "MapsUnavailableError",
    "ModelConfig",
    "build_model",
    "load_model",
    "map_aligned_index",
    "map_group",
    "map_index",
]
