"""The profile file: its JSON format and versions, the sidecar ``NAME.profile.json`` next to a checkpoint, and
writing, reading and finding one (a sidecar made for another version of the file, by sha256, is refused).

Versions: 4: measured roles with their bootstrap confidence (``undecided`` where the data do not settle them); 3:
roles cut without confidence (files still open, their roles are not shown as measured); 2: the verdict against a
family of random controls, no patterns (1: one control, superseded).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from ...files.checkpoints import atomic_write
from ..patterns import PATTERN_ROLES, UNDECIDED
from .roles import ROLES

PROFILE_FORMAT = "lewel-map-profile"
PROFILE_VERSION = 4  #: 4: roles with confidence; 3: roles without; 2: the verdict against random controls
READABLE_VERSIONS = (2, 3, 4)  #: versions 2 and 3 still open; their roles are not shown (1: one control, superseded)
SIDECAR_SUFFIX = ".profile.json"  #: the profile of ``models/NAME.safetensors`` is ``models/NAME.profile.json``


class ProfileError(ValueError):
    """A profile file that cannot be used: unreadable, another format, or made for another checkpoint."""


@lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """The file's sha256 (cached per path, size and modification time)."""
    stat = os.stat(path)
    return _sha256(os.fspath(path), stat.st_size, stat.st_mtime_ns)


def sidecar_path(checkpoint: str | os.PathLike) -> Path:
    """``DIR/NAME.profile.json`` for ``DIR/NAME.<suffix>`` (``.pth.tar`` counts as one suffix)."""
    path = Path(checkpoint)
    name = path.name
    for suffix in (".pth.tar", ".safetensors", ".pth", ".tar", ".pt", ".ckpt"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return path.with_name(name[: -len(suffix)] + SIDECAR_SUFFIX)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _json_safe(value: Any) -> Any:
    """NaN and infinities as ``null`` (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_profile(profile: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``profile`` as strict JSON (NaN as null), atomically."""
    text = json.dumps(_json_safe(profile), indent=1, allow_nan=False)
    return atomic_write(Path(path), lambda temporary: temporary.write_text(text + "\n"))


def read_profile(path: str | os.PathLike, *, d: int | None = None) -> dict[str, Any]:
    """Read and check a profile file (format, version, one record per map index; ``d`` when given)."""
    try:
        profile = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProfileError(f"{path}: not a readable profile ({type(error).__name__}: {error})") from None
    if not isinstance(profile, dict) or profile.get("format") != PROFILE_FORMAT:
        raise ProfileError(f"{path}: not a {PROFILE_FORMAT} file")
    if profile.get("version") not in READABLE_VERSIONS:
        raise ProfileError(
            f"{path}: profile version {profile.get('version')!r}, this lewel reads versions {list(READABLE_VERSIONS)}: "
            "run lewel profile again"
        )
    records, summary = profile.get("maps"), profile.get("summary")
    if not isinstance(records, list) or not isinstance(summary, dict):
        raise ProfileError(f"{path}: a profile needs 'summary' and 'maps'")
    if [r.get("index") for r in records] != list(range(len(records))) or any(r.get("role") not in ROLES for r in records):
        raise ProfileError(f"{path}: 'maps' must hold one record per index 0..d-1, each with a role in {list(ROLES)}")
    allowed = PATTERN_ROLES + ((UNDECIDED,) if profile["version"] >= 4 else ()) + (None,)
    if profile["version"] >= 3 and any(r.get("pattern") not in allowed for r in records):
        raise ProfileError(f"{path}: each map's 'pattern' must be one of {list(allowed[:-1])} or null")
    expected = profile.get("model", {}).get("d")
    if expected != len(records) or (d is not None and d != len(records)):
        raise ProfileError(f"{path}: profile of {len(records)} maps, but the model has d = {d if d is not None else expected}")
    return profile


def find_profile(checkpoint: str | os.PathLike, *, d: int | None = None) -> dict[str, Any] | None:
    """The sidecar profile of ``checkpoint``, or ``None`` when there is none. Raises ``ProfileError`` when
    the sidecar is unreadable or was made for another file (its sha256 differs: a stale profile)."""
    path = sidecar_path(checkpoint)
    if not path.is_file():
        return None
    profile = read_profile(path, d=d)
    recorded = profile.get("checkpoint", {}).get("sha256")
    if recorded != file_sha256(checkpoint):
        raise ProfileError(f"{path} was made for another version of {Path(checkpoint).name} (sha256 differs): run lewel profile again")
    return profile
