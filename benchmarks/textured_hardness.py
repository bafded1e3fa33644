"""How hard is the ``textured`` benchmark for random networks? Each change of the style, one at a time (issue #40).

The generated scenes are profiled as ``lewel profile`` does, in steps from the ``scenes`` benchmark to the
``textured`` one (``lewel.data.scene_style.TEXTURED``): photographic backdrops (evaluation pools), then smaller
objects, distractors, colours blended into the backdrop and soft outlines, each step adding one change. For
every step and every checkpoint given, the random control family (15 networks) and the model are scored on the
same calibration and held-out scenes; reported: the best control's held-out object AUROC and the family's range,
the model's, the paired difference and the verdict. The controls go through the control cache.

    python benchmarks/textured_hardness.py --checkpoint models/lewel_m_demo.safetensors \
        --checkpoint models/lewel_b_demo.safetensors --images 128 --threads 2

Writes ``benchmarks/results/textured_hardness_cpu.json`` (``--out``); ``--table`` prints it as docs/maps.md's table.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from lewel.data.scene_style import SCALE_RANGE, TEXTURED, SceneStyle
from lewel.data.sources import SceneSource
from lewel.maps.profiles.build import assemble_profile, measure_family
from lewel.maps.profiles.images import CALIBRATION_SEED, HELDOUT_SEED

#: each step adds one change to the one before (the last is the ``textured`` benchmark)
STEPS: dict[str, dict[str, Any]] = {
    "scenes (procedural backgrounds)": {},
    "+ photographic backdrops": {"distractors": 0, "blend": 0.0, "soften": 0.0, "scale_range": SCALE_RANGE},
    "+ smaller objects": {"distractors": 0, "blend": 0.0, "soften": 0.0},
    "+ distractors": {"blend": 0.0, "soften": 0.0},
    "+ blended colours": {"soften": 0.0},
    "+ soft outlines (textured)": {},
    "+ cartoon-like distractors": {"flat_distractors": 0.5},
    "+ textured objects": {"flat_distractors": 0.5, "texture": 0.6},
}


def splits(step: str, images: int, size: int) -> tuple[SceneSource, SceneSource]:
    """The calibration and held-out scenes of ``step`` (the profile's seeds and the evaluation pools)."""
    if step.startswith("scenes"):
        return SceneSource(images, size, CALIBRATION_SEED), SceneSource(images, size, HELDOUT_SEED)
    changes = STEPS[step]
    return (
        SceneSource(images, size, CALIBRATION_SEED, kind="textured", style=SceneStyle.textured("calibration", **changes)),
        SceneSource(images, size, HELDOUT_SEED, kind="textured", style=SceneStyle.textured("heldout", **changes)),
    )


def measure(checkpoint: str, step: str, images: int, size: int) -> dict[str, Any]:
    """The profile summary's verdict numbers for ``checkpoint`` on ``step``'s scenes."""
    started = time.perf_counter()
    family = measure_family(checkpoint, data=splits(step, images, size), size=size, patterns=False)
    summary = assemble_profile(checkpoint, family)["summary"]
    each = [c["object_auroc"] for c in summary["controls"]["each"]]
    return {
        "model": summary["object_auroc"],
        "model_se": summary["object_auroc_se"],
        "best_control": summary["random_control"]["object_auroc"],
        "best_control_name": f"{summary['random_control']['scheme']} seed {summary['random_control']['seed']}",
        "controls_min": min(each),
        "controls_max": max(each),
        "difference": summary["difference"]["object_auroc"],
        "ci95": summary["difference"]["ci95"],
        "verdict": summary["verdict"],
        "seconds": round(time.perf_counter() - started, 1),
    }


def table(result: dict[str, Any]) -> str:
    """The markdown table of docs/maps.md ("Scenes on photographs") from a result file."""
    models = list(next(iter(result["steps"].values())))
    lines = [
        "| step | " + " | ".join(f"{m}: model / best random (range) / difference, 95 % / verdict" for m in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for step, row in result["steps"].items():
        cells = [
            f"{r['model']:.3f} / {r['best_control']:.3f} ({r['controls_min']:.3f}–{r['controls_max']:.3f}) / "
            f"{r['difference']:+.3f} ({r['ci95'][0]:+.3f} to {r['ci95'][1]:+.3f}) / {r['verdict']}"
            for r in row.values()
        ]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Model name")), "unknown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", help="repeat for several models (required to measure)")
    parser.add_argument("--images", type=int, default=128, help="scenes per split (default: 128)")
    parser.add_argument("--size", type=int, default=224, help="input size (default: 224, as lewel profile)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", action="append", help="only the steps whose name holds this (repeatable)")
    parser.add_argument("--out", default="benchmarks/results/textured_hardness_cpu.json")
    parser.add_argument("--table", action="store_true", help="print the markdown table of --out and stop")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.out).read_text())))
        return
    if not args.checkpoint:
        parser.error("--checkpoint is required to measure")
    torch.set_num_threads(args.threads)
    rows: dict[str, dict[str, Any]] = {}
    for step in [s for s in STEPS if not args.steps or any(w in s for w in args.steps)]:
        rows[step] = {Path(c).stem: measure(c, step, args.images, args.size) for c in args.checkpoint}
        print(step, json.dumps({k: (v["model"], v["best_control"], v["verdict"]) for k, v in rows[step].items()}), flush=True)
    result = {
        "command": "python benchmarks/textured_hardness.py " + " ".join(f"--checkpoint {c}" for c in args.checkpoint)
        + f" --images {args.images} --size {args.size} --threads {args.threads}",
        "cpu": cpu_model(),
        "threads": args.threads,
        "images_per_split": args.images,
        "size": args.size,
        "textured": {k: list(v) if isinstance(v, tuple) else v for k, v in TEXTURED.items()},
        "steps": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
