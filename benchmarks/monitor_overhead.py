"""What the map monitor (`lewel train --maps-every N`) costs a real run: for each run folder, the seconds its
monitor passes took (recorded in metrics.jsonl) against the run's training time (first to last logged step,
stops of more than 10 minutes left out), as a share. Both come from the same run, on the same machine and
under the same load, so the ratio holds even where absolute times are noisy.

    python benchmarks/monitor_overhead.py runs/demo/lewel_m_s0 runs/demo/lewel_m_s1 --out benchmarks/results/monitor_overhead_cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from lewel.train.logging import read_records, training_seconds
from lewel.train.monitor import read_map_records


def measure(run: Path) -> dict:
    steps = [r for r in read_records(run) if "loss" in r]
    training = training_seconds(run)
    passes = read_map_records(run)
    monitor = sum(r["maps"]["seconds"] for r in passes)
    # the step-0 pass runs before the first logged step, outside the training time above: add it to both
    first = next((r["maps"]["seconds"] for r in passes if r["step"] == 0), 0.0)
    return {
        "run": str(run),
        "steps": steps[-1]["step"] if steps else 0,
        "passes": len(passes),
        "monitor_seconds": round(monitor, 1),
        "seconds_per_pass": round(monitor / max(len(passes), 1), 1),
        "run_seconds": round(training + first, 1),
        "share": round(monitor / (training + first), 4) if training else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/monitor_overhead_cpu.json"))
    args = parser.parse_args()
    results = {"machine": f"{platform.machine()}, {platform.processor() or 'cpu'}", "runs": [measure(r) for r in args.runs]}
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    for r in results["runs"]:
        print(f"{r['run']}: {r['passes']} passes, {r['seconds_per_pass']} s each, {100 * r['share']:.1f} % of {r['run_seconds']:.0f} s")


if __name__ == "__main__":
    main()
