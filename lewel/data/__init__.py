"""Data: the one data spec and its sources (``sources``: scenes, folders, masks, COCO, VOC), the
multi-object scenes built from Debian's Tux Paint cut-outs, with exact instance masks (``scenes``), and the images
offered without an upload (``gallery``, imported as ``lewel.data.gallery``)."""

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
from .sources import Sample, Source, UnreadableImage, masked_splits, open_source

__all__ = [
    "INSTALL_HINT",
    "Sample",
    "Source",
    "UnreadableImage",
    "masked_splits",
    "open_source",
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
