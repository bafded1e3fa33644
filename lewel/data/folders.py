"""Image folders as datasets: an ImageFolder tree (labels kept for evaluation) or a flat folder of images.

Unlike ``torchvision.datasets.ImageFolder`` (whose indexing we reuse), a file that cannot be decoded does
not stop a run: it is reported by name in one warning (once per file for the whole run: the record of what
was reported is shared with the data-loader workers) and the next readable image is used instead.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from contextlib import nullcontext
from multiprocessing.context import get_spawning_popen
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset


class DataError(ValueError):
    """A data source that cannot be used (missing, empty, unreadable): the message names it."""


class ImageFiles(Dataset):
    """Images under ``root``: ``root/<class>/**/<image>`` (labels = sorted class folders) or, when ``root``
    holds images directly, a flat unlabelled folder (label -1). Items are ``(PIL RGB image, label)``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise DataError(f"data directory {str(self.root)!r} does not exist")
        if not self.root.is_dir():
            raise DataError(f"data path {str(self.root)!r} is not a directory")
        flat = sorted(p for p in self.root.iterdir() if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
        if flat:
            self.classes: list[str] = []
            self.samples: list[tuple[str, int]] = [(str(p), -1) for p in flat]
        else:
            try:
                self.classes, class_to_index = find_classes(str(self.root))
                self.samples = make_dataset(str(self.root), class_to_index, extensions=IMG_EXTENSIONS, allow_empty=True)
            except FileNotFoundError:
                self.classes, self.samples = [], []
        if not self.samples:
            raise DataError(
                f"no images found in {str(self.root)!r}: expected image files ({', '.join(IMG_EXTENSIONS[:5])}, ...) "
                "directly inside it or in one sub-folder per class"
            )
        context = multiprocessing.get_context()
        self._reported = context.RawArray("b", len(self.samples))  #: 1 = warned about, in every process
        self._report_lock: Any = context.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if get_spawning_popen() is None:  # plain pickling, not a loader worker being started: a private copy
            state["_reported"], state["_report_lock"] = bytearray(self._reported), None
        return state

    @property
    def labelled(self) -> bool:
        return bool(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def _open(self, index: int) -> Image.Image | None:
        path = self.samples[index][0]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
            with self._report_lock if self._report_lock is not None else nullcontext():
                first = not self._reported[index]
                self._reported[index] = 1
            if first:
                warnings.warn(f"skipping unreadable image {path!r}: {error}", RuntimeWarning, stacklevel=3)
            return None

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        for offset in range(len(self.samples)):
            position = (index + offset) % len(self.samples)
            image = self._open(position)
            if image is not None:
                return image, self.samples[position][1]
        raise DataError(
            f"none of the {len(self.samples)} image files in {str(self.root)!r} can be read "
            f"(e.g. {self.samples[0][0]!r}); check the files, or point --data at another folder"
        )
