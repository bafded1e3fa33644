"""How fast can a profile's random control family go through its images? Milliseconds per image per network
for the ways of running ``K`` controls of lewel_m_demo's shape (ResNet-18 LEWEL_M, d 128) on one batch of
``--batch-size`` images at ``--size`` px, each the median of ``--repetitions``, all measured in one run:

- ``sequential_1_thread``: one control after another, one torch thread;
- ``sequential``: one control after another on every core (torch's intra-op threads: what profiles did);
- ``sequential_folded``: the same with each convolution's BatchNorm folded into it
  (``lewel.inference.LewelModel.folded``, what profiles do now);
- ``vmap_K``: K controls' backbones in one batched call (``torch.func.stack_module_state`` + ``torch.vmap``,
  which turns every convolution into one grouped convolution), the heads after it;
- ``processes_P``: P processes at once, each with ``cores / P`` threads, each running its share of the controls.

    python benchmarks/control_batching.py                       # CPU, every core
    python benchmarks/control_batching.py --device cuda         # on a GPU (processes are skipped there)

Results go to ``benchmarks/results/control_batching_<device>.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from lewel.config import ModelConfig
from lewel.inference import LewelModel
from lewel.maps.controls import random_like
from lewel.models import build_backbone, build_head

ROOT = Path(__file__).resolve().parent.parent
SHAPE = ModelConfig.for_method("lewel_m", backbone="resnet18", hidden_dim=512, dim=128)  # lewel_m_demo's


def controls(count: int, device: str) -> list[LewelModel]:
    backbone = build_backbone(SHAPE.backbone)
    model = LewelModel(backbone, build_head(SHAPE, backbone.out_channels), config=SHAPE)
    return [random_like(model, seed, "torchvision").to(device).to(memory_format=torch.channels_last) for seed in range(count)]


def images(batch: int, size: int, device: str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, size, size, generator=generator).to(device).contiguous(memory_format=torch.channels_last)


def timed(run, repetitions: int, device: str) -> float:
    """Median seconds of ``run()`` after one warm-up call."""
    def once() -> float:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start
    once()
    return statistics.median(once() for _ in range(repetitions))


@torch.inference_mode()
def sequential(networks: list[LewelModel], batch: torch.Tensor) -> None:
    for network in networks:
        network.extract(batch, aligned_projection=False)


def vmapped(networks: list[LewelModel]):
    """One call that runs every network's backbone on the batch (a grouped convolution per layer), then each head."""
    parameters, buffers = torch.func.stack_module_state([n.backbone for n in networks])
    template = copy.deepcopy(networks[0].backbone).to("meta")

    def backbone(p, b, x):
        return torch.func.functional_call(template, (p, b), (x,))

    batched = torch.vmap(backbone, in_dims=(0, 0, None))

    @torch.inference_mode()
    def run(batch: torch.Tensor) -> None:
        features = batched(parameters, buffers, batch)
        for network, feature in zip(networks, features):
            network.neck(feature, aligned_projection=False)
    return run


WORKER = """
import sys, json, torch
sys.path.insert(0, sys.argv[1])
from benchmarks.control_batching import controls, images, sequential
torch.set_num_threads(int(sys.argv[2]))
networks, batch = controls(int(sys.argv[3]), "cpu"), images(int(sys.argv[4]), int(sys.argv[5]), "cpu")
sequential(networks, batch)  # warm-up, before the start signal
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[6])):
    sequential(networks, batch)
print("done", flush=True)
"""


def processes(count: int, networks: int, args: argparse.Namespace) -> float:
    """Seconds for ``count`` processes (``cores / count`` threads each) to run ``networks`` controls between them,
    ``--repetitions`` times, from a common start once every one has warmed up; per repetition."""
    threads = max(1, (os.cpu_count() or 1) // count)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(ROOT), str(threads), str(networks // count), str(args.batch_size),
             str(args.size), str(args.repetitions)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        for _ in range(count)
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    start = time.perf_counter()
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    for worker in workers:
        assert worker.stdout.readline().strip() == "done"
        worker.wait()
    return (time.perf_counter() - start) / args.repetitions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--controls", type=int, default=4, help="K, the controls run per measurement (default: 4)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    per_image = args.controls * args.batch_size * 1e-3  # seconds -> ms per image per network
    networks, batch = controls(args.controls, args.device), images(args.batch_size, args.size, args.device)
    folded = [network.folded() for network in networks]
    results: dict[str, float] = {}
    if args.device == "cpu":
        torch.set_num_threads(1)
        results["sequential_1_thread"] = timed(lambda: sequential(networks, batch), args.repetitions, args.device)
        torch.set_num_threads(cores)
    results["sequential"] = timed(lambda: sequential(networks, batch), args.repetitions, args.device)
    results["sequential_folded"] = timed(lambda: sequential(folded, batch), args.repetitions, args.device)
    for k in sorted({2, args.controls}):
        run = vmapped(networks[:k])
        results[f"vmap_{k}"] = timed(lambda: run(batch), args.repetitions, args.device) * args.controls / k
    if args.device == "cpu":
        for count in sorted({p for p in (2, cores) if 1 < p <= args.controls}):
            results[f"processes_{count}"] = processes(count, args.controls, args)
    ms = {name: seconds / per_image for name, seconds in results.items()}
    for name, value in ms.items():
        print(f"{name:>22}: {value:6.1f} ms per image per network ({ms['sequential'] / value:.2f}× sequential)")
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {cores} cores)"
    out = Path(args.out or ROOT / f"benchmarks/results/control_batching_{args.device}.json")
    out.write_text(json.dumps({
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "cpu_model": next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                           if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor(),
        "torch": torch.__version__,
        "command": " ".join(["python", "benchmarks/control_batching.py", *sys.argv[1:]]),
        "controls": args.controls, "batch_size": args.batch_size, "size": args.size, "repetitions": args.repetitions,
        "ms_per_image_per_network": ms,
        "speedup_over_sequential": {name: ms["sequential"] / value for name, value in ms.items()},
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
