"""Throughput of the service on Ray Serve (``python -m api.ray_serve``): ``POST /v1/maps`` requests per second with
1 and 2 replicas, each with batching on (``@serve.batch``) and off, on the bundled demo model (``lewel_b_demo``,
ResNet-18) at a small input size.

One local Ray instance serves every setting in turn (the application redeployed with the setting's replicas and
batching; replicas of one CPU each, one torch thread). For each, after ``--warmup`` seconds of load,
``--clients`` concurrent clients post one image (``--views`` augmented views) for ``--duration`` seconds:
requests/s, failures, p50 / p95 latency, the replicas that answered and, from each replica's ``/metrics``, the
images per forward pass (the warm-up's single image included).

    OMP_NUM_THREADS=1 python benchmarks/ray_throughput.py --size 96 --views 1 --clients 8 --duration 10 --warmup 3

On a machine of two cores the clients, Ray's HTTP proxy and the replicas share them: 2 replicas cannot double the
requests/s there, and the numbers move with whatever else runs. Results go to
``benchmarks/results/ray_throughput_cpu.json`` (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx

from api.ray_serve import APP_NAME, build_parser, deploy, lewel_environment

ROOT = Path(__file__).resolve().parent.parent

MODEL = "lewel_b_demo"
IMAGE = ROOT / "static" / "samples" / "one_object.png"
SETTINGS = [(1, False), (1, True), (2, False), (2, True)]  #: (replicas, batching)


def cpu_model() -> str:
    """``lscpu``'s model name (what the README quotes), else the platform's."""
    try:
        found = re.search(r"^Model name:\s*(.+)$", subprocess.run(["lscpu"], capture_output=True, text=True).stdout, re.M)
    except OSError:
        found = None
    return found.group(1).strip() if found else platform.processor() or platform.machine()


def wait_for_replicas(client: httpx.Client, replicas: int, seconds: float = 180) -> None:
    """Until ``/readyz`` has answered 200 from ``replicas`` different replicas."""
    ready: set[str] = set()
    deadline = time.monotonic() + seconds
    while len(ready) < replicas:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ready)} of {replicas} replicas were ready after {seconds} s")
        try:
            response = client.get("/readyz")
            if response.status_code == 200:
                ready.add(response.headers["x-lewel-replica"])
        except httpx.TransportError:
            pass
        time.sleep(0.2)


def load(base: str, form: dict[str, str], image: bytes, *, clients: int, seconds: float) -> dict:
    """``clients`` threads posting for ``seconds``: latencies of the 200 answers, failures, replicas seen."""
    latencies: list[float] = []
    failures: list[str] = []
    replicas: set[str] = set()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client_loop() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            while time.monotonic() < stop_at:
                start = time.perf_counter()
                try:
                    response = client.post("/v1/maps", files={"image": ("one.png", image, "image/png")}, data=form)
                    ok, why = response.status_code == 200, f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as error:
                    ok, why, response = False, f"{type(error).__name__}: {error}", None
                with lock:
                    if ok:
                        latencies.append(time.perf_counter() - start)
                        replicas.add(response.headers["x-lewel-replica"])
                    else:
                        failures.append(why)

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "failures": len(failures),
        "failure_examples": failures[:3],
        "p50_s": round(statistics.median(latencies), 4) if latencies else None,
        "p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 4) if latencies else None,
        "replicas_answering": len(replicas),
    }


def images_per_pass(client: httpx.Client, replicas: int) -> float | None:
    """Images per forward pass over the replicas' ``/metrics`` (``lewel_batch_images``: one entry per pass)."""
    counts: dict[str, tuple[float, float]] = {}
    for _ in range(20 * replicas):
        response = client.get("/metrics")
        passes = re.search(r"^lewel_batch_images_count (\S+)", response.text, re.M)
        images = re.search(r"^lewel_batch_images_sum (\S+)", response.text, re.M)
        if passes and images:
            counts[response.headers["x-lewel-replica"]] = (float(passes.group(1)), float(images.group(1)))
        if len(counts) == replicas:
            break
    passes_total = sum(p for p, _ in counts.values())
    return round(sum(i for _, i in counts.values()) / passes_total, 2) if passes_total else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=96, help="input side of the requests (default: 96)")
    parser.add_argument("--views", type=int, default=1, help="augmented views per request (default: 1)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default: 8)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measured load per setting")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--port", type=int, default=8856)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ray_throughput_cpu.json")
    args = parser.parse_args()

    import ray
    from ray import serve

    build_dir = tempfile.mkdtemp(prefix="lewel-ray-bench-")
    os.environ.update(
        LEWEL_DEFAULT_MODEL=MODEL, LEWEL_TORCH_THREADS="1", LEWEL_WARMUP_SIZE=str(args.size),
        LEWEL_ATLAS_BUILD_DIR=build_dir,
    )
    env = lewel_environment()
    image = IMAGE.read_bytes()
    form = {"model": MODEL, "size": str(args.size), "views": str(args.views), "seed": "0"}
    base = f"http://127.0.0.1:{args.port}"
    results = []
    ray.init(include_dashboard=False, runtime_env={"env_vars": env}, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        options = ["--num-cpus", "1", "--port", str(args.port)]
        with httpx.Client(base_url=base, timeout=120) as client:
            for replicas, batching in SETTINGS:
                setting = build_parser().parse_args(
                    [*options, "--replicas", str(replicas), *([] if batching else ["--no-batching"])]
                )
                deploy(setting, env)
                wait_for_replicas(client, replicas)
                load(base, form, image, clients=args.clients, seconds=args.warmup)
                measured = load(base, form, image, clients=args.clients, seconds=args.duration)
                measured.update(replicas=replicas, batching=batching, images_per_pass=images_per_pass(client, replicas))
                print(json.dumps(measured), flush=True)
                results.append(measured)
                serve.delete(APP_NAME)
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(build_dir, ignore_errors=True)
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "ray": ray.__version__,
        "model": MODEL,
        "size": args.size,
        "views": args.views,
        "clients": args.clients,
        "duration_s": args.duration,
        "command": "python benchmarks/ray_throughput.py " + shlex.join(sys.argv[1:]),
        "note": "replicas of one CPU and one torch thread; clients, Ray's proxy and the replicas share the cores",
        "settings": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
