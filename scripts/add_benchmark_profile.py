"""Record a profile file's verdict in docs/benchmark_profiles.json (the model cards' "On photographs" table and
docs/maps.md read it): one entry per (model, benchmark), replaced when measured again.

    lewel profile --checkpoint models/lewel_b_demo.safetensors --data textured:128 --out P.json
    python scripts/add_benchmark_profile.py P.json --model lewel_b_demo --benchmark textured:128 \
        --command "lewel profile --checkpoint models/lewel_b_demo.safetensors --data textured:128 --out PROFILE.json"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "benchmark_profiles.json"


def entry(profile: dict, *, model: str, benchmark: str, command: str) -> dict:
    """The table's fields from a profile file's ``summary`` (rounded as the table has always been)."""
    summary = profile["summary"]
    control, difference = summary["random_control"], summary["difference"]
    return {
        "model": model,
        "benchmark": benchmark,
        "command": command,
        "calibration_images": summary["calibration_images"],
        "heldout_images": summary["heldout_images"],
        "object_auroc": round(summary["object_auroc"], 4),
        "object_auroc_se": round(summary["object_auroc_se"], 4),
        "best_control": round(control["object_auroc"], 4),
        "best_control_name": f"{control['scheme']} seed {control['seed']}",
        "random_bound": round(summary["controls"]["random_bound"], 4),
        "difference": round(difference["object_auroc"], 4),
        "ci95": [round(v, 4) for v in difference["ci95"]],
        "spread_allowance": round(difference["spread_allowance"], 4),
        "verdict": summary["verdict"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--model", required=True)
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--command", required=True)
    args = parser.parse_args()
    new = entry(json.loads(args.profile.read_text()), model=args.model, benchmark=args.benchmark, command=args.command)
    table = json.loads(TABLE.read_text())
    rows = [p for p in table["profiles"] if (p["model"], p["benchmark"]) != (args.model, args.benchmark)]
    table["profiles"] = rows + [new]
    TABLE.write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps(new))


if __name__ == "__main__":
    main()
