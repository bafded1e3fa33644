"""Peak memory of the inference service per request kind, against the estimate its memory budget uses.

A real ``uvicorn api.main:app`` serves LEWEL_B with the released head (hid 4096, d 256, h 4; random weights)
on each ``--backbones`` entry. For every request kind, one at a time: the server's peak resident memory is
reset (``/proc/PID/clear_refs`` 5), the request is sent, and the peak (``VmHWM``) above the resident memory
before it is recorded, next to the estimate ``api.limits.plan_request`` reserves from
``LEWEL_MEMORY_BUDGET_MB`` for it. Then ``--concurrent`` copies of the 40 MP float TIFF request are sent at
once, and the server's peak growth is recorded with the default budget (2 GiB).

    python benchmarks/api_memory.py --backbones resnet18 resnet50 --threads 1
    python benchmarks/api_memory.py --backbones resnet18 --only-figures --out benchmarks/results/api_memory_figures_cpu.json

``--figures`` adds every figure format at 72, 150, 300 and 600 dpi with 0, 2 and 8 views (``FIGURE_KINDS``): the
ones over the response cap are refused (422 ``too_costly``) before drawing; every drawn one must stay under its
estimates.

Results: ``benchmarks/results/api_memory_cpu.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.limits import declared_image, plan_request  # noqa: E402
from api.settings import Settings  # noqa: E402
from api_latency import Server as LatencyServer  # noqa: E402 - the same server, model files and ports
from api_latency import write_model  # noqa: E402
from service_process import status_kib  # noqa: E402

MIB = 2**20
LARGE = (7000, 5700)  #: 39.9 MP, under the 40 MP cap


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo() -> bytes:
    """A 640×480 JPEG with gradients and noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:480, 0:640]
    pixels = np.stack([x / 640 * 255, y / 480 * 255, (x + y) % 256], axis=-1) + rng.normal(0, 20, (480, 640, 3))
    return encoded(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)), "JPEG", quality=90)


def uploads() -> dict[str, bytes]:
    width, height = LARGE
    values = np.zeros((height, width), dtype=np.float32)
    values[:100, :100] = 3.5
    sixteen = np.zeros((height, width), dtype=np.uint16)
    sixteen[:100, :100] = 40000
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 4 : height // 2, width // 4 : width // 2] = 255
    y, x = np.mgrid[0:height:8, 0:width:8]
    smooth = Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)).resize(LARGE)
    return {
        "photo": photo(),
        "float_tiff": encoded(Image.fromarray(values, mode="F"), "TIFF", compression="tiff_deflate"),
        "png16": encoded(Image.fromarray(sixteen), "PNG"),
        "jpeg40mp": encoded(smooth, "JPEG", quality=80),
        "mask40mp": encoded(Image.fromarray(mask), "PNG"),
    }


#: (name, endpoint, image, mask, form fields)
KINDS = [
    ("maps json, photo, views 0, 224 px", "/v1/maps", "photo", None, {"views": 0, "size": 224}),
    ("maps json, photo, views 8, 320 px", "/v1/maps", "photo", None, {"views": 8, "size": 320}),
    ("maps npz, photo, views 8, 320 px", "/v1/maps", "photo", None, {"views": 8, "size": 320, "format": "npz"}),
    ("maps png figure, photo, views 2", "/v1/maps", "photo", None, {"views": 2, "format": "png", "maps": "top"}),
    ("maps json, photo, views 3, 512 px, frame_cells 96", "/v1/maps", "photo", None,
     {"views": 3, "size": 512, "frame_cells": 96, "maps": "top"}),
    ("embeddings json, photo, views 8, 320 px", "/v1/embeddings", "photo", None, {"views": 8, "size": 320}),
    ("maps json, 40 MP float TIFF", "/v1/maps", "float_tiff", None, {"views": 0}),
    ("maps json, 40 MP 16-bit PNG", "/v1/maps", "png16", None, {"views": 0}),
    ("maps json, 40 MP JPEG, views 2", "/v1/maps", "jpeg40mp", None, {"views": 2}),
    ("maps json, 40 MP JPEG with a 40 MP mask", "/v1/maps", "jpeg40mp", "mask40mp", {"views": 0}),
]

#: every figure format at 72, 150, 300 and 600 dpi with 0, 2 and 8 views of the photo (224 px, all maps: 16 drawn)
FIGURE_KINDS = [
    (f"maps {fmt} figure, photo, views {views}, {dpi} dpi", "/v1/maps", "photo", None,
     {"views": views, "format": fmt, "dpi": dpi})
    for fmt in ("png", "pdf", "svg") for dpi in (72, 150, 300, 600) for views in (0, 2, 8)
]


class Server(LatencyServer):
    """The latency benchmark's ``uvicorn api.main:app`` (warm-up at 224 px), with its peak memory readable."""

    def __init__(self, folder: Path, model_id: str, threads: int | None) -> None:
        super().__init__(folder, model_id, 224, threads)

    def reset_peak(self) -> int:
        """Reset the peak resident memory; the resident memory now (bytes)."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")
        return status_kib(self.process.pid, "VmRSS") * 1024

    def peak(self) -> int:
        return status_kib(self.process.pid, "VmHWM") * 1024


def form(model_id: str, fields: dict) -> dict[str, str]:
    return {"model": model_id, **{k: str(v) for k, v in fields.items()}}


def estimate(endpoint: str, data: bytes, mask: bytes | None, fields: dict, d: int, h: int) -> tuple[int, int]:
    """The memory ``plan_request`` reserves for the request and the answer's estimated bytes."""
    kind = "maps" if endpoint == "/v1/maps" else "embeddings"
    shown = min(d, 3 * 4) if fields.get("maps") == "top" else None
    plan = plan_request(
        kind=kind, declared=declared_image(data), mask=declared_image(mask) if mask else None,
        views=int(fields.get("views", 0)), size=int(fields.get("size", 224)), d=d, num_aligned=d // h, maps=shown,
        frame_cells=int(fields.get("frame_cells", 32)), output=fields.get("format", "json"),
        dpi=int(fields.get("dpi", 100)), max_request_pixels=10**12, max_frame_values=10**12, max_response_bytes=10**12,
    )
    return plan.memory, plan.response_bytes


def measure_kinds(server: Server, model_id: str, files: dict[str, bytes], kinds: list, *, warm_all: bool = True) -> list[dict]:
    """Each of ``kinds`` sent once (after a first send that fills the allocator's pools: every kind, or with
    ``warm_all`` false only the first of each format) and measured; a refused one records its status."""
    rows, warmed = [], set()
    cap = Settings().max_response_bytes
    with httpx2.Client(base_url=server.base, timeout=1200) as client:
        for name, endpoint, image, mask, fields in kinds:
            upload = {"image": ("upload", files[image], "application/octet-stream")}
            if mask is not None:
                upload["mask"] = ("mask.png", files[mask], "image/png")
            memory, answer_bytes = estimate(endpoint, files[image], files.get(mask), fields, 256, 4)
            if warm_all or fields.get("format") not in warmed:
                client.post(endpoint, files=upload, data=form(model_id, fields))  # so allocator pools exist
                warmed.add(fields.get("format"))
            before = server.reset_peak()
            start = time.perf_counter()
            answer = client.post(endpoint, files=upload, data=form(model_id, fields))
            seconds = time.perf_counter() - start
            peak = server.peak()
            rows.append({
                "kind": name,
                "status": answer.status_code,
                "answer_mib": round(len(answer.content) / MIB, 2),
                "answer_estimate_mib": round(answer_bytes / MIB, 2),
                "refused_as_too_costly": answer.status_code == 422 and answer_bytes > cap,
                "seconds": round(seconds, 2),
                "resident_before_mib": round(before / MIB),
                "peak_growth_mib": round((peak - before) / MIB),
                "estimate_mib": round(memory / MIB),
            })
            print(json.dumps(rows[-1]), flush=True)
    return rows


async def concurrent(server: Server, model_id: str, data: bytes, copies: int) -> dict:
    async with httpx2.AsyncClient(base_url=server.base, timeout=600) as client:
        before = server.reset_peak()
        start = time.perf_counter()
        answers = await asyncio.gather(*[
            client.post("/v1/maps", files={"image": ("a.tiff", data, "image/tiff")}, data=form(model_id, {}))
            for _ in range(copies)
        ])
        return {
            "requests": copies,
            "statuses": sorted(a.status_code for a in answers),
            "seconds": round(time.perf_counter() - start, 2),
            "resident_before_mib": round(before / MIB),
            "peak_growth_mib": round((server.peak() - before) / MIB),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--threads", type=int, default=1, help="LEWEL_TORCH_THREADS of the server (default: 1)")
    parser.add_argument("--concurrent", type=int, default=4, help="simultaneous 40 MP float TIFF requests")
    parser.add_argument("--figures", action="store_true", help="also every figure format × dpi × views (FIGURE_KINDS)")
    parser.add_argument("--only-figures", action="store_true", help="the figure requests only (not the other kinds)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "api_memory_cpu.json")
    args = parser.parse_args()
    files = uploads()
    results: dict = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "command": " ".join(["python", "benchmarks/api_memory.py", *sys.argv[1:]]),
        "uploads_bytes": {name: len(data) for name, data in files.items()},
        "settings": {"memory_budget_mb": Settings().memory_budget_mb, "max_queued": Settings().max_queued},
        "backbones": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        for backbone in args.backbones:
            path = write_model(backbone, Path(folder))
            model_id = path.name.removesuffix(".safetensors")
            server = Server(Path(folder), model_id, args.threads)
            try:
                entry: dict = {}
                if not args.only_figures:
                    entry["kinds"] = measure_kinds(server, model_id, files, KINDS)
                    entry["concurrent_float_tiff"] = asyncio.run(
                        concurrent(server, model_id, files["float_tiff"], args.concurrent)
                    )
                    print(json.dumps(entry["concurrent_float_tiff"]), flush=True)
                if args.figures or args.only_figures:
                    figures = measure_kinds(server, model_id, files, FIGURE_KINDS, warm_all=False)
                    drawn = [r for r in figures if r["status"] == 200]
                    entry["figures"] = figures
                    entry["figures_summary"] = {
                        "drawn": len(drawn),
                        "refused_as_too_costly": sum(r["refused_as_too_costly"] for r in figures),
                        "other_statuses": sorted({r["status"] for r in figures} - {200, 422}),
                        "every_estimate_above_peak": all(r["estimate_mib"] >= r["peak_growth_mib"] for r in drawn),
                        "every_answer_under_estimate": all(r["answer_estimate_mib"] >= r["answer_mib"] for r in drawn),
                    }
                    print(json.dumps(entry["figures_summary"]), flush=True)
            finally:
                server.stop()
            results["backbones"][backbone] = entry
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
