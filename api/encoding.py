"""Serialising arrays and pictures for responses: base64 arrays in JSON, NPZ files, PNG images."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
import torch
from PIL import Image

from .schemas import EncodedArray


def encode_array(values: torch.Tensor | np.ndarray, dtype: str = "float16") -> EncodedArray:
    """An array as ``{dtype, shape, data}``: ``data`` is base64 of little-endian C-order bytes.
    Decode with ``np.frombuffer(base64.b64decode(data), dtype).reshape(shape)``."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    converted = np.ascontiguousarray(array.astype(np.dtype(dtype).newbyteorder("<")))
    return EncodedArray(
        dtype=dtype, shape=list(converted.shape), data=base64.b64encode(converted.tobytes()).decode("ascii")
    )


def decode_array(encoded: EncodedArray | dict[str, Any]) -> np.ndarray:
    """The inverse of ``encode_array`` (for clients and tests)."""
    body = encoded if isinstance(encoded, dict) else encoded.model_dump()
    raw = base64.b64decode(body["data"])
    return np.frombuffer(raw, dtype=np.dtype(body["dtype"]).newbyteorder("<")).reshape(body["shape"])


def png_bytes(image: Image.Image) -> bytes:
    """PNG with light compression (level 1: a few times faster to write than the default, a little larger)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_base64(image: Image.Image) -> str:
    return base64.b64encode(png_bytes(image)).decode("ascii")


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """Arrays as a compressed NPZ file (no pickled objects: strings are stored as fixed-width unicode)."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()
