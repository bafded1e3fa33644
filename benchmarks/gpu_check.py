"""Every GPU check in one call: CUDA tests, training and extraction speed, /v1/maps on the GPU, a short training.

Steps, in order (each one's failure is recorded and the next still runs):

- ``env``: torch, CUDA, the GPUs, bf16 support;
- ``pytest``: the ``cuda``-marked tests (``tests/test_cuda.py``);
- ``train_overhead``: ``benchmarks/train_overhead.py`` (bf16, channels_last, GPU-resident batches): LEWEL_B /
  BYOL and LEWEL_M / MoCo v2 step-time ratios next to their FLOP ratios and the paper's (targets <= 1.08 and
  <= 1.05), peak memory per step and the aligned InfoNCE alone, images/s;
- ``extract``: batched ``LewelModel.extract`` in bf16 autocast (LEWEL_B, released head, random weights), images/s;
- ``maps_latency``: ``POST /v1/maps`` to a real ``uvicorn api.main:app`` serving from the GPU, p50 / p95,
  against the same pipeline in process;
- ``nccl``: a 2-process ``torchrun`` training on nccl, when more than one GPU is present;
- ``train``: ``lewel train`` of LEWEL_M at 224 px on generated scenes for ``--train-seconds`` (3 minutes), then
  stopped; its losses must be finite and its ``last.pt`` must open.

Results go to ``--out`` (else ``$OUT``, else ``runs/gpu_check``): ``gpu_check.json`` (everything, rewritten
after each step), ``gpu_check.txt`` (a short summary), ``gpu_check.log`` (the steps' own output),
``train_overhead.json``, ``pytest_cuda.xml`` and ``train_metrics.jsonl``. The exit status is 1 when a step
failed (``--strict``: also when a speed target is missed), else 0.

``--dry-run`` runs the same code on the CPU at tiny sizes (ResNet-18, 32-64 px, a few steps): no
measurements, only a check that the script works; ``tests/test_gpu_check.py`` runs it.

    benchmarks/gpu_check.sh                 # on one GPU: about 7 minutes
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
for _path in (str(ROOT), str(BENCHMARKS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

STEPS = ("env", "pytest", "train_overhead", "extract", "maps_latency", "nccl", "train")
TARGETS = {"lewel_b_images_per_s": 1250.0, "extract_images_per_s": 3000.0}
STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")


@dataclass(frozen=True)
class Sizes:
    """How big each step runs: the GPU run's sizes, or the dry run's tiny ones."""

    backbone: str
    image_size: int
    overhead_batch: int
    overhead_warmup: int
    overhead_rounds: int
    extract_size: int
    extract_batch: int
    extract_repetitions: int
    maps_size: int
    maps_repetitions: int
    train_backbone: str
    train_size: int
    train_batch: int
    train_scenes: int
    train_workers: int
    nccl_size: int
    nccl_batch: int
    nccl_scenes: int
    test_paths: tuple[str, ...] = ("tests/test_cuda.py",)


GPU = Sizes(
    backbone="resnet50", image_size=224, overhead_batch=256, overhead_warmup=3, overhead_rounds=10,
    extract_size=224, extract_batch=256, extract_repetitions=20, maps_size=224, maps_repetitions=30,
    train_backbone="resnet50", train_size=224, train_batch=256, train_scenes=1_000_000,
    train_workers=max(1, min(14, (os.cpu_count() or 4) - 2)), nccl_size=64, nccl_batch=128, nccl_scenes=1024,
)
DRY = Sizes(
    backbone="resnet18", image_size=32, overhead_batch=4, overhead_warmup=1, overhead_rounds=1,
    extract_size=64, extract_batch=4, extract_repetitions=2, maps_size=64, maps_repetitions=2,
    train_backbone="resnet18", train_size=32, train_batch=8, train_scenes=16, train_workers=1,
    nccl_size=32, nccl_batch=8, nccl_scenes=16,
)


@dataclass
class Context:
    """What every step sees: the mode, the sizes, where results and scratch files go, the log."""

    dry_run: bool
    sizes: Sizes
    out: Path
    scratch: Path
    train_seconds: float
    train_data: str | None
    log: TextIO
    device: str = "cpu"
    gpus: int = 0
    model_file: Path | None = None
    targets: list[dict[str, Any]] = field(default_factory=list)

    def target(self, name: str, value: float | None, limit: float, *, at_least: bool) -> None:
        """Record a speed target; in a dry run it is not evaluated."""
        met = None if self.dry_run or value is None else (value >= limit if at_least else value <= limit)
        self.targets.append({"name": name, "value": value, "target": f"{'>=' if at_least else '<='} {limit:g}", "met": met})


def prepare_environment(dry_run: bool) -> None:
    """For this process and the steps' subprocesses: this checkout importable without installing it, output
    unbuffered, progress bars rare in the log; in a dry run no GPU visible and one CPU thread per process
    (OpenMP threads contending for a small machine's cores run many times slower). Set before torch loads."""
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ["PYTHONUNBUFFERED"] = "1"
    os.environ["TQDM_MININTERVAL"] = "10"
    if dry_run:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        os.environ["OMP_NUM_THREADS"] = "1"


class StepFailed(RuntimeError):
    """A step ran but its result is wrong (a test failed, a loss is not finite, a process exited badly)."""


def run_logged(ctx: Context, command: list[str], *, timeout: float, name: str) -> int:
    """Run ``command`` with its output appended to the log; returns its exit status (-9 after a timeout)."""
    ctx.log.write(f"\n===== {name}: {' '.join(command)}\n")
    ctx.log.flush()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=ctx.log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_default_sigint
    )
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        ctx.log.write(f"===== {name}: killed after {timeout:.0f} s\n")
        return -9


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default. A job started in the background of a
    non-interactive shell (CI, nohup … &) inherits SIGINT ignored, and Python then installs no
    KeyboardInterrupt handler, so the Ctrl-C-style stop would be ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_for(ctx: Context, command: list[str], *, seconds: float, name: str, grace: float = 60.0) -> tuple[int, bool]:
    """Run ``command`` (output to the log) until it ends or ``seconds`` pass, then interrupt it (SIGINT, as
    Ctrl-C; SIGKILL to its process group after ``grace`` seconds). Returns (exit status, whether stopped)."""
    ctx.log.write(f"\n===== {name}: {' '.join(command)}\n")
    ctx.log.flush()
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=ctx.log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_default_sigint
    )
    try:
        return process.wait(timeout=seconds), False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
    try:
        code = process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
    ctx.log.write(f"\n===== {name}: stopped after {seconds:.0f} s\n")
    return code, True


def log_tail(ctx: Context, characters: int = 1500) -> str:
    """The end of the log, for error messages."""
    ctx.log.flush()
    text = Path(ctx.log.name).read_text(errors="replace")
    return text[-characters:]


def step_env(ctx: Context) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    result: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_available": cuda,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "stamps": STAMPS_DIR.is_dir(),
    }
    if cuda:
        ctx.gpus = torch.cuda.device_count()
        result.update(
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            gpus=[torch.cuda.get_device_name(i) for i in range(ctx.gpus)],
            bf16=torch.cuda.is_bf16_supported(),
            memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
        )
    if ctx.dry_run:
        ctx.device, ctx.gpus = "cpu", 0
        return result
    if not cuda:
        raise StepFailed("no CUDA device: this check needs a GPU (use --dry-run on a CPU)")
    if not result["bf16"]:
        raise StepFailed(f"{result['gpus'][0]} does not support bf16")
    ctx.device = "cuda"
    return result


def step_pytest(ctx: Context) -> dict[str, Any]:
    report = ctx.out / "pytest_cuda.xml"
    command = [sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", f"--junitxml={report}", *ctx.sizes.test_paths]
    code = run_logged(ctx, command, timeout=300, name="pytest")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if report.is_file():
        for suite in ElementTree.parse(report).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    result = {"exit_code": code, **counts, "passed": counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]}
    if code != 0:
        raise StepFailed(f"pytest -m cuda exited with {code}: {counts}\n{log_tail(ctx)}")
    if not ctx.dry_run and (counts["skipped"] or not counts["tests"]):
        raise StepFailed(f"CUDA tests skipped or missing on a GPU machine: {counts}")
    return result


def step_train_overhead(ctx: Context) -> dict[str, Any]:
    s = ctx.sizes
    path = ctx.out / "train_overhead.json"
    command = [
        sys.executable, str(BENCHMARKS / "train_overhead.py"), "--backbone", s.backbone, "--image-size", str(s.image_size),
        "--batch-size", str(s.overhead_batch), "--warmup", str(s.overhead_warmup), "--rounds", str(s.overhead_rounds),
        "--out", str(path), *(["--no-memory"] if ctx.dry_run else []),
    ]
    code = run_logged(ctx, command, timeout=400, name="train_overhead")
    if code != 0 or not path.is_file():
        raise StepFailed(f"train_overhead.py exited with {code}\n{log_tail(ctx)}")
    data = json.loads(path.read_text())
    if not ctx.dry_run and data["precision"] != "bf16 autocast":
        raise StepFailed(f"train_overhead.py ran in {data['precision']}, not bf16 autocast")
    lewel_b = data["images_per_s"]["lewel_b_eman"]
    ctx.target("train_overhead: LEWEL_B images/s", lewel_b, TARGETS["lewel_b_images_per_s"], at_least=True)
    for pair, ratio in data["ratios"].items():
        ctx.target(f"train_overhead: {pair} step-time ratio", ratio, data["targets"][pair], at_least=False)
    keys = ("device", "precision", "backbone", "image_size", "batch_size", "rounds", "median_step_s", "images_per_s",
            "ratios", "flop_ratios", "time_over_flop_ratios", "paper_ratios", "targets", "step_peak_mib", "aligned_info_nce")
    return {key: data[key] for key in keys if key in data}


def bench_model(ctx: Context) -> Path:
    """The LEWEL_B export with the released head (random weights) that ``extract`` and ``maps_latency`` use."""
    if ctx.model_file is None or not ctx.model_file.is_file():
        from lewel.config import ModelConfig
        from lewel.export import export_safetensors
        from lewel.inference import LewelModel
        from lewel.models import build_backbone, build_head

        folder = ctx.scratch / "models"
        folder.mkdir(parents=True, exist_ok=True)
        config = ModelConfig.for_method("lewel_b_eman", backbone=ctx.sizes.backbone)
        encoder = build_backbone(ctx.sizes.backbone)
        model = LewelModel(encoder, build_head(config, encoder.out_channels), config=config)
        ctx.model_file = export_safetensors(model, folder / f"bench_{ctx.sizes.backbone}.safetensors")
    return ctx.model_file


def synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def step_extract(ctx: Context) -> dict[str, Any]:
    import torch

    from lewel.inference import load_model

    s = ctx.sizes
    model = load_model(bench_model(ctx), map_location=ctx.device).to(memory_format=torch.channels_last)
    images = torch.randn(s.extract_batch, 3, s.extract_size, s.extract_size, device=ctx.device)
    images = images.contiguous(memory_format=torch.channels_last)
    result: dict[str, Any] = {"backbone": s.backbone, "size": s.extract_size, "batch": s.extract_batch,
                              "precision": "bf16 autocast", "device": ctx.device}
    with torch.autocast(ctx.device, dtype=torch.bfloat16):
        for name, maps_only in (("extract", False), ("extract_maps_only", True)):
            for _ in range(3):
                extraction = model.extract(images, aligned_projection=not maps_only)
            synchronize(ctx.device)
            times = []
            for _ in range(s.extract_repetitions):
                start = time.perf_counter()
                extraction = model.extract(images, aligned_projection=not maps_only)
                synchronize(ctx.device)
                times.append(time.perf_counter() - start)
            if not torch.isfinite(extraction.maps.float()).all():
                raise StepFailed(f"{name}: the maps are not finite in bf16")
            result[f"{name}_images_per_s"] = s.extract_batch / statistics.median(times)
            result[f"{name}_maps_shape"] = list(extraction.maps.shape)
    if ctx.device == "cuda":
        result["max_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    ctx.target("extract: images/s (all outputs, bf16)", result["extract_images_per_s"], TARGETS["extract_images_per_s"], at_least=True)
    return result


def step_maps_latency(ctx: Context) -> dict[str, Any]:
    import httpx2
    from api_latency import TARGETS as API_TARGETS
    from api_latency import Server, percentile, sequential, test_image

    from lewel.files.images import decode_image
    from lewel.inference import load_model
    from lewel.maps.analysis import analyze_maps, extract_views

    s = ctx.sizes
    path = bench_model(ctx)
    image = test_image(s.maps_size)
    model = load_model(path, map_location=ctx.device)

    def pipeline() -> None:
        views, extraction = extract_views(model, decode_image(image), views=0, size=s.maps_size, aligned_projection=False)
        analyze_maps(views, extraction)
        synchronize(ctx.device)

    for _ in range(3):
        pipeline()
    times = []
    for _ in range(s.maps_repetitions):
        start = time.perf_counter()
        pipeline()
        times.append(time.perf_counter() - start)
    del model
    in_process = statistics.median(times)

    server = Server(path.parent, path.stem, s.maps_size, None)
    try:
        with httpx2.Client(base_url=server.base, timeout=120) as client:
            response = client.post("/v1/maps", files={"image": ("photo.jpg", image, "image/jpeg")},
                                   data={"views": "0", "size": str(s.maps_size)})
            response.raise_for_status()
            served_on = response.json()["model"]["device"]
        served = sequential(server, image, s.maps_size, s.maps_repetitions)
    finally:
        server.stop()
    if not ctx.dry_run and not served_on.startswith("cuda"):
        raise StepFailed(f"/v1/maps was served from {served_on}, not the GPU")
    ratio = served["p50_s"] / in_process
    ctx.target("maps_latency: /v1/maps p50 / in-process pipeline", ratio, API_TARGETS["maps_p50/in_process"], at_least=False)
    return {
        "backbone": s.backbone, "size": s.maps_size, "served_on": served_on, "repetitions": s.maps_repetitions,
        "p50_s": served["p50_s"], "p95_s": served["p95_s"], "response_bytes": served["response_bytes"],
        "in_process_pipeline_median_s": in_process, "in_process_pipeline_p95_s": percentile(times, 95),
        "ratio_p50_in_process": ratio,
    }


def training_data(ctx: Context, count: int, size: int, name: str) -> tuple[str, str]:
    """``scenes:N`` when the Tux Paint stamps are installed, else a folder of generated images (and a note)."""
    if ctx.train_data:
        return ctx.train_data, "given with --train-data"
    if STAMPS_DIR.is_dir():
        return f"scenes:{count}", "generated scenes"
    import numpy as np
    from PIL import Image

    folder = ctx.scratch / f"{name}_images"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:size, 0:size]
    for i in range(min(count, 2048)):
        base = np.stack([x * rng.uniform(0.5, 2), y * rng.uniform(0.5, 2), (x + y) * rng.uniform(0.2, 1)], axis=-1)
        pixels = np.clip(base % 256 + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)
    return str(folder), f"NOTE: no Tux Paint stamps at {STAMPS_DIR}; {min(count, 2048)} generated gradient images instead of scenes"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [record for record in map(json.loads, path.read_text().splitlines()) if "loss" in record]


def summarize_run(records: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    """Steps, losses and throughput (between the first and the last logged step) of a run's metrics."""
    result: dict[str, Any] = {"logged_steps": len(records)}
    if not records:
        return result
    losses = [r["loss"] for r in records]
    result.update(steps=records[-1]["step"], first_loss=losses[0], last_loss=losses[-1],
                  losses_finite=all(math.isfinite(v) for v in losses))
    if len(records) > 1 and records[-1]["time"] > records[0]["time"]:
        steps_per_s = (records[-1]["step"] - records[0]["step"]) / (records[-1]["time"] - records[0]["time"])
        result.update(steps_per_s=steps_per_s, images_per_s=steps_per_s * batch)
    return result


def step_nccl(ctx: Context) -> dict[str, Any]:
    if not ctx.dry_run and ctx.gpus < 2:
        return {"skip_reason": f"{ctx.gpus} GPU: a 2-process nccl run needs at least 2"}
    s = ctx.sizes
    data, note = training_data(ctx, s.nccl_scenes, s.nccl_size, "nccl")
    out = ctx.scratch / "nccl_run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "lewel.cli", "train",
        "--method", "lewel_b_eman", "--backbone", "resnet18", "--image-size", str(s.nccl_size), "--data", data,
        "--batch-size", str(s.nccl_batch), "--epochs", "1", "--workers", "1", "--sync-bn", "--log-every", "1",
        "--warmup-epochs", "0", "--out", str(out),
    ]
    code = run_logged(ctx, command, timeout=300, name="nccl")
    summary = summarize_run(read_metrics(out / "metrics.jsonl"), s.nccl_batch)
    if code != 0:
        raise StepFailed(f"torchrun exited with {code}\n{log_tail(ctx)}")
    if not summary.get("losses_finite"):
        raise StepFailed(f"the 2-process run logged no finite losses: {summary}")
    from lewel.inference import load_model

    load_model(out / "last.pt")
    return {"backend": "gloo (dry run, CPU)" if ctx.dry_run else "nccl", "processes": 2, "data": note, **summary}


def step_train(ctx: Context) -> dict[str, Any]:
    s = ctx.sizes
    data, note = training_data(ctx, s.train_scenes, s.train_size, "train")
    out = ctx.scratch / "train_run"
    command = [
        sys.executable, "-m", "lewel.cli", "train", "--method", "lewel_m", "--backbone", s.train_backbone,
        "--image-size", str(s.train_size), "--data", data, "--batch-size", str(s.train_batch),
        "--epochs", "1" if ctx.dry_run else "1000", "--workers", str(s.train_workers), "--log-every", "1" if ctx.dry_run else "10",
        "--save-every", "1000", "--save-every-steps", "1" if ctx.dry_run else "150", "--out", str(out),
    ]
    started = time.monotonic()
    code, stopped = run_for(ctx, command, seconds=ctx.train_seconds, name="train")
    seconds = time.monotonic() - started
    metrics = out / "metrics.jsonl"
    if metrics.is_file():
        (ctx.out / "train_metrics.jsonl").write_text(metrics.read_text())
    summary = summarize_run(read_metrics(metrics), s.train_batch)
    result = {"method": "lewel_m", "backbone": s.train_backbone, "image_size": s.train_size, "batch_size": s.train_batch,
              "workers": s.train_workers, "data": note, "seconds": seconds, "stopped_at_time_limit": stopped,
              "exit_code": code, **summary}
    if not stopped and code != 0:
        raise StepFailed(f"lewel train exited with {code} after {seconds:.0f} s\n{log_tail(ctx)}")
    if summary["logged_steps"] < 2 or not summary.get("losses_finite"):
        raise StepFailed(f"lewel train logged too few or non-finite losses: {summary}\n{log_tail(ctx)}")
    if not (out / "last.pt").is_file():
        raise StepFailed("lewel train wrote no last.pt")
    from lewel.inference import load_model

    model = load_model(out / "last.pt")
    result["checkpoint"] = {"method": model.method, "d": model.d, "h": model.h}
    return result


STEP_FUNCTIONS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "env": step_env, "pytest": step_pytest, "train_overhead": step_train_overhead, "extract": step_extract,
    "maps_latency": step_maps_latency, "nccl": step_nccl, "train": step_train,
}


def fmt(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def step_line(name: str, entry: dict[str, Any]) -> str:
    """One summary line per step: its status, its time and its main numbers."""
    r = entry.get("result", {})
    if entry["status"] == "failed":
        detail = entry["error"].splitlines()[0][:200]
    elif "skip_reason" in r:
        detail = r["skip_reason"]
    elif name == "env":
        detail = ", ".join(r.get("gpus", [])) or "no GPU"
        detail += f"; torch {r['torch']}" + (f", CUDA {r['cuda']}" if r.get("cuda") else "")
    elif name == "pytest":
        detail = f"{r['passed']} passed, {r['failures'] + r['errors']} failed, {r['skipped']} skipped"
    elif name == "train_overhead":
        parts = [f"{pair} time {fmt(r['ratios'][pair])} (FLOPs {fmt(r['flop_ratios'][pair])}, paper {fmt(r['paper_ratios'][pair], 4)})"
                 for pair in r["ratios"]]
        parts.append(f"LEWEL_B {r['images_per_s']['lewel_b_eman']:.0f} images/s")
        detail = "; ".join(parts)
    elif name == "extract":
        detail = f"{r['extract_images_per_s']:.0f} images/s (maps only {r['extract_maps_only_images_per_s']:.0f})"
    elif name == "maps_latency":
        detail = f"p50 {r['p50_s'] * 1e3:.1f} ms, p95 {r['p95_s'] * 1e3:.1f} ms on {r['served_on']} (in process {r['in_process_pipeline_median_s'] * 1e3:.1f} ms)"
    elif name in ("train", "nccl"):
        speed = f", {r['images_per_s']:.0f} images/s" if "images_per_s" in r else ""
        detail = f"{r.get('steps', 0)} steps, loss {fmt(r.get('first_loss'))} -> {fmt(r.get('last_loss'))}{speed}"
    else:
        detail = ""
    return f"[{entry['status']:<7}] {name:<15} {entry['seconds']:6.1f} s  {detail}"


def write_results(ctx: Context, report: dict[str, Any]) -> None:
    """``gpu_check.json`` and ``gpu_check.txt`` as they stand."""
    report["targets"] = ctx.targets
    failed = [name for name, entry in report["steps"].items() if entry["status"] == "failed"]
    missed = [t["name"] for t in ctx.targets if t["met"] is False]
    report["failed_steps"], report["missed_targets"] = failed, missed
    (ctx.out / "gpu_check.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    mode = "DRY RUN on the CPU at tiny sizes: the numbers are no measurements" if ctx.dry_run else "GPU run"
    lines = [f"LEWEL GPU check, {report['date']} ({mode})"]
    lines += [step_line(name, entry) for name, entry in report["steps"].items()]
    if ctx.targets:
        lines.append("targets:")
        for t in ctx.targets:
            verdict = "not evaluated (dry run)" if t["met"] is None else ("met" if t["met"] else "NOT MET")
            lines.append(f"  {t['name']}: {fmt(t['value'], 4)} (target {t['target']}): {verdict}")
    notes = [entry["result"]["data"] for entry in report["steps"].values()
             if str(entry.get("result", {}).get("data", "")).startswith("NOTE")]
    lines += sorted(set(notes))
    total = f"; {report['seconds']:.0f} s in all" if "seconds" in report else ""
    lines.append(f"failed steps: {', '.join(failed) or 'none'}; missed targets: {len(missed)}{total}")
    (ctx.out / "gpu_check.txt").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="results folder (default: $OUT, else runs/gpu_check)")
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at tiny sizes (default: off)")
    parser.add_argument("--only", nargs="+", choices=STEPS, default=None, metavar="STEP",
                        help=f"run these steps only, env always runs (default: all of {', '.join(STEPS)})")
    parser.add_argument("--skip", nargs="+", choices=STEPS, default=(), metavar="STEP", help="steps to leave out (default: none)")
    parser.add_argument("--train-seconds", type=float, default=180.0,
                        help="how long the LEWEL_M training runs (default: %(default)s)")
    parser.add_argument("--train-data", default=None, help="training data for train and nccl (default: scenes, or "
                        "generated images without the Tux Paint stamps)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a speed target is missed, too (default: off)")
    args = parser.parse_args(argv)

    prepare_environment(args.dry_run)
    out = Path(args.out or os.environ.get("OUT") or ROOT / "runs" / "gpu_check")
    out.mkdir(parents=True, exist_ok=True)
    selected = [s for s in STEPS if (args.only is None or s in args.only or s == "env") and s not in args.skip]
    report: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "dry_run": args.dry_run,
        "argv": list(argv) if argv is not None else sys.argv[1:],
        "steps": {},
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as scratch, (out / "gpu_check.log").open("w") as log:
        ctx = Context(args.dry_run, DRY if args.dry_run else GPU, out, Path(scratch), args.train_seconds, args.train_data, log)
        for name in selected:
            step_start = time.monotonic()
            print(f"gpu_check: {name} ...", flush=True)
            try:
                result = STEP_FUNCTIONS[name](ctx)
                entry = {"status": "skipped" if "skip_reason" in result else "ok", "result": result}
            except Exception as error:  # every failure is recorded and the next step still runs
                message = str(error) if isinstance(error, StepFailed) else traceback.format_exc()
                entry = {"status": "failed", "error": message}
                log.write(f"\n===== {name} failed:\n{message}\n")
            entry["seconds"] = time.monotonic() - step_start
            report["steps"][name] = entry
            print(step_line(name, entry), flush=True)
            write_results(ctx, report)
            if name == "env" and entry["status"] == "failed":
                break
        report["seconds"] = time.monotonic() - started
        write_results(ctx, report)
    print((out / "gpu_check.txt").read_text(), end="")
    print(f"results in {out}")
    if report["failed_steps"] or (args.strict and report["missed_targets"]):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
