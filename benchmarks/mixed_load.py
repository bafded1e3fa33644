"""Mixed load against a live service: do figures starve the other requests, and does memory come back?

A real ``python -m api`` on localhost serving the bundled demo models (its default model), one torch thread,
and concurrent clients, each sending one kind of request in a loop for ``--duration`` seconds:

- ``maps``: ``POST /v1/maps`` of a 640×480 JPEG, views 0, 224 px, JSON;
- ``figure``: the same with ``views=2 maps=top format=png`` (the Figure-5 grid, 3 rows of up to 12 maps);
- ``point``: ``POST /v1/point`` at the image's centre, views 0;
- ``thumbnail``: ``GET /v1/gallery/thumbnail`` of the first gallery item.

Phase ``unloaded`` runs the maps, point and thumbnail clients alone; phase ``mixed`` adds the figure clients
(``--clients`` in all, a quarter of each kind). Per route and phase: p50, p95, max, the count of each status
(503 ``busy`` included) and the requests per second; and the ratio of the maps' p95 mixed to unloaded (issue
44: at most 2). ``--rounds N`` repeats the mixed phase N times and records the server's resident memory
(``/proc/PID/status`` VmRSS) after each, a few seconds after the load stops: a leak keeps growing round after
round, allocator retention levels off.

    python benchmarks/mixed_load.py                                    # about 1.5 minutes
    python benchmarks/mixed_load.py --rounds 3 --skip-unloaded --out benchmarks/results/memory_soak_cpu.json
    python benchmarks/mixed_load.py --env LEWEL_MALLOC_TRIM_MB=0 ...   # a setting of the server, e.g. no trim

``--source DIR`` serves another checkout of the project (the code before a change) for a comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import httpx2
import numpy as np
from PIL import Image
from service_process import ServiceProcess, status_kib

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("maps", "figure", "point", "thumbnail")


def photo() -> bytes:
    """A 640×480 JPEG with gradients and noise (what a photo costs to decode)."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    pixels = np.stack([x / 640 * 255, y / 480 * 255, (x + y) % 256], axis=-1) + rng.normal(0, 20, (480, 640, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def rss_mib(pid: int) -> float:
    return status_kib(pid, "VmRSS") / 1024


def children(pid: int) -> list[int]:
    """The PIDs of ``pid``'s child processes (the service's drawing processes)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def memory(pid: int) -> dict[str, float]:
    """Resident MiB of the service process and of its children (the drawing processes)."""
    kids = []
    for child in children(pid):
        try:
            kids.append(rss_mib(child))
        except (FileNotFoundError, RuntimeError):  # a drawing process replaced meanwhile
            pass
    return {"rss_mib": round(rss_mib(pid), 1), "children_rss_mib": round(sum(kids), 1)}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


class Service(ServiceProcess):
    """``python -m api`` serving ``source``'s code and bundled models, its output to ``log``."""

    def __init__(self, source: Path, threads: int, env: dict[str, str], log: Path) -> None:
        full = {**os.environ, "PYTHONPATH": str(source), "LEWEL_TORCH_THREADS": str(threads), **env}
        full.pop("LEWEL_MODELS_DIR", None)
        super().__init__(["-m", "api"], cwd=source, env=full, log=log)
        with httpx2.Client(base_url=self.base, timeout=30) as client:
            self.model = client.get("/readyz").json()["model"]
            self.gallery_key = client.get("/v1/gallery").json()["items"][0]["key"]


def request_for(kind: str, image: bytes, key: str) -> dict:
    """The ``httpx2`` request arguments of one request of ``kind``."""
    files = {"image": ("photo.jpg", image, "image/jpeg")}
    if kind == "maps":
        return {"method": "POST", "url": "/v1/maps", "files": files, "data": {"views": "0", "size": "224"}}
    if kind == "figure":
        form = {"views": "2", "size": "224", "maps": "top", "format": "png"}
        return {"method": "POST", "url": "/v1/maps", "files": files, "data": form}
    if kind == "point":
        return {"method": "POST", "url": "/v1/point", "files": files, "data": {"x": "320", "y": "240"}}
    return {"method": "GET", "url": "/v1/gallery/thumbnail", "params": {"key": key}}


async def phase(service: Service, image: bytes, kinds: list[str], duration: float) -> dict:
    """``kinds`` (one client each) in a loop for ``duration`` seconds; per kind the latencies and statuses."""
    latencies: dict[str, list[float]] = {kind: [] for kind in set(kinds)}
    statuses: dict[str, Counter] = {kind: Counter() for kind in set(kinds)}
    stop = time.monotonic() + duration

    async def client_loop(client: httpx2.AsyncClient, kind: str) -> None:
        arguments = request_for(kind, image, service.gallery_key)
        while time.monotonic() < stop:
            start = time.perf_counter()
            try:
                response = await client.request(**arguments)
                status = str(response.status_code)
            except httpx2.HTTPError as error:
                status = type(error).__name__
            latencies[kind].append(time.perf_counter() - start)
            statuses[kind][status] += 1

    limits = httpx2.Limits(max_connections=len(kinds), max_keepalive_connections=len(kinds))
    async with httpx2.AsyncClient(base_url=service.base, timeout=300, limits=limits) as client:
        await asyncio.gather(*(client_loop(client, kind) for kind in kinds))
    return {
        kind: {
            "requests": len(values),
            "per_s": round(len(values) / duration, 2),
            "p50_s": round(float(np.percentile(values, 50)), 3),
            "p95_s": round(float(np.percentile(values, 95)), 3),
            "max_s": round(max(values), 3),
            "statuses": dict(statuses[kind]),
        }
        for kind, values in sorted(latencies.items())
        if values
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="clients of the mixed phase, a quarter of each kind")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of mixed load before measuring")
    parser.add_argument("--rounds", type=int, default=1, help="mixed phases, RSS recorded after each")
    parser.add_argument("--skip-unloaded", action="store_true", help="no unloaded phase (a soak run)")
    parser.add_argument("--threads", type=int, default=1, help="the server's torch threads (LEWEL_TORCH_THREADS)")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds idle before each RSS reading")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server (repeatable)")
    parser.add_argument("--source", type=Path, default=ROOT, help="the checkout whose code is served")
    parser.add_argument("--label", default="", help="a name for this run in the results")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mixed_load_cpu.json")
    args = parser.parse_args()

    env = dict(item.split("=", 1) for item in args.env)
    share = max(1, args.clients // 4)
    mixed = [kind for kind in KINDS for _ in range(share)]
    unloaded = [kind for kind in mixed if kind != "figure"]
    image = photo()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"mixed_load_{os.getpid()}.log"
    service = Service(args.source.resolve(), args.threads, env, log)
    result: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "label": args.label,
        "model": service.model,
        "server_env": env,
        "clients": {"unloaded": len(unloaded), "mixed": len(mixed)},
        "duration_s": args.duration,
    }
    try:
        result["ready"] = memory(service.process.pid)
        if args.warmup > 0:
            asyncio.run(phase(service, image, mixed, args.warmup))
        if not args.skip_unloaded:
            result["unloaded"] = asyncio.run(phase(service, image, unloaded, args.duration))
            print("unloaded", json.dumps(result["unloaded"]), flush=True)
        rounds = []
        for number in range(args.rounds):
            measured = asyncio.run(phase(service, image, mixed, args.duration))
            time.sleep(args.settle)
            rounds.append({"round": number + 1, **memory(service.process.pid), "routes": measured})
            print(f"mixed round {number + 1}", json.dumps(rounds[-1]), flush=True)
        result["mixed"] = rounds
        if "unloaded" in result:
            result["maps_p95_mixed_over_unloaded"] = round(
                rounds[0]["routes"]["maps"]["p95_s"] / result["unloaded"]["maps"]["p95_s"], 2
            )
        result["rss_mib_after_rounds"] = [r["rss_mib"] for r in rounds]
        result["children_rss_mib_after_rounds"] = [r["children_rss_mib"] for r in rounds]
    finally:
        service.stop()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(args.out.read_text()).get("runs", []) if args.out.exists() else []
    runs = [run for run in runs if run.get("label") != args.label or not args.label]
    args.out.write_text(json.dumps({"runs": [*runs, result]}, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("unloaded", "mixed")}, indent=2))


if __name__ == "__main__":
    main()
