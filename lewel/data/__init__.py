"""Data sources: multi-object scenes built from Debian's Tux Paint cut-outs, with exact object masks."""

from .scenes import (
    INSTALL_HINT,
    STAMPS_DIR,
    Scene,
    SceneDataset,
    SceneGenerator,
    SceneRecord,
    SceneTree,
    Stamp,
    StampsNotFoundError,
    index_stamps,
    read_scenes,
    write_scenes,
)

__all__ = [
    "INSTALL_HINT",
    "STAMPS_DIR",
    "Scene",
    "SceneDataset",
    "SceneGenerator",
    "SceneRecord",
    "SceneTree",
    "Stamp",
    "StampsNotFoundError",
    "index_stamps",
    "read_scenes",
    "write_scenes",
]
