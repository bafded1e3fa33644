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
  (0–65535) and scaled to 8 bits (÷ 257, rounded), values outside clipped;
- float grayscale (``F``): scaled linearly from the image's minimum (black) to its maximum (white) over the
  finite values (NaN shows as black, ±inf as white / black);
- alpha (``RGBA``, ``LA``, ``PA``, ``La``, ``RGBa``, and palette images with a transparent colour):
  composited onto a plain ``background`` (white by default, or black), so transparent pixels do not show
  whatever colour happens to be stored under them.

Memory: high-bit-depth and float images are converted to 8 bits in strips of ``STRIP_PIXELS`` pixels, so
the conversion adds one byte per pixel plus a few MB, not float64 copies of the whole image (8 bytes per
pixel each), and EXIF orientation is applied after that conversion, on the 8-bit image.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

Image.init()  # register every plugin, so that the formats below are known to Image.open

#: Raster formats accepted (those this Pillow can read). Deliberately excludes EPS/PS (Pillow runs
#: Ghostscript), PDF and the rest.
ALLOWED_FORMATS: tuple[str, ...] = tuple(
    f for f in ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF", "PPM", "TGA") if f in Image.OPEN
)
DEFAULT_MAX_PIXELS = 40_000_000  #: 40 megapixels, e.g. 8000×5000
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
STRIP_PIXELS = 1 << 20  #: pixels converted at once from a high-bit-depth or float image (8 MB in float64)
#: EXIF orientation -> the transpose that shows the image upright (what ``ImageOps.exif_transpose`` applies)
ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
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


def _bomb(error: Image.DecompressionBombError, max_pixels: int) -> ImageTooLargeError:
    """Pillow's refusal of a decompression bomb, told against ``max_pixels`` (the caller's limit), not Pillow's
    own ``Image.MAX_IMAGE_PIXELS`` that its message quotes."""
    declared = re.search(r"\((\d+) pixels\)", str(error))
    size = f"{int(declared.group(1)):,} pixels" if declared else "more pixels than Pillow opens"
    return ImageTooLargeError(
        f"the image declares {size}, over the limit of {max_pixels:,} pixels (refused before decoding, as a "
        "decompression bomb)"
    )


def _strips(image: Image.Image) -> list[tuple[int, int]]:
    """Row ranges ``[top, bottom)`` of about ``STRIP_PIXELS`` pixels each."""
    rows = max(1, STRIP_PIXELS // max(image.width, 1))
    return [(top, min(top + rows, image.height)) for top in range(0, image.height, rows)]


def _strip(image: Image.Image, top: int, bottom: int) -> np.ndarray:
    return np.asarray(image.crop((0, top, image.width, bottom)))


def _sixteen_bit_to_l(image: Image.Image) -> Image.Image:
    """16/32-bit grayscale -> ``L``: clip to 0–65535, ``round(v / 257)`` (in integers: ``(v + 128) // 257``)."""
    out = np.empty((image.height, image.width), dtype=np.uint8)
    for top, bottom in _strips(image):
        values = np.clip(_strip(image, top, bottom).astype(np.int64), 0, 65535)
        out[top:bottom] = (values + 128) // 257
    return Image.fromarray(out, mode="L")


def _float_to_l(image: Image.Image) -> Image.Image:
    """Float grayscale -> ``L``, from the minimum to the maximum finite value (two passes over strips)."""
    low, high = np.inf, -np.inf
    for top, bottom in _strips(image):
        values = _strip(image, top, bottom)
        finite = values[np.isfinite(values)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    if low > high:  # no finite value at all
        low, high = 0.0, 1.0
    scale = 255.0 / max(high - low, 1e-12)
    out = np.empty((image.height, image.width), dtype=np.uint8)
    for top, bottom in _strips(image):
        values = np.nan_to_num(_strip(image, top, bottom).astype(np.float64), nan=low, posinf=high, neginf=low)
        values -= low
        values *= scale
        np.rint(values, out=values)
        np.clip(values, 0, 255, out=values)
        out[top:bottom] = values
    return Image.fromarray(out, mode="L")


def _to_eight_bits(image: Image.Image) -> Image.Image:
    """High-bit-depth and float grayscale to ``L`` (in strips); other modes unchanged."""
    if image.mode in SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_l(image)
    if image.mode == "F":
        return _float_to_l(image)
    return image


def _upright(image: Image.Image, orientation: object) -> Image.Image:
    """``image`` transposed as its EXIF ``orientation`` (1–8) says; unchanged (no copy) when upright."""
    transpose = ORIENTATIONS.get(orientation) if isinstance(orientation, int) else None
    return image.transpose(transpose) if transpose is not None else image


def to_rgb(image: Image.Image, *, background: Background = "white") -> Image.Image:
    """Any Pillow mode -> 8-bit ``RGB`` (see the module docstring for each mode); alpha is composited onto
    a white or black ``background``."""
    if background not in ("white", "black"):
        raise ValueError(f"background must be 'white' or 'black', got {background!r}")
    image = _to_eight_bits(image)
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
        raise _bomb(error, max_pixels) from None
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
            orientation = image.getexif().get(0x0112)
            eight_bits = _to_eight_bits(image)
            if eight_bits is not image:
                image.close()  # frees the high-bit-depth pixels before the RGB copy is made
            upright = _upright(eight_bits, orientation)
            _declared_size_check(upright, max_pixels)
            rgb = to_rgb(upright, background=background)
        except ImageDecodeError:
            raise
        except Image.DecompressionBombError as error:
            raise _bomb(error, max_pixels) from None
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, MemoryError) as error:
            raise UnsupportedImageError(f"cannot decode the {file_format} image: {error}") from None
    rgb.info.update(source_format=file_format, source_mode=source_mode)
    return rgb


class MaskError(ValueError):
    """Bytes that cannot serve as an object mask for a given image; the message says why."""


MASK_MAX_GREY = 0.05  #: a mask may have at most this share of grey pixels (not 0, 1 or 255: e.g. JPEG edges)
MASK_ASPECT_TOLERANCE = 0.02  #: a mask of another size is resized when its aspect ratio is within 2 % of the image's


MASK_MAX_INSTANCES = 64  #: an instance-coded mask numbers its instances 1 .. this
MASK_IGNORED = 255  #: in an instance-coded mask: pixels of neither kind (Pascal VOC's border band)
SIXTEEN_BIT_MAX = 65535
MASK_IGNORED_16 = SIXTEEN_BIT_MAX  #: in a 16-bit instance-coded mask: pixels of neither kind


@dataclass(frozen=True)
class UploadedMask:
    """A decoded mask for one image (``H×W`` at the image's size).

    ``objects``: bool (True = object), or int8 (1 object, 0 background, -1 ignored) when an instance-coded
    mask has ignored pixels, the forms ``lewel.maps.object_coverage`` takes. An instance-coded mask also
    has ``instances`` (int16: 0 none, k + 1 for instance k, as ``lewel.maps.patterns.instance_labels``) and
    ``ids`` (the value instance k has in the file); a binary mask has ``None`` and ``()``."""

    objects: np.ndarray
    instances: np.ndarray | None = None
    ids: tuple[int, ...] = ()


def _mask_picture(data: bytes, max_pixels: int, max_bytes: int | None) -> Image.Image:
    try:
        return decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes, background="black")
    except ImageDecodeError as error:
        raise type(error)(f"the mask: {error}") from None


def _mask_values(data: bytes, picture: Image.Image) -> np.ndarray:
    """The mask's stored values: a palette file's indices (Pascal VOC's SegmentationObject PNGs) or a 16-bit
    file's own values (0–65535: instance ids above 255 stay apart), upright, else the grey levels of the
    decoded ``picture``."""
    mode = picture.info.get("source_mode")
    if mode == "P" or mode in SIXTEEN_BIT_MODES:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:  # already decoded once: safe
            image.seek(0)
            image.load()
            stored = _upright(image, image.getexif().get(0x0112))
            if stored.mode == "P" and stored.size == picture.size:
                return np.asarray(stored)
            if stored.mode in SIXTEEN_BIT_MODES and stored.size == picture.size:
                return np.clip(np.asarray(stored, dtype=np.int64), 0, SIXTEEN_BIT_MAX).astype(np.int32)
    return np.asarray(picture.convert("L"))


def _instance_coded(values: np.ndarray) -> bool:
    """Whether ``values`` number instances. 8-bit values: only 0, 1 .. ``MASK_MAX_INSTANCES`` and
    ``MASK_IGNORED``, not only 0 and 1 (a binary mask), and more instance pixels than ignored ones (a 0/255
    mask with a few dark edge pixels stays binary). 16-bit values (``int32``): anything but a plain binary
    mask (0 and one of 1, 255 or 65535), every value but 0 and ``MASK_IGNORED_16`` an instance id."""
    if values.dtype == np.int32:
        present = set(np.unique(values).tolist())
        return not (len(present - {0}) <= 1 and present - {0} <= {1, 255, SIXTEEN_BIT_MAX})
    counts = np.bincount(values.ravel(), minlength=256)
    present = set(np.flatnonzero(counts).tolist())
    labelled = [v for v in present if 1 <= v <= MASK_MAX_INSTANCES]
    others = present - {0, MASK_IGNORED} - set(labelled)
    return bool(labelled) and not others and not present <= {0, 1} and counts[labelled].sum() > counts[MASK_IGNORED]


def _to_image_size(values: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """``values`` (a mask's ``H×W`` uint8, or int32 16-bit values) at ``image_size = (W, H)``: resized with nearest when only the
    aspect ratio matches (``MaskError`` otherwise)."""
    width, height = image_size
    if values.shape == (height, width):
        return values
    aspect, expected = values.shape[1] / values.shape[0], width / height
    if abs(aspect / expected - 1) > MASK_ASPECT_TOLERANCE:
        raise MaskError(
            f"the mask is {values.shape[1]}×{values.shape[0]} but the image is {width}×{height}: a mask must have "
            "the image's size or its aspect ratio"
        )
    return np.asarray(Image.fromarray(values).resize((width, height), Image.Resampling.NEAREST), dtype=values.dtype)


def _check_both_kinds(objects: np.ndarray, background: np.ndarray) -> None:
    if not objects.any():
        raise MaskError("the mask has no object pixels (all black): AUROC needs objects and background")
    if not background.any():
        raise MaskError("the mask has no background pixels (all white): AUROC needs objects and background")


def read_mask(
    data: bytes, image_size: tuple[int, int], *, max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int | None = None
) -> UploadedMask:
    """Untrusted bytes -> the ``UploadedMask`` of an image of ``image_size = (W, H)``: binary or
    instance-coded.

    A mask is instance-coded when its values (a palette file's indices, else its grey levels) are 0
    (background), instance numbers 1 .. ``MASK_MAX_INSTANCES`` and perhaps ``MASK_IGNORED``, and it is not
    a plain 0/1 mask (``_instance_coded``); pixels at ``MASK_IGNORED`` are neither object nor background. A
    16-bit file is read with its own values (not scaled to 8 bits, so ids 256 and 300 stay two instances):
    0 background, ``MASK_IGNORED_16`` ignored, any other value an instance id (at most
    ``MASK_MAX_INSTANCES`` of them), unless it is a plain binary mask.
    Any other mask is binary and read exactly as ``decode_mask`` reads it. Sizes and errors as there."""
    picture = _mask_picture(data, max_pixels, max_bytes)
    values = _mask_values(data, picture)
    if not _instance_coded(values) and values.dtype == np.int32:  # 16-bit 0/1, 0/255 or 0/65535
        objects = _to_image_size(values, image_size) != 0
        _check_both_kinds(objects, ~objects)
        return UploadedMask(objects=objects)
    if not _instance_coded(values):
        return UploadedMask(objects=_binary_objects(picture, image_size))
    values = _to_image_size(values, image_size)
    if values.dtype == np.int32:
        ignored = values == MASK_IGNORED_16
        objects = (values != 0) & ~ignored
    else:
        ignored = values == MASK_IGNORED
        objects = (values >= 1) & (values <= MASK_MAX_INSTANCES)
    _check_both_kinds(objects, ~objects & ~ignored)
    ids = tuple(int(v) for v in np.unique(values[objects]))
    if len(ids) > MASK_MAX_INSTANCES:
        raise MaskError(
            f"the mask numbers {len(ids)} instances; at most {MASK_MAX_INSTANCES} are scored (0 background, one "
            f"value per instance, {MASK_IGNORED_16} ignored in a 16-bit mask)"
        )
    instances = np.zeros(values.shape, dtype=np.int16)
    for k, value in enumerate(ids):
        instances[values == value] = k + 1
    labels = np.where(objects, 1, np.where(ignored, -1, 0)).astype(np.int8) if ignored.any() else objects
    return UploadedMask(objects=labels, instances=instances, ids=ids)


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
    return _binary_objects(_mask_picture(data, max_pixels, max_bytes), image_size)


def _binary_objects(picture: Image.Image, image_size: tuple[int, int]) -> np.ndarray:
    """``decode_mask``'s reading of a decoded mask ``picture``: ``H×W`` bool at ``image_size``."""
    grey = np.asarray(picture.convert("L"))
    share = float(((grey > 1) & (grey < 255)).mean())
    if share > MASK_MAX_GREY:
        raise MaskError(
            f"the mask is not binary: {share:.0%} of its pixels are grey (between 2 and 254); send a PNG with "
            "0 for background and 255 (or 1) for objects, or an instance-coded one (0 background, 1 .. "
            f"{MASK_MAX_INSTANCES} one value per instance)"
        )
    grey = _to_image_size(grey, image_size)
    objects = grey == 1 if grey.max() <= 1 else grey >= 128
    _check_both_kinds(objects, ~objects)
    return objects
