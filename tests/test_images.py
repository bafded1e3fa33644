"""Safe decoding of untrusted image bytes: caps checked before decoding, every colour mode to RGB, EXIF."""

from __future__ import annotations

import io

import numpy as np
import pytest
from api_factory import image_bytes, png_declaring
from PIL import Image

from lewel.files.images import (
    ImageTooLargeError,
    MaskError,
    UnsupportedImageError,
    decode_image,
    decode_mask,
    read_mask,
    to_rgb,
)


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("RGB", "PNG"),
        ("L", "PNG"),
        ("1", "PNG"),
        ("RGBA", "PNG"),
        ("LA", "PNG"),
        ("P", "PNG"),
        ("I;16", "PNG"),
        ("I;16", "TIFF"),
        ("F", "TIFF"),
        ("CMYK", "JPEG"),
        ("CMYK", "TIFF"),
        ("RGB", "JPEG"),
        ("RGB", "WEBP"),
        ("RGB", "BMP"),
        ("RGB", "GIF"),
        ("YCbCr", "JPEG"),
    ],
)
def test_every_mode_decodes_to_rgb(mode, fmt):
    image = decode_image(image_bytes(mode, (40, 30), fmt))
    assert image.mode == "RGB" and image.size == (40, 30)
    assert image.info["source_format"] == fmt


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    image = decode_image(buffer.getvalue())
    assert image.info["source_mode"] == "I;16"
    assert np.asarray(image)[0, :, 0].tolist() == [0, 100, 255]


def test_float_grayscale_spans_black_to_white():
    image = to_rgb(Image.fromarray(np.array([[-3.0, 0.0, 5.0]], dtype=np.float32)))
    assert np.asarray(image)[0, :, 0].tolist() == [0, 96, 255]


@pytest.mark.parametrize(("background", "value"), [("white", 255), ("black", 0)])
def test_transparency_is_composited_on_the_background(background, value):
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red under a fully transparent alpha must not show
    rgba[0, 0] = (10, 20, 30, 255)
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
    pixels = np.asarray(decode_image(buffer.getvalue(), background=background))
    assert pixels[0, 0].tolist() == [10, 20, 30]
    assert pixels[1, 1].tolist() == [value] * 3


def test_palette_transparency_is_honoured():
    palette = Image.new("P", (2, 1))
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.putpixel((0, 0), 0)
    palette.putpixel((1, 0), 1)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG", transparency=0)
    pixels = np.asarray(decode_image(buffer.getvalue(), background="black"))
    assert pixels[0].tolist() == [[0, 0, 0], [0, 255, 0]]


def test_exif_orientation_is_applied():
    landscape = Image.fromarray(np.zeros((20, 50, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buffer = io.BytesIO()
    landscape.save(buffer, "JPEG", exif=exif)
    assert decode_image(buffer.getvalue()).size == (20, 50)


def test_caps_are_checked_before_decoding():
    with pytest.raises(ImageTooLargeError, match="pixels"):
        decode_image(png_declaring(5000, 5000), max_pixels=1_000_000)
    with pytest.raises(ImageTooLargeError, match="decompression bomb"):
        decode_image(png_declaring(100_000, 100_000), max_pixels=10**12)  # Pillow's own bomb limit
    with pytest.raises(ImageTooLargeError, match="bytes"):
        decode_image(image_bytes(), max_bytes=100)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"plain text, not an image",
        image_bytes()[:60],
        image_bytes(fmt="JPEG")[:200],
        png_declaring(64, 64),
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
    ],
    ids=["empty", "text", "truncated-png", "truncated-jpeg", "corrupt-data", "eps"],
)
def test_unusable_bytes_are_refused(data):
    with pytest.raises(UnsupportedImageError):
        decode_image(data)


def _png(values: np.ndarray, palette: bool = False) -> bytes:
    picture = Image.fromarray(values, mode="P" if palette else "L")
    if palette:
        picture.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] * 85 + [224, 224, 192])
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("palette", [False, True])
def test_read_mask_tells_instance_coded_masks_from_binary_ones(palette):
    values = np.zeros((24, 32), np.uint8)
    values[:12, :16], values[:12, 16:], values[12] = 2, 5, 255  # two instances and an ignored row
    mask = read_mask(_png(values, palette), (64, 48))  # the image's aspect ratio: resized with nearest
    assert mask.ids == (2, 5) and mask.instances.shape == (48, 64)
    assert set(np.unique(mask.instances)) == {0, 1, 2} and mask.instances[0, 0] == 1 and mask.instances[0, -1] == 2
    assert mask.objects.dtype == np.int8 and mask.objects[24, 0] == -1 and mask.objects[-1, 0] == 0


@pytest.mark.parametrize("high", [1, 255])
def test_read_mask_keeps_binary_masks_binary(high):
    values = np.zeros((48, 64), np.uint8)
    values[:, :32] = high
    if high == 255:
        values[0, 31] = 30  # a dark edge pixel of a 0/255 mask does not make it instance-coded
    mask = read_mask(_png(values), (64, 48))
    assert mask.instances is None and mask.ids == ()
    np.testing.assert_array_equal(mask.objects, decode_mask(_png(values), (64, 48)))


def test_read_mask_refuses_instance_masks_without_background():
    values = np.ones((8, 8), np.uint8)
    values[:, 4:] = 2
    with pytest.raises(MaskError, match="no background"):
        read_mask(_png(values), (8, 8))


def _png16(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buffer, "PNG")  # Pillow writes a 16-bit grey PNG (I;16)
    return buffer.getvalue()


def test_read_mask_keeps_16_bit_instance_ids_apart():
    values = np.zeros((24, 32), np.uint16)
    values[:8], values[8:12], values[12:16, :8], values[16] = 256, 300, 1, 65535  # ids over 255, one ignored row
    mask = read_mask(_png16(values), (32, 24))
    assert mask.ids == (1, 256, 300)  # read as 8 bits, 256 and 300 both became 1 and merged
    assert set(np.unique(mask.instances)) == {0, 1, 2, 3}
    assert mask.instances[0, 0] == 2 and mask.instances[9, 0] == 3 and mask.instances[13, 0] == 1
    assert mask.objects.dtype == np.int8 and mask.objects[16, 0] == -1 and mask.objects[-1, 0] == 0


@pytest.mark.parametrize("high", [1, 255, 65535])
def test_read_mask_keeps_16_bit_binary_masks_binary(high):
    values = np.zeros((24, 32), np.uint16)
    values[:, :16] = high
    mask = read_mask(_png16(values), (32, 24))
    assert mask.instances is None and mask.objects[:, :16].all() and not mask.objects[:, 16:].any()


def test_read_mask_refuses_a_16_bit_mask_with_too_many_instances():
    values = np.arange(1, 24 * 32 + 1, dtype=np.uint16).reshape(24, 32) * 50
    values[0] = 0
    with pytest.raises(MaskError, match=r"numbers \d+ instances; at most 64"):
        read_mask(_png16(values), (32, 24))
