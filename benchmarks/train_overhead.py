"""Training-step cost of LEWEL against its baseline: LEWEL_B vs BYOL, LEWEL_M vs MoCo v2.

Same backbone, batch and input for all four; the methods are timed in alternation (round robin, after
warm-up steps) so that the machine's drift hits them alike, and the ratios of median step times are reported
with the paper's (seed Table 9: LEWEL_B +4.4 % over BYOL, LEWEL_M +0.7 % over MoCo v2). A step is what the
training loop does: forward of both views, backward, optimiser step, momentum update. On a GPU the batches
are synthetic and GPU-resident, with bf16 autocast and channels_last, and images/s are reported too.

    python benchmarks/train_overhead.py --backbone resnet18 --image-size 64 --batch-size 64
    python benchmarks/train_overhead.py --backbone resnet50 --image-size 224 --batch-size 16   # CPU
    python benchmarks/train_overhead.py --backbone resnet50 --image-size 224 --batch-size 128  # GPU
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from lewel.config import ModelConfig
from lewel.models import build_model
from lewel.optim import build_optimizer

PAIRS = (("lewel_b_eman", "byol"), ("lewel_m", "mocov2"))
PAPER = {"lewel_b_eman/byol": 1191 / 1141, "lewel_m/mocov2": 1222 / 1213}
TARGET = {"lewel_b_eman/byol": 1.03, "lewel_m/mocov2": 1.01}


def make_step(method: str, backbone: str, device: torch.device, dtype: torch.dtype | None, channels_last: bool):
    overrides = {"backbone": backbone}
    if method == "byol":
        overrides["eman"] = True  # like for like with LEWEL_B EMAN: only the head and the loss differ
    model = build_model(ModelConfig.for_method(method, **overrides)).to(device).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    family_moco = method in ("lewel_m", "mocov2")
    optimizer = build_optimizer(model, "sgd" if family_moco else "lars", 0.03 if family_moco else 3.6, 1e-4 if family_moco else 1e-6)

    def step(view1: torch.Tensor, view2: torch.Tensor) -> None:
        context = torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()
        with context:
            loss = model(view1, view2).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        model.update_target(0.99)

    return step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per method (at least 1: the FLOP count)")
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per method, in alternation")
    parser.add_argument("--out", default=None, help="result file (default: benchmarks/results/train_overhead_<device>_<backbone>_<size>.json)")
    args = parser.parse_args()
    if args.warmup < 1:
        parser.error("--warmup must be at least 1")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else None
    channels_last = device.type == "cuda"
    torch.manual_seed(0)
    shape = (args.batch_size, 3, args.image_size, args.image_size)
    view1, view2 = torch.randn(shape, device=device), torch.randn(shape, device=device)
    if channels_last:
        view1, view2 = view1.to(memory_format=torch.channels_last), view2.to(memory_format=torch.channels_last)

    methods = [m for pair in PAIRS for m in pair]
    steps = {m: make_step(m, args.backbone, device, dtype, channels_last) for m in methods}
    flops = {}
    for method in methods:
        counter = FlopCounterMode(display=False)
        with counter:  # the first warm-up step, counted: FLOPs are exact where times are noisy
            steps[method](view1, view2)
        flops[method] = counter.get_total_flops()
        for _ in range(args.warmup - 1):
            steps[method](view1, view2)
    times: dict[str, list[float]] = {m: [] for m in methods}
    for _ in range(args.rounds):
        for method in methods:
            synchronize(device)
            start = time.perf_counter()
            steps[method](view1, view2)
            synchronize(device)
            times[method].append(time.perf_counter() - start)

    median = {m: statistics.median(t) for m, t in times.items()}
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "precision": "bf16 autocast" if dtype else "fp32",
        "backbone": args.backbone,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "median_step_s": median,
        "images_per_s": {m: args.batch_size / s for m, s in median.items()},
        "ratios": {f"{a}/{b}": median[a] / median[b] for a, b in PAIRS},
        "gflops_per_step": {m: f / 1e9 for m, f in flops.items()},
        "flop_ratios": {f"{a}/{b}": flops[a] / flops[b] for a, b in PAIRS},
        "paper_ratios": PAPER,
        "targets": TARGET,
        "all_step_s": times,
    }
    out = Path(args.out or f"benchmarks/results/train_overhead_{device.type}_{args.backbone}_{args.image_size}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name, ratio in result["ratios"].items():
        print(f"{name}: time {ratio:.3f}, FLOPs {result['flop_ratios'][name]:.3f} (paper {PAPER[name]:.3f}, target <= {TARGET[name]})")
    for method in methods:
        print(f"{method}: {median[method]:.3f} s/step, {args.batch_size / median[method]:.1f} images/s")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
