"""Do measured roles replicate? Profile one checkpoint on independent samples of the same kind of scenes, written
as COCO, and compare the roles each decides (issue #39; docs/maps.md, "How sure a role is").

Three COCO sets of generated scenes, with seeds no test uses, are written under ``--work``: two of ``--large``
scenes (A, B) and one of ``--small`` (C). Each is profiled as ``lewel profile --data coco:FILE`` does (COCO sets
split alternately into calibration and held-out; the controls go through the control cache). Reported:

- per set, the decided roles' counts against the family's (``patterns_beyond_random``), the share decided and
  the held-out agreement;
- A against B and C against each: the share of the indices both decide that get the same role;
- how roles stabilise with data: the first n scenes of A and of B (n = 64, 128, 256, ``--large``), roles
  re-decided from their per-image scores at confidence levels 0.8, 0.9 and 0.95 (share decided, A_n against
  B_n, and A_n against all of B).

    python benchmarks/role_stability.py --checkpoint models/lewel_m_demo.safetensors --threads 2

Writes ``benchmarks/results/role_stability_cpu.json`` (``--out``) and each set's profile beside its COCO file.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools import mask as coco_mask

from lewel.data import SceneGenerator
from lewel.maps.patterns import UNDECIDED
from lewel.maps.profiles.build import FamilyScores, assemble_profile, measure_family
from lewel.maps.profiles.pattern_summary import split_values as pattern_values
from lewel.maps.profiles.sidecar import write_profile
from lewel.maps.role_confidence import SplitValues, bootstrap_roles, decide

SEEDS = {"A": 8_800_001, "B": 8_800_002, "C": 8_800_003}  #: scene seeds no test or profile default uses
LEVELS = (0.8, 0.9, 0.95)
SIZES = (64, 128, 256)


def write_coco_scenes(root: Path, count: int, seed: int, size: int) -> Path:
    """``count`` generated scenes of ``size`` px as a COCO instances file (compressed RLE per instance) with
    their PNGs in ``root/images``; returns the annotations file (written once, reused when present)."""
    path = root / "annotations.json"
    if path.is_file():
        return path
    (root / "images").mkdir(parents=True, exist_ok=True)
    generator = SceneGenerator(size, seed)
    names = sorted({stamp.category for stamp in generator.stamps})
    ids = {name: k + 1 for k, name in enumerate(names)}
    images, annotations = [], []
    for i in range(count):
        scene = generator.scene(i)
        name = f"{i:06d}.png"
        scene.image.save(root / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        for mask, category in zip(scene.masks, scene.categories):
            rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": ids[category], "iscrowd": 0,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                "area": float(mask.sum()), "bbox": [float(v) for v in coco_mask.toBbox(rle)],
            })  # fmt: skip
    categories = [{"id": ids[n], "name": n, "supercategory": "tuxpaint"} for n in names]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def split_values(family: FamilyScores, split: int, count: int | None = None) -> tuple[SplitValues, list[SplitValues]]:
    """The model's and the controls' per-image values on one split (its first ``count`` images)."""
    (scores, patterns) = family.scores

    def values(image_scores, pattern_scores) -> SplitValues:
        return pattern_values(image_scores.auroc, pattern_scores).first(count)

    model = values(scores[split], patterns[split])
    controls = [values(c[1 + split], p[split]) for c, p in zip(family.controls, family.control_patterns)]
    return model, controls


def agreement(first: list[str], second: list[str]) -> dict[str, Any]:
    """Share of the indices both decide that get the same role."""
    both = [m for m in range(len(first)) if UNDECIDED not in (first[m], second[m])]
    same = sum(first[m] == second[m] for m in both)
    return {"both_decided": len(both), "same": same, "agreement": same / len(both) if both else None}


def role_counts(roles: list[str]) -> dict[str, int]:
    return {r: roles.count(r) for r in dict.fromkeys(roles)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="models/lewel_m_demo.safetensors")
    parser.add_argument("--work", default="/tmp/lewel-role-stability", help="where the COCO sets are written")
    parser.add_argument("--large", type=int, default=512, help="scenes in sets A and B")
    parser.add_argument("--small", type=int, default=120, help="scenes in set C")
    parser.add_argument("--scene-size", type=int, default=224)
    parser.add_argument("--size", type=int, default=224, help="profile input size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/role_stability_cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work) / Path(args.checkpoint).stem
    counts = {"A": args.large, "B": args.large, "C": args.small}
    families, profiles, seconds = {}, {}, {}
    for name, count in counts.items():
        annotations = write_coco_scenes(Path(args.work) / f"{name}_{SEEDS[name]}_{count}", count, SEEDS[name], args.scene_size)
        start = time.perf_counter()
        families[name] = measure_family(args.checkpoint, data=f"coco:{annotations}", size=args.size)
        profiles[name] = assemble_profile(args.checkpoint, families[name])
        seconds[name] = time.perf_counter() - start
        work.mkdir(parents=True, exist_ok=True)
        write_profile(profiles[name], work / f"{name}.profile.json")
        print(f"{name}: {count} scenes profiled in {seconds[name]:.0f} s: {profiles[name]['summary']['patterns']}", file=sys.stderr)
    roles = {name: [r["pattern"] for r in p["maps"]] for name, p in profiles.items()}
    d = len(roles["A"])
    sets = {
        name: {
            "scenes": counts[name], "seed": SEEDS[name], "seconds": seconds[name],
            "patterns": p["summary"]["patterns"], "patterns_beyond_random": p["summary"]["patterns_beyond_random"],
            "decided_share": 1 - p["summary"]["patterns"][UNDECIDED] / d,
            "patterns_note": p["summary"]["patterns_note"],
            "heldout_agreement": p["summary"]["patterns_heldout_agreement"],
            "heldout_compared": p["summary"]["patterns_heldout_compared"],
            "verdict": p["summary"]["verdict"],
        }
        for name, p in profiles.items()
    }  # fmt: skip
    pairs = {"A-B": agreement(roles["A"], roles["B"]), "C-A": agreement(roles["C"], roles["A"]), "C-B": agreement(roles["C"], roles["B"])}
    full = {name: bootstrap_roles(*split_values(families[name], 0)) for name in ("A", "B")}
    stability = []
    for n in [s for s in SIZES if s < args.large] + [args.large]:
        per_split = n // 2
        votes = {name: bootstrap_roles(*split_values(families[name], 0, per_split)) for name in ("A", "B")}
        for level in LEVELS:
            decided = {name: decide(v.shares, v.floors, level)[1] for name, v in votes.items()}
            whole = {name: decide(v.shares, v.floors, level)[1] for name, v in full.items()}
            stability.append({
                "scenes": n, "calibration_images": per_split, "level": level,
                "decided_share": {name: 1 - r.count(UNDECIDED) / d for name, r in decided.items()},
                "A_n-B_n": agreement(decided["A"], decided["B"]),
                "A_n-B_all": agreement(decided["A"], whole["B"]),
                "B_n-A_all": agreement(decided["B"], whole["A"]),
                "counts": {name: role_counts(r) for name, r in decided.items()},
            })  # fmt: skip
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), platform.processor())
    result = {
        "checkpoint": args.checkpoint, "cpu": model_name, "threads": args.threads, "size": args.size,
        "scene_size": args.scene_size, "d": d, "sets": sets, "pairs": pairs, "stability": stability,
        "command": "python benchmarks/role_stability.py " + " ".join(sys.argv[1:]),
    }  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"sets": {k: {x: v[x] for x in ("patterns", "decided_share")} for k, v in sets.items()}, "pairs": pairs}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
