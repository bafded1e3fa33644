"""Latency of the inference service against the library it serves.

For each backbone (LEWEL_B with the released head: hid 4096, d 256, h 4; random weights), at one input size:

1. in process, batch 1: ``LewelModel.extract`` (all outputs, and maps only: ``aligned_projection=False``,
   what ``/v1/maps`` runs) against a bare backbone forward (alternated, medians; FLOPs from
   ``torch.utils.flop_counter``), and the whole library pipeline of a ``/v1/maps`` request (decode, views,
   extract, statistics, frame warps, agreement);
2. ``POST /v1/maps`` (views=0, all d maps, JSON) to a real ``uvicorn api.main:app`` on localhost, one request
   at a time: p50 / p95 against the in-process times;
3. ``--clients`` concurrent clients posting for ``--duration`` seconds: failures, throughput, latency, and the
   server's resident memory (``/proc/PID/status`` VmRSS) from the start to the end of the load.

On a GPU it also measures batched extraction of the last backbone in bf16 (images/s, ``--gpu-batch``).

    python benchmarks/api_latency.py --backbones resnet18 resnet50 --size 224 --repetitions 20 \
        --clients 32 --duration 60 --warmup 10 --threads 1

``--threads`` sets torch's CPU threads in this process and the server's (``LEWEL_TORCH_THREADS``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx2
import numpy as np
import torch
from PIL import Image
from service_process import ServiceProcess, status_kib
from torch.utils.flop_counter import FlopCounterMode

from lewel.config import ModelConfig
from lewel.export import export_safetensors
from lewel.files.images import decode_image
from lewel.inference import LewelModel, load_model
from lewel.maps.analysis import analyze_maps, extract_views
from lewel.models import build_backbone, build_head

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"extract/backbone": 1.05, "maps_p50/in_process": 1.25, "rss_growth": 0.10, "gpu_images_per_s": 3000}


def write_model(backbone: str, folder: Path) -> Path:
    """A LEWEL_B inference export with the released head sizes (random weights) named ``bench_<backbone>``."""
    config = ModelConfig.for_method("lewel_b_eman", backbone=backbone)
    encoder = build_backbone(backbone)
    model = LewelModel(encoder, build_head(config, encoder.out_channels), config=config)
    return export_safetensors(model, folder / f"bench_{backbone}.safetensors")


def test_image(size: int) -> bytes:
    """A 640×480 JPEG with some structure (gradients and noise), what a photo upload costs to decode."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    pixels = np.stack([x / 640 * 255, y / 480 * 255, (x + y) % 256], axis=-1) + rng.normal(0, 20, (480, 640, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def in_process(model: LewelModel, size: int, repetitions: int, image: bytes) -> dict:
    """Batch-1 timings: backbone forward and extract (all outputs, maps only) in alternation, then the
    whole maps pipeline."""
    x = torch.randn(1, 3, size, size)
    calls = {
        "backbone": lambda: model.backbone(x),
        "extract": lambda: model.extract(x),
        "extract_maps_only": lambda: model.extract(x, aligned_projection=False),
    }
    with torch.inference_mode():
        for _ in range(3):
            for call in calls.values():
                call()
        times: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(repetitions):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
        flops = {}
        for name, call in calls.items():
            counter = FlopCounterMode(display=False)
            with counter:
                call()
            flops[name] = counter.get_total_flops()

    def pipeline() -> None:
        views, extraction = extract_views(model, decode_image(image), views=0, size=size, aligned_projection=False)
        analyze_maps(views, extraction)

    for _ in range(3):
        pipeline()
    times["pipeline"] = []
    for _ in range(repetitions):
        start = time.perf_counter()
        pipeline()
        times["pipeline"].append(time.perf_counter() - start)
    median = {k: statistics.median(v) for k, v in times.items()}
    return {
        "median_s": median,
        "p95_s": {k: percentile(v, 95) for k, v in times.items()},
        "gflops": {k: v / 1e9 for k, v in flops.items()},
        "ratio_extract_backbone": median["extract"] / median["backbone"],
        "ratio_maps_only_backbone": median["extract_maps_only"] / median["backbone"],
        "flop_ratio_extract_backbone": flops["extract"] / flops["backbone"],
        "flop_ratio_maps_only_backbone": flops["extract_maps_only"] / flops["backbone"],
    }


def rss_bytes(pid: int) -> int:
    return status_kib(pid, "VmRSS") * 1024


class Server(ServiceProcess):
    """``uvicorn api.main:app`` in a subprocess serving ``folder``."""

    def __init__(self, folder: Path, model_id: str, size: int, threads: int | None) -> None:
        env = {
            **os.environ,
            "LEWEL_MODELS_DIR": str(folder),
            "LEWEL_BUNDLED_MODELS_DIR": str(folder / "none"),
            "LEWEL_DEFAULT_MODEL": model_id,
            "LEWEL_WARMUP_SIZE": str(size),
        }
        if threads is not None:
            env["LEWEL_TORCH_THREADS"] = str(threads)
        super().__init__(["-m", "uvicorn", "api.main:app", "--host", "127.0.0.1"], cwd=ROOT, env=env)


def sequential(server: Server, image: bytes, size: int, repetitions: int) -> dict:
    form = {"views": "0", "size": str(size)}
    times = []
    with httpx2.Client(base_url=server.base, timeout=120) as client:
        for i in range(repetitions + 3):
            start = time.perf_counter()
            response = client.post("/v1/maps", files={"image": ("photo.jpg", image, "image/jpeg")}, data=form)
            elapsed = time.perf_counter() - start
            response.raise_for_status()
            if i >= 3:
                times.append(elapsed)
            size_bytes = len(response.content)
    return {
        "p50_s": percentile(times, 50),
        "p95_s": percentile(times, 95),
        "response_bytes": size_bytes,
        "all_s": times,
    }


async def load(server: Server, image: bytes, size: int, clients: int, duration: float, warmup: float) -> dict:
    """``clients`` workers posting /v1/maps back to back: ``warmup`` seconds not counted (the server's thread
    pool and allocator reach their working size), then ``duration`` seconds measured. Memory growth is the
    resident size at the end of the measured phase over that at its start."""
    form = {"views": "0", "size": str(size)}
    latencies: list[float] = []
    failures: list[str] = []
    rss_before_warmup = rss_bytes(server.process.pid)
    rss: list[int] = []
    measure_from = time.monotonic() + warmup
    stop_at = measure_from + duration

    async def worker(client: httpx2.AsyncClient) -> None:
        while time.monotonic() < stop_at:
            counted = time.monotonic() >= measure_from
            start = time.perf_counter()
            try:
                response = await client.post("/v1/maps", files={"image": ("photo.jpg", image, "image/jpeg")}, data=form)
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                elif counted:
                    latencies.append(time.perf_counter() - start)
            except httpx2.HTTPError as error:
                failures.append(f"{type(error).__name__}: {error}")

    async def sample_memory() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        while time.monotonic() < stop_at:
            rss.append(rss_bytes(server.process.pid))
            await asyncio.sleep(1)

    limits = httpx2.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx2.AsyncClient(base_url=server.base, timeout=600, limits=limits) as client:
        await asyncio.gather(sample_memory(), *(worker(client) for _ in range(clients)))
        elapsed = time.monotonic() - measure_from
    rss.append(rss_bytes(server.process.pid))
    return {
        "clients": clients,
        "warmup_s": warmup,
        "duration_s": elapsed,
        "rss_before_warmup_mb": rss_before_warmup / 2**20,
        "requests_ok": len(latencies),
        "failures": len(failures),  # warm-up included
        "failure_examples": failures[:5],
        "requests_per_s": len(latencies) / elapsed,
        "latency_p50_s": percentile(latencies, 50) if latencies else None,
        "latency_p95_s": percentile(latencies, 95) if latencies else None,
        "rss_start_mb": rss[0] / 2**20,
        "rss_end_mb": rss[-1] / 2**20,
        "rss_max_mb": max(rss) / 2**20,
        "rss_growth": rss[-1] / rss[0] - 1,
    }


def gpu_throughput(path: Path, size: int, batch: int, repetitions: int) -> dict:
    """Batched extraction in bf16 autocast, channels_last, GPU-resident inputs: images/s."""
    model = load_model(path, map_location="cuda").to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size, device="cuda").to(memory_format=torch.channels_last)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        for _ in range(3):
            model.extract(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repetitions):
            model.extract(x)
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / repetitions
    return {
        "device": torch.cuda.get_device_name(),
        "batch": batch,
        "precision": "bf16 autocast",
        "images_per_s": batch / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repetitions", type=int, default=20)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of load before measuring")
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads here and in the server")
    parser.add_argument("--out", default=None, help="default: benchmarks/results/api_latency_<cpu|cuda>.json")
    args = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    image = test_image(args.size)
    results: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "size": args.size,
        "command": "python " + " ".join(sys.argv),
        "targets": TARGETS,
        "backbones": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for backbone in args.backbones:
            path = write_model(backbone, folder)
            model = load_model(path)
            print(f"{backbone}: in process ...", flush=True)
            local = in_process(model, args.size, args.repetitions, image)
            del model
            print(f"{backbone}: server ...", flush=True)
            server = Server(folder, path.stem, args.size, args.threads)
            try:
                served = sequential(server, image, args.size, args.repetitions)
                loaded = asyncio.run(load(server, image, args.size, args.clients, args.duration, args.warmup))
            finally:
                server.stop()
            entry = {
                "in_process": local,
                "maps_endpoint": {k: v for k, v in served.items() if k != "all_s"},
                "ratio_maps_p50_extract": served["p50_s"] / local["median_s"]["extract"],
                "ratio_maps_p95_extract": served["p95_s"] / local["median_s"]["extract"],
                "ratio_maps_p50_maps_only": served["p50_s"] / local["median_s"]["extract_maps_only"],
                "ratio_maps_p95_maps_only": served["p95_s"] / local["median_s"]["extract_maps_only"],
                "ratio_maps_p50_pipeline": served["p50_s"] / local["median_s"]["pipeline"],
                "load": loaded,
            }
            results["backbones"][backbone] = entry
            print(json.dumps({k: v for k, v in entry.items() if k != "in_process"}, indent=1), flush=True)
            ratios = (
                f"extract/backbone {local['ratio_extract_backbone']:.3f} "
                f"(FLOPs {local['flop_ratio_extract_backbone']:.3f}), maps only "
                f"{local['ratio_maps_only_backbone']:.3f} (FLOPs {local['flop_ratio_maps_only_backbone']:.3f})"
            )
            print("  " + ratios)
        if device == "cuda":
            results["gpu"] = gpu_throughput(
                folder / f"bench_{args.backbones[-1]}.safetensors", args.size, args.gpu_batch, args.repetitions
            )
            print(results["gpu"])
    out = Path(args.out or f"benchmarks/results/api_latency_{device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
