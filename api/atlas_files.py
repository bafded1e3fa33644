"""Reading the atlases the service serves (``/v1/atlas/{model}``, ``api/routes/atlas.py``): the folder of a
model's atlas under the atlas directory (``LEWEL_ATLAS_DIR``, else where the service builds them), its
``atlas.json`` (cached while the file is unchanged), one map's record and a thumbnail's path. Model ids and
thumbnail names are checked before the file system is touched, and messages name ids, never folders (they reach
the service's clients). ``lewel.maps.atlas`` builds the atlases and ``lewel.drawing.atlas_folder`` writes them."""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from lewel.drawing.atlas_page import CRITERIA_TITLES
from lewel.maps.atlas import ATLAS_FORMAT, ATLAS_NAME, THUMB_DIR

from .errors import shown_name

NAME_MAX = 128  #: longest model id or thumbnail name served: checked before any file-system call (NAME_MAX is 255)
MODEL_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_MAX - 1}}}")
THUMB_NAME = re.compile(rf"[A-Za-z0-9_.-]{{1,{NAME_MAX - 4}}}\.png")


class AtlasNotFound(LookupError):
    """No atlas (or no such map index or thumbnail) where one was asked for; the message says where it looked."""


class AtlasError(ValueError):
    """An atlas file that cannot be read."""


def atlas_folder(root: str | os.PathLike | None, model: str) -> Path:
    """``root/model``, the folder of a model's atlas; ``AtlasNotFound`` saying why when there is none. The id is
    checked (``MODEL_ID``: pattern and length) before the file system is touched, and messages name the id,
    never the folder (they reach clients of the service)."""
    if not MODEL_ID.fullmatch(model):
        raise AtlasNotFound(
            f"no atlas for model {shown_name(model)}: not a model id (1 to {NAME_MAX} characters of A-Z a-z 0-9 _ . -)"
        )
    if root is None:
        raise AtlasNotFound(f"no atlas for model {model!r}: the service has no atlas directory (set LEWEL_ATLAS_DIR)")
    folder = Path(root) / model
    if not (folder / ATLAS_NAME).is_file():
        raise AtlasNotFound(
            f"no atlas for model {model!r}: the atlas directory has no {model}/{ATLAS_NAME} "
            f"(make one with `lewel maps` then `lewel atlas OUT --dest ATLAS_DIR/{model}`)"
        )
    return folder


@lru_cache(maxsize=16)
def _read(path: str, size: int, mtime_ns: int, shown: str) -> dict[str, Any]:
    """The atlas at ``path``; errors name it as ``shown``."""
    try:
        atlas = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise AtlasError(f"{shown}: not a readable atlas ({type(error).__name__}: {reason})") from None
    if not isinstance(atlas, dict) or atlas.get("format") != ATLAS_FORMAT or not isinstance(atlas.get("maps"), list):
        raise AtlasError(f"{shown}: not a {ATLAS_FORMAT} file")
    return atlas


def load_atlas(root: str | os.PathLike | None, model: str) -> dict[str, Any]:
    """The atlas of ``model`` under ``root`` (cached while the file is unchanged; do not modify it)."""
    path = atlas_folder(root, model) / ATLAS_NAME
    stat = path.stat()
    return _read(os.fspath(path), stat.st_size, stat.st_mtime_ns, f"{model}/{ATLAS_NAME}")


def served_atlas(atlas: dict[str, Any], model: str, *, expose_paths: bool = False) -> dict[str, Any]:
    """``atlas`` as clients see it: without the server's paths that ``lewel atlas`` records for the command line
    (the checkpoint's ``path``, the ``extraction`` folder, a folder source's ``root``). The checkpoint is named by
    ``model`` (the id requests use) and its file name, the folders by their last part; unchanged with
    ``expose_paths`` (``LEWEL_EXPOSE_PATHS``)."""
    if expose_paths:
        return atlas
    served = dict(atlas)
    checkpoint = atlas.get("checkpoint")
    if isinstance(checkpoint, dict):
        served["checkpoint"] = {
            "model": model,
            **{key: value for key, value in checkpoint.items() if key in ("file", "sha256")},
        }
    if isinstance(atlas.get("extraction"), str):
        served["extraction"] = Path(atlas["extraction"]).name
    data = atlas.get("data")
    if isinstance(data, dict) and isinstance(data.get("root"), str):
        served["data"] = {**data, "root": Path(data["root"]).name}
    return served


def atlas_map(atlas: dict[str, Any], index: int) -> dict[str, Any]:
    """The record of map ``index`` with the atlas's model, data and settings (without the other maps), and
    ``criteria``: the scores its top lists are ranked by, name -> title, in the order they are shown."""
    maps = atlas["maps"]
    if not 0 <= index < len(maps):
        raise AtlasNotFound(f"the atlas has maps 0 … {len(maps) - 1}, not {index}")
    return {**{k: v for k, v in atlas.items() if k != "maps"}, "map": maps[index], "criteria": dict(CRITERIA_TITLES)}


def thumbnail_file(root: str | os.PathLike | None, model: str, name: str) -> Path:
    """The path of thumbnail ``name`` of ``model``'s atlas (``AtlasNotFound`` for unknown or unsafe names)."""
    folder = atlas_folder(root, model)
    if not THUMB_NAME.fullmatch(name):
        raise AtlasNotFound(
            f"the atlas of {model!r} has no thumbnail {shown_name(name)}: not a thumbnail name "
            f"(at most {NAME_MAX} characters of A-Z a-z 0-9 _ . - ending in .png)"
        )
    path = folder / THUMB_DIR / name
    if not path.is_file():
        raise AtlasNotFound(f"the atlas of {model!r} has no thumbnail {name!r}")
    return path
