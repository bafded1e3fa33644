"""Summarise training runs by their map profile: one record per run folder (the variant's name, the options
it changed from the first run's recipe, its profile against the random control, the map monitor's
trajectory, steps and training time), written to a JSON file and printed as a Markdown table.

    .venv/bin/python scripts/summarize_sweep.py runs/lewel_b_sweep/lewel_b_*/ --out docs/lewel_b_sweep.json

Each folder needs ``last.pt`` (``lewel train``); a run with ``profile.json`` (``lewel profile --out``) was
trained to its end and profiled, one without is a screen (stopped early, scored by its map monitor only).
``--best-at STEP`` prints the variant whose map monitor scored highest at STEP instead (validation-side
scenes: the profiles' held-out scenes play no part in the choice).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lewel.files.checkpoints import safe_load
from lewel.maps.profiles import read_profile
from lewel.train.logging import training_seconds
from lewel.train.monitor import read_map_records

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_KEYS = ("object_auroc", "object_auroc_se", "object_auroc_calibration", "object_pointing", "pointing_chance", "verdict", "difference", "heldout_images")


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def summarize(run: Path, reference: dict[str, Any] | None) -> dict[str, Any]:
    state = safe_load(run / "last.pt")
    config = flatten(state["config"])
    ignored = {"out", "resume"}
    changed = {k: v for k, v in config.items() if reference is not None and k not in ignored and reference.get(k) != v}
    summary = read_profile(run / "profile.json")["summary"] if (run / "profile.json").is_file() else None
    monitor = [
        {"step": r["step"], "object_auroc": r["maps"]["object_auroc"], "object_pointing": r["maps"]["object_pointing"],
         "seconds": r["maps"]["seconds"]}
        for r in read_map_records(run) if "object_auroc" in r["maps"]
    ]
    seconds = training_seconds(run)
    return {
        "variant": run.name.removeprefix("lewel_b_"),
        "run": str(run.relative_to(ROOT)) if run.is_relative_to(ROOT) else str(run),
        "changed": changed,
        "steps": state["step"],
        "schedule_steps": state["steps_per_epoch"] * state["config"]["epochs"],
        "method": config["model.method"],
        "training_seconds": round(seconds),
        "monitor_seconds": round(sum(m["seconds"] for m in monitor), 1),
        "profile": {k: summary[k] for k in SUMMARY_KEYS} if summary else None,
        "random_control": {k: summary["random_control"][k] for k in ("object_auroc", "object_pointing", "seed")} if summary else None,
        "monitor": monitor,
    }


def table(records: list[dict[str, Any]]) -> str:
    lines = [
        "| variant | changed from the base | steps trained | object maps AUROC, held-out | random control | "
        "paired difference (95 % CI) | pointing (%) | verdict | map monitor AUROC: step 0, then each epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        p, c = r["profile"], r["random_control"]
        changed = ", ".join(f"{k.removeprefix('model.')} {v}" for k, v in r["changed"].items() if k != "stop_after_steps") or "– (the reference)"
        trajectory = " → ".join(f"{m['object_auroc']:.2f}" for m in r["monitor"])
        if p is None:
            lines.append(f"| {r['variant']} | {changed} | {r['steps']} of {r['schedule_steps']} (not finished) | – | – | – | – | – | {trajectory} |")
            continue
        low, high = p["difference"]["ci95"]
        lines.append(
            f"| {r['variant']} | {changed} | {r['steps']} | **{p['object_auroc']:.3f}** ± {p['object_auroc_se']:.3f} | "
            f"{c['object_auroc']:.3f} | {p['difference']['object_auroc']:+.3f} ({low:+.3f} to {high:+.3f}) | "
            f"{100 * p['object_pointing']:.1f} (chance {100 * p['pointing_chance']:.1f}) | {p['verdict']} | {trajectory} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders; the first one's recipe is the reference")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "lewel_b_sweep.json")
    parser.add_argument("--best-at", type=int, help="print the variant (not the base) with the highest monitor AUROC at this step, and stop")
    args = parser.parse_args()
    runs = [r for r in args.runs if (r / "last.pt").is_file()]
    if args.best_at is not None:
        at = {
            r: next((m["maps"]["object_auroc"] for m in read_map_records(r) if m["step"] == args.best_at and "object_auroc" in m["maps"]), None)
            for r in runs if not r.name.endswith("_base")
        }
        scored = {r: v for r, v in at.items() if v is not None}
        print(max(scored, key=scored.get).name.removeprefix("lewel_b_"))
        return
    base = next((r for r in runs if r.name.endswith("_base")), runs[0])
    reference = flatten(safe_load(base / "last.pt")["config"])
    records = [summarize(run, reference) for run in [base] + [r for r in runs if r != base]]
    args.out.write_text(json.dumps({"runs": records}, indent=1) + "\n")
    print(table(records))


if __name__ == "__main__":
    main()
