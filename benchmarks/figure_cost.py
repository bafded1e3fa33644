"""Peak memory and file size of Figure-5 figures against ``lewel.drawing.render.figure_cost``'s estimate.

Every format (PNG, PDF, SVG) at 72, 150, 300 and 600 dpi with 0, 2 and 8 augmented views (1, 3 and 9 rows), 16
maps of 224-px views (the service's most: ``PNG_MAX_MAPS``) and a 512×384 input picture, plus 512-px views at
150 dpi; the pictures are noise, which compresses least. Each figure is drawn in a fresh process (the drawing
of ``lewel.drawing.render.figure5_grid`` + ``figure_bytes``): its peak resident memory (``VmHWM`` after
``/proc/self/clear_refs`` 5) above the resident memory before, and the file's bytes, next to the estimate. The
estimate the service and the app check before drawing must stay above both, in every case.

    python benchmarks/figure_cost.py                # about 10 minutes on one core
    python benchmarks/figure_cost.py --quick        # 72 and 300 dpi only

Results: ``benchmarks/results/figure_cost_cpu.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MIB = 2**20
SOURCE = (512, 384)  #: the input picture drawn in each row (the service's thumbnail of a 4:3 photo)
MAPS = 16


def status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def draw_one(fmt: str, dpi: int, rows: int, side: int) -> dict:
    """Draw one figure in this process; its measured peak and size, and the estimate."""
    import numpy as np

    from lewel.drawing.render import figure5_grid, figure_bytes, figure_cost

    rng = np.random.default_rng(0)
    source = (rng.random((SOURCE[1], SOURCE[0], 3)) * 255).astype(np.uint8)
    views = [(rng.random((side, side, 3)) * 255).astype(np.uint8) for _ in range(rows)]
    heat = rng.random((rows, MAPS, 7, 7)).astype(np.float32)
    titles = [[f"map {m} · object\nAUROC 0.81" for m in range(MAPS)]] * rows
    warm = figure5_grid(source, views[:1], [[0, 0, 9, 9]], [False], SOURCE, heat[:1, :1], [["warm"]], title="warm")
    figure_bytes(warm, fmt, dpi=50)  # matplotlib's fonts and caches are loaded before the measurement
    del warm
    Path("/proc/self/clear_refs").write_text("5")
    before = status("VmRSS")
    started = time.perf_counter()
    figure = figure5_grid(
        source, views, [[0, 0, 100, 100]] * rows, [False] * rows, SOURCE, heat, titles, title="model: heading"
    )
    data = figure_bytes(figure, fmt, dpi=dpi)
    seconds = time.perf_counter() - started
    peak = status("VmHWM") - before
    cost = figure_cost(fmt, dpi, rows=rows, maps=MAPS, view_side=side, source_size=SOURCE)
    return {
        "format": fmt, "dpi": dpi, "views": rows - 1, "rows": rows, "view_side": side, "maps": MAPS,
        "peak_mib": round(peak / MIB, 1), "estimate_mib": round(cost.memory / MIB, 1),
        "bytes": len(data), "estimate_bytes": cost.output, "canvas_mp": round(cost.canvas / 1e6, 2),
        "pictures_mp": round(cost.pictures / 1e6, 2), "seconds": round(seconds, 2),
        "memory_ok": cost.memory >= peak, "size_ok": cost.output >= len(data),
    }


def cases(quick: bool) -> list[tuple[str, int, int, int]]:
    dpis = (72, 300) if quick else (72, 150, 300, 600)
    grid = [(fmt, dpi, views + 1, 224) for fmt in ("png", "pdf", "svg") for dpi in dpis for views in (0, 2, 8)]
    return grid + [(fmt, 150, rows, 512) for fmt in ("png", "pdf", "svg") for rows in (1, 3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one", nargs=4, metavar=("FORMAT", "DPI", "ROWS", "SIDE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "figure_cost_cpu.json")
    args = parser.parse_args()
    if args.one:
        fmt, dpi, rows, side = args.one
        print(json.dumps(draw_one(fmt, int(dpi), int(rows), int(side))))
        return
    results = []
    environment = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    for fmt, dpi, rows, side in cases(args.quick):
        done = subprocess.run(
            [sys.executable, __file__, "--one", fmt, str(dpi), str(rows), str(side)],
            capture_output=True, text=True, env=environment, timeout=1200,
        )
        if done.returncode != 0:
            raise SystemExit(f"{fmt} {dpi} dpi {rows} rows failed:\n{done.stderr[-2000:]}")
        record = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(record)
        print(
            f"{fmt} {dpi:>3} dpi {rows} rows {side} px: peak {record['peak_mib']:>7.1f} MiB (estimate "
            f"{record['estimate_mib']:>7.1f}), {record['bytes'] / MIB:>6.1f} MiB (estimate "
            f"{record['estimate_bytes'] / MIB:>6.1f}), {record['seconds']:.1f} s",
            flush=True,
        )
    summary = {
        "all_estimates_above": all(r["memory_ok"] and r["size_ok"] for r in results),
        "memory_ratio_min": round(min(r["estimate_mib"] / max(r["peak_mib"], 0.1) for r in results), 2),
        "size_ratio_min": round(min(r["estimate_bytes"] / r["bytes"] for r in results), 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor() or platform.machine(),
        "threads": environment["OMP_NUM_THREADS"], "summary": summary, "results": results,
    }, indent=1) + "\n")
    print(json.dumps(summary))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
