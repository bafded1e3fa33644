"""Small generated image folders for training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def make_image_folder(root: Path, *, classes: int = 2, per_class: int = 8, size: int = 48, seed: int = 0) -> Path:
    """``root/class{c}/{i}.png``: noisy images whose dominant colour channel is the class."""
    rng = np.random.default_rng(seed)
    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = (rng.random((size, size, 3)) * 90).astype(np.uint8)
            pixels[..., c % 3] += 150
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root
