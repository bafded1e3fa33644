"""Builders for the API tests: tiny model folders, images in every mode, hand-made PNG headers."""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from checkpoint_factory import our_training_file
from conftest import tiny_config
from PIL import Image

from lewel.export import export_safetensors
from lewel.inference import load_model


def image_bytes(mode: str = "RGB", size: tuple[int, int] = (64, 48), fmt: str = "PNG", seed: int = 0, **save) -> bytes:
    """An image file of ``size`` (W, H) in ``mode`` with random content."""
    rng = np.random.default_rng(seed)
    width, height = size
    if mode == "I;16":
        image = Image.fromarray((rng.random((height, width)) * 65535).astype(np.uint16))
    elif mode == "F":
        image = Image.fromarray(rng.random((height, width)).astype(np.float32) * 7 - 3)
    elif mode == "P":
        image = Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8)).convert("P")
    else:
        image = Image.fromarray((rng.random((height, width, 3)) * 255).astype(np.uint8)).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save)
    return buffer.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width × height`` RGB pixels but whose data is a few bytes: what a
    decompression bomb or a lying file looks like before decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def build_models(folder: Path) -> dict[str, Path]:
    """A models folder: ``tiny`` (LEWEL_B training file), ``tiny_m`` (LEWEL_M safetensors export), ``byol``
    (no maps), ``broken`` (an unsafe pickle: it needs ``pathlib`` to unpickle) and ``wrongkeys`` (tensors,
    but not a model). ResNet-18 with tiny heads (d 32, h 4)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "tiny": folder / "tiny.pt",
        "byol": folder / "byol.pth",
        "broken": folder / "broken.pt",
        "wrongkeys": folder / "wrongkeys.pth.tar",
    }
    our_training_file(paths["tiny"], tiny_config("lewel_b"))
    our_training_file(paths["byol"], tiny_config("byol"))
    staging = folder.parent / f".{folder.name}_staging.pt"
    our_training_file(staging, tiny_config("lewel_m"))
    paths["tiny_m"] = export_safetensors(load_model(staging), folder / "tiny_m.safetensors")
    staging.unlink()
    torch.save({"state_dict": {}, "where": Path("/etc/passwd")}, paths["broken"])
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, paths["wrongkeys"])
    return paths


def wait_ready(client, timeout: float = 60.0) -> dict:
    """Poll ``/readyz`` until it answers 200; the last body."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response.json()
        time.sleep(0.05)
