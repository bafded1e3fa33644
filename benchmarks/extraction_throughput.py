"""Throughput of batch map extraction (``lewel maps`` / ``lewel.maps.extraction.extract_maps``), in images per second.

For each ``BACKBONE:SIZE`` setting, a LEWEL_B model with the released head (hid 4096, d 256, h 4; random
weights, a safetensors export) and a folder of ``--images`` JPEG photos-like files (random sizes around
400×300, so that decoding costs what it costs on real data):

1. **end to end**: ``extract_maps`` over the folder: decoding, resizing (view 0 only), the forward pass,
   per-map statistics and the float16 NPZ shards; ``images_per_s`` counts from the first progress report (the
   model loaded, the checkpoint hashed, the loader started) to the last, ``images_per_s_with_startup`` from the
   call to its return;
2. **model only**: ``MapExtractor`` (normalisation on the device, ``extract`` without the aligned projection)
   on a ready batch of ``--batch-size`` uint8 images, the median of ``--repetitions``: the ceiling of (1).

    OMP_NUM_THREADS=1 python benchmarks/extraction_throughput.py --settings resnet18:64 resnet18:128 resnet50:224 \
        --images 256 128 48 --threads 1 --workers 1
    python benchmarks/extraction_throughput.py --device cuda --dtype bf16 --settings resnet50:224 \
        --images 20000 --batch-size 256 --workers 12 --writers 4   # the GPU run (target >= 3,000 images/s)

Results go to ``benchmarks/results/extraction_<device>.json`` (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lewel.config import ModelConfig
from lewel.export import export_safetensors
from lewel.inference import LewelModel, load_model
from lewel.maps.extraction import MapExtractor, extract_maps, pick_device
from lewel.models import build_backbone, build_head

ROOT = Path(__file__).resolve().parent.parent
TARGET_GPU_IMAGES_PER_S = 3000  #: ResNet-50 at 224 px on one H100-class GPU, bf16


def write_model(backbone: str, folder: Path) -> Path:
    """A LEWEL_B inference export with the released head sizes (random weights)."""
    config = ModelConfig.for_method("lewel_b_eman", backbone=backbone)
    encoder = build_backbone(backbone)
    return export_safetensors(LewelModel(encoder, build_head(config, encoder.out_channels), config=config),
                              folder / f"bench_{backbone}.safetensors")


def write_images(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` JPEGs (quality 90) of 320–480 × 240–360 pixels: gradients plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        width, height = int(rng.integers(320, 481)), int(rng.integers(240, 361))
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack([x / width * 255, y / height * 255, (x + y + i) % 256], axis=-1)
        pixels = np.clip(base + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:06d}.jpg", quality=90)
    return folder


def model_only(checkpoint: Path, size: int, batch: int, repetitions: int, device: torch.device, dtype: str) -> dict:
    """Median images/s of ``MapExtractor`` on one ready uint8 batch."""
    extractor = MapExtractor(load_model(checkpoint), device, dtype)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    if device.type == "cuda":
        images = images.pin_memory()
    for _ in range(2):
        maps = extractor(images)
    times = []
    for _ in range(repetitions):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        maps = extractor(images)  # ends with .cpu(): synchronised
        times.append(time.perf_counter() - start)
    return {"batch": batch, "repetitions": repetitions, "median_s": statistics.median(times),
            "images_per_s": batch / statistics.median(times), "maps_shape": list(maps.shape)}


def end_to_end(checkpoint: Path, data: Path, out: Path, size: int, args: argparse.Namespace) -> dict:
    """``extract_maps`` over ``data``: images/s between the first and the last progress report, and overall."""
    marks: list[tuple[float, int]] = []
    start = time.perf_counter()
    index = extract_maps(
        checkpoint, str(data), out, size=size, batch_size=args.batch_size, shard_size=args.shard_size,
        workers=args.workers, writers=args.writers, device=args.device, dtype=args.dtype,
        progress=lambda done, total: marks.append((time.perf_counter(), done)),
    )
    total = time.perf_counter() - start
    (first, _), (last, done) = marks[0], marks[-1]
    shard_bytes = sum((out / s["file"]).stat().st_size for s in index["shards"])
    return {
        "images": index["extracted"],
        "seconds": last - first,
        "images_per_s": done / (last - first),
        "seconds_with_startup": total,
        "images_per_s_with_startup": done / total,
        "shard_bytes_per_image": shard_bytes / max(done, 1),
        "grid": index["grid"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", nargs="+", default=["resnet18:64", "resnet18:128", "resnet50:224"],
                        help="BACKBONE:SIZE settings (default: resnet18:64 resnet18:128 resnet50:224)")
    parser.add_argument("--images", type=int, nargs="+", default=[256, 128, 48],
                        help="images per setting, one number or one per setting (default: 256 128 48)")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: 32)")
    parser.add_argument("--shard-size", type=int, default=256, help="images per shard (default: 256)")
    parser.add_argument("--workers", type=int, default=1, help="data loader processes (default: 1)")
    parser.add_argument("--writers", type=int, default=2, help="shard-writing threads (default: 2)")
    parser.add_argument("--repetitions", type=int, default=5, help="timed batches of the model-only pass (default: 5)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"), help="bf16 autocast (default: fp32)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="result JSON (default: benchmarks/results/extraction_<device>.json)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    counts = args.images * len(args.settings) if len(args.images) == 1 else args.images
    if len(counts) != len(args.settings):
        parser.error("--images takes one number or one per setting")
    device = pick_device(args.device)
    results = []
    with tempfile.TemporaryDirectory(prefix="lewel-extraction-bench-") as scratch:
        folder = Path(scratch)
        for setting, count in zip(args.settings, counts, strict=True):
            backbone, size = setting.split(":")
            checkpoint = write_model(backbone, folder)
            data = folder / f"images_{count}"
            if not data.exists():
                write_images(data, count)
            row = {"backbone": backbone, "size": int(size), "dtype": args.dtype,
                   "model_only": model_only(checkpoint, int(size), args.batch_size, args.repetitions, device, args.dtype),
                   "end_to_end": end_to_end(checkpoint, data, folder / f"out_{backbone}_{size}", int(size), args)}
            results.append(row)
            e2e, only = row["end_to_end"], row["model_only"]
            print(f"{backbone} {size} px: {e2e['images_per_s']:.1f} images/s end to end "
                  f"({e2e['images_per_s_with_startup']:.1f} with start-up), model only {only['images_per_s']:.1f} images/s",
                  flush=True)
    name = "cuda" if device.type == "cuda" else device.type
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"extraction_{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.machine()}, {os.cpu_count()} cores)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "command": "python benchmarks/extraction_throughput.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "model": "LEWEL_B (EMAN), released head: hid 4096, d 256, h 4; random weights; maps only (no aligned projection)",
        "data": "JPEG, 320-480 x 240-360 px, quality 90; view 0 only (the whole image resized to SIZE)",
        "batch_size": args.batch_size,
        "workers": args.workers,
        "writers": args.writers,
        "target_gpu_images_per_s": TARGET_GPU_IMAGES_PER_S,
        "results": results,
    }
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
