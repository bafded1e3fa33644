"""Draw the app's sample images in static/samples/ (made here, so they carry this project's license):
simple shapes on smooth backgrounds, one object and several, to try the object and multi-object patterns.

    python scripts/make_static_samples.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent.parent / "static" / "samples"


def background(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    t = np.linspace(0, 1, size[1])[:, None, None]
    rows = (1 - t) * np.array(top) + t * np.array(bottom)
    return Image.fromarray(np.repeat(rows, size[0], axis=1).astype(np.uint8))


def one_object() -> Image.Image:
    image = background((480, 360), (196, 220, 240), (120, 150, 110))
    draw = ImageDraw.Draw(image)
    draw.ellipse((170, 110, 330, 270), fill=(214, 48, 38), outline=(90, 20, 20), width=4)
    draw.ellipse((215, 145, 255, 180), fill=(255, 170, 150))
    return image.filter(ImageFilter.GaussianBlur(1))


def three_objects() -> Image.Image:
    image = background((480, 360), (240, 232, 210), (170, 150, 120))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 170, 150, 290), fill=(40, 90, 200), outline=(10, 30, 80), width=4)
    draw.ellipse((200, 60, 300, 160), fill=(230, 180, 30), outline=(120, 90, 0), width=4)
    draw.polygon([(330, 300), (450, 300), (390, 190)], fill=(40, 160, 70), outline=(10, 70, 30))
    return image.filter(ImageFilter.GaussianBlur(1))


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    one_object().save(OUT / "one_object.png", optimize=True)
    three_objects().save(OUT / "three_objects.png", optimize=True)
    print(f"wrote {OUT}")
