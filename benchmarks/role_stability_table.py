"""The docs' tables of ``benchmarks/role_stability.py``'s result: writes them into docs/maps.md between the
``role stability`` markers (and prints them).

    python benchmarks/role_stability_table.py benchmarks/results/role_stability_cpu.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

START, END = "<!-- role stability: from benchmarks/results/role_stability_cpu.json -->", "<!-- end of role stability -->"


def share(pair: dict) -> str:
    if not pair["both_decided"]:
        return "none decided on both"
    return f"{100 * pair['agreement']:.1f} % of {pair['both_decided']}"


def tables(result: dict) -> str:
    sets = result["sets"]
    lines = [
        "| set | scenes | decided (of d = 128) | held-out agreement (decided on both) | verdict |",
        "|---|---|---|---|---|",
    ]
    for name, s in sets.items():
        lines.append(
            f"| {name} (seed {s['seed']}) | {s['scenes']} | {100 * s['decided_share']:.0f} % | "
            f"{100 * s['heldout_agreement']:.1f} % of {s['heldout_compared']} | {s['verdict']} |"
        )
    pairs = result["pairs"]
    lines += ["", "| pair | same role, of the indices both decide |", "|---|---|"]
    lines += [f"| {name} | {share(pair)} |" for name, pair in pairs.items()]
    lines += [
        "",
        "| scenes (calibration images) | level | decided, A_n / B_n | A_n against B_n | A_n against all of B | B_n against all of A |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["stability"]:
        decided = row["decided_share"]
        lines.append(
            f"| {row['scenes']} ({row['calibration_images']}) | {row['level']:.0%} | {100 * decided['A']:.0f} % / "
            f"{100 * decided['B']:.0f} % | {share(row['A_n-B_n'])} | {share(row['A_n-B_all'])} | {share(row['B_n-A_all'])} |"
        )
    counts = "; ".join(
        f"{name}: " + ", ".join(f"{role} {e['count']}" for role, e in s["patterns_beyond_random"].items())
        + f", undecided {s['patterns']['undecided']}"
        for name, s in sets.items()
    )
    return "\n".join(lines) + f"\n\nDecided counts per set: {counts}."


def main() -> int:
    result = json.loads(Path(sys.argv[1]).read_text())
    text = tables(result)
    page = Path(__file__).resolve().parents[1] / "docs" / "maps.md"
    before, rest = page.read_text().split(START, 1)
    page.write_text(before + START + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
