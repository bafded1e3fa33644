"""Where a served model's map profile is: the sidecar ``NAME.profile.json`` beside its checkpoint (what
``lewel profile`` writes), or the copy a profile build of the service wrote to ``LEWEL_PROFILE_DIR`` because the
checkpoint's folder was not writable (the bundled models folder in the Docker image is read-only).

A build writes beside the checkpoint when it can, else to ``PROFILE_DIR/<source>/NAME.profile.json`` (``source``:
the models folder's label, ``bundled`` or ``models_dir``, so that two folders' files of one name never meet). When
both files exist the newer one is the model's profile: a service build after a ``lewel profile`` run (or the
other way round) wins, whichever of the two places it went to. Both are written atomically
(``lewel.maps.profiles.write_profile``): a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from lewel.maps.profiles import ProfileError, file_sha256, read_profile, sidecar_path, write_profile

#: the errors of a folder one may not write to (a read-only mount, another user's folder)
NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class ProfileNotWritable(OSError):
    """The checkpoint's folder is not writable and no ``LEWEL_PROFILE_DIR`` is configured."""


def service_copy(checkpoint: Path, source: str, profile_dir: Path | None) -> Path | None:
    """Where a build writes the profile of ``checkpoint`` (listed from the folder labelled ``source``) when its
    own folder is not writable: ``profile_dir/source/NAME.profile.json``, or ``None`` without ``profile_dir``."""
    return None if profile_dir is None else profile_dir / source / sidecar_path(checkpoint).name


def profile_file(checkpoint: Path, source: str, profile_dir: Path | None) -> Path:
    """The file holding ``checkpoint``'s profile: the newer of its sidecar and its ``service_copy`` when both
    exist, else whichever exists, else the sidecar (which then does not exist)."""
    found = []
    for path in (sidecar_path(checkpoint), service_copy(checkpoint, source, profile_dir)):
        if path is None:
            continue
        try:
            found.append((path.stat().st_mtime_ns, path))
        except OSError:
            continue
    return max(found, key=lambda pair: pair[0])[1] if found else sidecar_path(checkpoint)


def read_for(checkpoint: Path, path: Path, *, d: int | None = None) -> dict[str, Any]:
    """The profile in ``path``, checked (``lewel.maps.profiles.read_profile``) and made for this very
    ``checkpoint`` (its sha256, as ``find_profile`` checks a sidecar): ``ProfileError`` otherwise."""
    profile = read_profile(path, d=d)
    if profile.get("checkpoint", {}).get("sha256") != file_sha256(checkpoint):
        raise ProfileError(
            f"{path} was made for another version of {checkpoint.name} (sha256 differs): measure it "
            "again (lewel profile, or POST /v1/models/{model}/profile)"
        )
    return profile


def write_for(profile: dict[str, Any], checkpoint: Path, source: str, profile_dir: Path | None) -> Path:
    """Write ``profile`` beside ``checkpoint`` (atomically), or to its ``service_copy`` when that folder is not
    writable; the path written. ``ProfileNotWritable`` when neither can be written."""
    try:
        return write_profile(profile, sidecar_path(checkpoint))
    except OSError as error:
        if error.errno not in NOT_WRITABLE:
            raise
        copy = service_copy(checkpoint, source, profile_dir)
        if copy is None:
            raise ProfileNotWritable(
                error.errno,
                f"the folder of {checkpoint.name} ({source}) is not writable ({os.strerror(error.errno)}): set "
                "LEWEL_PROFILE_DIR to a writable folder for the profiles the service measures",
            ) from None
    return write_profile(profile, copy)
