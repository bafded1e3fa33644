"""Safe image decoding: size caps, decompression bombs, EXIF orientation and every colour mode -> RGB.

``decode_image`` is what the API, the app and notebooks use to turn untrusted bytes into an RGB
``PIL.Image``. The order of the checks is what makes it safe: the byte cap first, then the format (only
raster formats whose decoders run no external program), then the *declared* width × height against the
pixel cap before a single pixel is decoded, then decoding (a truncated or corrupt file fails here).

Colour modes, after EXIF orientation is applied:

- ``RGB`` as is; ``L``, ``1``, ``YCbCr``, ``LAB``, ``HSV`` converted by Pillow;
- ``CMYK``: Pillow's conversion without colour management (``R = 255 − min(255, C + K)`` ...); Adobe's
  inverted CMYK JPEGs are un-inverted by Pillow's decoder beforehand;
- 16-bit and 32-bit integer grayscale (``I;16``, ``I;16B``, ``I;16L``, ``I``): values are read as 16-bit
  (0–65535) and scaled to 8 bits (÷ 257), values outside clipped;
- float grayscale (``F``): scaled linearly from the image's minimum (black) to its maximum (white);
- alpha (``RGBA``, ``LA``, ``PA``, ``La``, ``RGBa``, and palette images with a transparent colour):
  composited onto a plain ``background`` (white by default, or black), so transparent pixels do not show
  whatever colour happens to be stored under them.
"""

from __future__ import annotations

import io
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

Image.init()  # register every plugin, so that the formats below are known to Image.open

#: Raster formats accepted (those this Pillow can read). Deliberately excludes EPS/PS (Pillow runs
#: Ghostscript), PDF and the rest.
ALLOWED_FORMATS: tuple[str, ...] = tuple(
    f for f in ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF", "PPM", "TGA") if f in Image.OPEN
)
DEFAULT_MAX_PIXELS = 40_000_000  #: 40 megapixels, e.g. 8000×5000
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
Background = Literal["white", "black"]


class ImageDecodeError(ValueError):
    """The bytes cannot be used as an image; the message says why."""


class ImageTooLargeError(ImageDecodeError):
    """The file, or the image it declares, exceeds a cap (bytes, pixels, or Pillow's bomb limit)."""


class UnsupportedImageError(ImageDecodeError):
    """Not an image, a format that is not accepted, or a corrupt / truncated file."""


def _declared_size_check(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise UnsupportedImageError(f"the image declares an empty size {width}×{height}")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}×{height} = {width * height:,} pixels, over the limit of {max_pixels:,} pixels"
        )


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    values = np.asarray(image).astype(np.float64)
    return Image.fromarray(np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8), mode="L")


def _float_to_l(image: Image.Image) -> Image.Image:
    values = np.asarray(image).astype(np.float64)
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scaled = (np.nan_to_num(values, nan=low, posinf=high, neginf=low) - low) / max(high - low, 1e-12)
    return Image.fromarray(np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image, *, background: Background = "white") -> Image.Image:
    """Any Pillow mode -> 8-bit ``RGB`` (see the module docstring for each mode); alpha is composited onto
    a white or black ``background``."""
    if background not in ("white", "black"):
        raise ValueError(f"background must be 'white' or 'black', got {background!r}")
    if image.mode in SIXTEEN_BIT_MODES:
        image = _sixteen_bit_to_l(image)
    elif image.mode == "F":
        image = _float_to_l(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBa", "La"):
        image = image.convert("RGBA")
    if image.mode in ("LA", "PA"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        fill = (255, 255, 255, 255) if background == "white" else (0, 0, 0, 255)
        base = Image.new("RGBA", image.size, fill)
        return Image.alpha_composite(base, image).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = None,
    background: Background = "white",
) -> Image.Image:
    """Untrusted bytes -> an RGB ``PIL.Image`` upright as its EXIF orientation says (first frame of
    animations and multi-page files).

    ``image.info`` records ``source_format`` and ``source_mode`` (the file's own colour mode). Truncated
    files are errors (Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` left off). Raises ``ImageTooLargeError``
    when ``data`` exceeds ``max_bytes`` or the declared width × height exceeds ``max_pixels`` (checked before
    decoding), and ``UnsupportedImageError`` for anything that is not a complete image in one of
    ``ALLOWED_FORMATS``.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageTooLargeError(f"the file is {len(data):,} bytes, over the limit of {max_bytes:,} bytes")
    if not data:
        raise UnsupportedImageError("the file is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"refused as a decompression bomb: {error}") from None
    except UnidentifiedImageError:
        raise UnsupportedImageError(
            f"not an image in a supported format (accepted: {', '.join(ALLOWED_FORMATS)})"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise UnsupportedImageError(f"cannot read the image: {error}") from None
    with image:
        _declared_size_check(image, max_pixels)
        file_format, source_mode = image.format, image.mode
        try:
            image.seek(0)
            image.load()
            upright = ImageOps.exif_transpose(image)
            _declared_size_check(upright, max_pixels)
            rgb = to_rgb(upright, background=background)
        except ImageDecodeError:
            raise
        except Image.DecompressionBombError as error:
            raise ImageTooLargeError(f"refused as a decompression bomb: {error}") from None
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, MemoryError) as error:
            raise UnsupportedImageError(f"cannot decode the {file_format} image: {error}") from None
    rgb.info.update(source_format=file_format, source_mode=source_mode)
    return rgb


class MaskError(ValueError):
    """Bytes that cannot serve as an object mask for a given image; the message says why."""


MASK_MAX_GREY = 0.05  #: a mask may have at most this share of grey pixels (not 0, 1 or 255: e.g. JPEG edges)
MASK_ASPECT_TOLERANCE = 0.02  #: a mask of another size is resized when its aspect ratio is within 2 % of the image's


def decode_mask(
    data: bytes, image_size: tuple[int, int], *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int | None = None
) -> np.ndarray:
    """Untrusted bytes -> an ``H×W`` bool object mask for an image of ``image_size = (W, H)``.

    The file is decoded as ``decode_image`` does (same caps and formats, EXIF orientation, alpha onto
    black) and read as grey levels: object pixels are those >= 128, or == 1 when the file holds only 0 and 1.
    A mask of another size is resized with nearest when its aspect ratio is that of the image (within
    ``MASK_ASPECT_TOLERANCE``). Raises ``ImageDecodeError`` for undecodable files and ``MaskError`` for a
    mask that is not binary (over ``MASK_MAX_GREY`` grey pixels), of another aspect ratio, or without
    object or without background pixels (AUROC needs both).
    """
    try:
        picture = decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes, background="black")
    except ImageDecodeError as error:
        raise type(error)(f"the mask: {error}") from None
    grey = np.asarray(picture.convert("L"))
    share = float(((grey > 1) & (grey < 255)).mean())
    if share > MASK_MAX_GREY:
        raise MaskError(
            f"the mask is not binary: {share:.0%} of its pixels are grey (between 2 and 254); send a PNG with "
            "0 for background and 255 (or 1) for objects"
        )
    width, height = image_size
    if picture.size != (width, height):
        aspect, expected = picture.width / picture.height, width / height
        if abs(aspect / expected - 1) > MASK_ASPECT_TOLERANCE:
            raise MaskError(
                f"the mask is {picture.width}×{picture.height} but the image is {width}×{height}: a mask must have "
                "the image's size or its aspect ratio"
            )
        grey = np.asarray(picture.convert("L").resize((width, height), Image.Resampling.NEAREST))
    objects = grey == 1 if grey.max() <= 1 else grey >= 128
    if not objects.any():
        raise MaskError("the mask has no object pixels (all black): AUROC needs objects and background")
    if objects.all():
        raise MaskError("the mask has no background pixels (all white): AUROC needs objects and background")
    return objects
