"""Image folders as datasets: an ImageFolder tree (labels kept for evaluation) or a flat folder of images.

Unlike ``torchvision.datasets.ImageFolder`` (whose indexing we reuse), a file that cannot be decoded does
not stop a run: it is reported by name in a warning and the next readable image is used instead.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

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
        self._reported: set[str] = set()

    @property
    def labelled(self) -> bool:
        return bool(self.classes)

    def __len__(self) -> int:
        return len(self.samples)

    def _open(self, path: str) -> Image.Image | None:
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
            if path not in self._reported:
                self._reported.add(path)
                warnings.warn(f"skipping unreadable image {path!r}: {error}", RuntimeWarning, stacklevel=3)
            return None

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        for offset in range(len(self.samples)):
            path, label = self.samples[(index + offset) % len(self.samples)]
            image = self._open(path)
            if image is not None:
                return image, label
        raise DataError(f"none of the {len(self.samples)} images in {str(self.root)!r} can be read")
