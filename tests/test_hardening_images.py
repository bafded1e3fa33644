"""Decoding high-bit-depth and float images without float64 copies of the whole image (issue 15, item 3)."""

from __future__ import annotations

import io
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lewel.files.images as images
from lewel.files.images import decode_image, to_rgb

REPO = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 7000, 5700  #: 39.9 MP, under the 40 MP cap: the issue's float TIFF


def float_tiff(width: int = WIDTH, height: int = HEIGHT) -> bytes:
    values = np.zeros((height, width), dtype=np.float32)
    values[:100, :100] = 3.5
    values[-1, -1] = np.nan
    buffer = io.BytesIO()
    Image.fromarray(values, mode="F").save(buffer, "TIFF", compression="tiff_deflate")
    return buffer.getvalue()


def sixteen_bit_png(width: int = WIDTH, height: int = HEIGHT) -> bytes:
    values = np.zeros((height, width), dtype=np.uint16)
    values[:100, :100] = 40000
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def large_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("large")
    paths = {"float.tiff": folder / "float.tiff", "16bit.png": folder / "16bit.png"}
    paths["float.tiff"].write_bytes(float_tiff())
    paths["16bit.png"].write_bytes(sixteen_bit_png())
    return paths


@pytest.mark.parametrize("name", ["float.tiff", "16bit.png"])
def test_decoding_allocates_about_a_byte_per_pixel(large_files, name):
    data = large_files[name].read_bytes()
    assert len(data) < 300_000  # a small file that declares 40 MP
    tracemalloc.start()
    try:
        picture = decode_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert picture.size == (WIDTH, HEIGHT) and picture.mode == "RGB"
    bright = 255 if name == "float.tiff" else 156  # 40000 / 257 = 155.6
    assert picture.getpixel((10, 10)) == (bright,) * 3 and picture.getpixel((500, 500)) == (0, 0, 0)
    # before: float64 copies of the whole image, 1.5-1.8 GB; now the 8-bit result (40 MB) and a few strips
    assert peak < 2.5 * WIDTH * HEIGHT, f"{peak / 2**20:.0f} MiB traced"


def test_the_resident_memory_of_a_decode_stays_bounded(large_files):
    script = (
        "import resource, sys\n"
        "from lewel.files.images import decode_image\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "decode_image(data)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)\n"
    )
    for name, bound in (("float.tiff", 400), ("16bit.png", 400)):  # MiB; before: +1,834 and +1,066
        run = subprocess.run(
            [sys.executable, "-c", script, str(large_files[name])], cwd=REPO, capture_output=True, text=True, timeout=120
        )
        assert run.returncode == 0, run.stderr
        grown = int(run.stdout.strip()) / 2**20
        assert grown < bound, f"{name}: +{grown:.0f} MiB resident"


def reference_float(values: np.ndarray) -> np.ndarray:
    """The former whole-image float64 conversion, for comparison."""
    values = values.astype(np.float64)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scaled = (np.nan_to_num(values, nan=low, posinf=high, neginf=low) - low) / max(high - low, 1e-12)
    return np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8)


def reference_sixteen(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("strip", [1 << 20, 37])
def test_strips_give_the_same_pixels_as_the_whole_image(monkeypatch, strip):
    monkeypatch.setattr(images, "STRIP_PIXELS", strip)
    rng = np.random.default_rng(0)
    floats = (rng.random((53, 41)) * 9 - 4).astype(np.float32)
    floats[3, 4], floats[5, 6], floats[7, 8] = np.nan, np.inf, -np.inf
    got = np.asarray(to_rgb(Image.fromarray(floats, mode="F")).convert("L"))
    np.testing.assert_array_equal(got, reference_float(floats))
    constant = np.full((9, 11), np.nan, dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(to_rgb(Image.fromarray(constant, mode="F")))[..., 0], 0)
    sixteen = (rng.random((53, 41)) * 65535).astype(np.uint16)
    sixteen[0, :4] = [0, 128, 129, 65535]
    got = np.asarray(to_rgb(Image.fromarray(sixteen)).convert("L"))
    np.testing.assert_array_equal(got, reference_sixteen(sixteen))
    wide = rng.integers(-70000, 140000, size=(13, 17)).astype(np.int32)
    got = np.asarray(to_rgb(Image.fromarray(wide, mode="I")).convert("L"))
    np.testing.assert_array_equal(got, reference_sixteen(np.clip(wide, 0, None)))


def test_exif_orientation_is_applied_to_a_float_tiff():
    values = np.zeros((20, 40), dtype=np.float32)
    values[:, :5] = 1.0  # a bright left edge
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90° clockwise: the left edge becomes the top
    Image.fromarray(values, mode="F").save(buffer, "TIFF", exif=exif)
    picture = decode_image(buffer.getvalue())
    assert picture.size == (20, 40)
    assert picture.getpixel((10, 0)) == (255, 255, 255) and picture.getpixel((10, 39)) == (0, 0, 0)
