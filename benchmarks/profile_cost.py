"""Wall time of ``lewel profile`` (``lewel.maps.profiles.build_profile``) on generated scenes, for a ResNet-18 LEWEL_M
(the demo model's shape) and a ResNet-50 LEWEL_B (the released head), random weights: this checkout and, with
``--compare-with OLD_CHECKOUT``, another one's ``lewel``, each in a fresh process, in alternation.

    python benchmarks/profile_cost.py --compare-with /tmp/before            # 256 + 256 scenes at 224 px
    python benchmarks/profile_cost.py --backbones resnet18 --images 32      # quicker
    python benchmarks/profile_cost.py --patterns-compare --control-seeds 1  # with and without the measured
                                                                              # patterns and the dissection
    python benchmarks/profile_cost.py --cache-compare --backbones resnet18 --images 256  # the control cache: a first
                                                                              # checkpoint (cold), a second one of the
                                                                              # same shape (warm), and the second
                                                                              # uncached (its numbers must match)

The result (seconds per profile, the verdict, how many networks were scored) goes to
``benchmarks/results/profile_cost_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

from lewel.config import ModelConfig
from lewel.files.checkpoints import training_checkpoint
from lewel.models import build_model

SHAPES = {
    "resnet18": ModelConfig.for_method("lewel_m", backbone="resnet18", hidden_dim=512, dim=128),  # lewel_m_demo's
    "resnet50": ModelConfig.for_method("lewel_b_eman", backbone="resnet50"),  # the released LEWEL_B head
}
WORKER = """
import hashlib, json, sys, time
import lewel.maps.profiles as profiles
spent = {"patterns_s": 0.0}
def timed(function):  # the seconds spent in the measured patterns' own work, whatever else loads the machine
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent["patterns_s"] += time.perf_counter() - start
    return wrapper
try:
    import lewel.maps.profiles.scores as scoring  # the module whose measure_prepared calls score_patterns
except ImportError:
    scoring = profiles  # a checkout from before lewel.maps.profiles became a package
if hasattr(scoring, "score_patterns"):
    scoring.score_patterns = timed(scoring.score_patterns)
    profiles.PreparedImages.cells = timed(profiles.PreparedImages.cells)
start = time.perf_counter()
kwargs = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
profile = profiles.build_profile(sys.argv[1], data="scenes:" + sys.argv[2], size=int(sys.argv[3]), **kwargs)
summary = profile["summary"]
controls = summary["controls"]["count"] if "controls" in summary else 1
seconds = time.perf_counter() - start
digest = hashlib.sha256(json.dumps({k: v for k, v in profile.items() if k != "checkpoint"}, sort_keys=True).encode())
print(json.dumps({"seconds": seconds, "verdict": summary["verdict"], "networks": 1 + controls, **spent,
                  "patterns_share": spent["patterns_s"] / seconds, "profile_sha256": digest.hexdigest()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--images", type=int, default=256, help="generated scenes per split (default: 256)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--compare-with", help="another checkout, timed on the same checkpoints")
    parser.add_argument("--patterns-compare", action="store_true",
                        help="time this checkout with the measured patterns and dissection ('after') and without "
                        "them ('before', build_profile(patterns=False)), alternately, instead of another checkout")
    parser.add_argument("--cache-compare", action="store_true",
                        help="with an empty control cache, profile one checkpoint ('cold'), then a second one of the "
                        "same shape ('warm': its family read back) and the second again without the cache ('uncached')")
    parser.add_argument("--control-seeds", type=int, default=None,
                        help="seeds per initialisation scheme (default: build_profile's, 5: 16 networks)")
    parser.add_argument("--out", default=None,
                        help="result file (default: benchmarks/results/profile_cost_cpu.json, with --patterns-compare "
                        "profile_patterns_cost_cpu.json)")
    args = parser.parse_args()
    if args.out is None:
        kind = "_patterns" if args.patterns_compare else "_cache" if args.cache_compare else ""
        args.out = f"benchmarks/results/profile{kind}_cost_cpu.json"

    here = Path(__file__).resolve().parents[1]
    common = {} if args.control_seeds is None else {"control_seeds": args.control_seeds}
    if args.cache_compare:  # (root, kwargs, which checkpoint)
        runs = {"cold": (here, common, 0), "warm": (here, common, 1), "uncached": (here, {**common, "cache": False}, 1)}
    elif args.patterns_compare:
        runs = {"after": (here, {**common, "patterns": True}), "before": (here, {**common, "patterns": False})}
        runs = {label: (*run, 0) for label, run in runs.items()}
    else:
        runs = {"after": (here, common)} | ({"before": (Path(args.compare_with).resolve(), common)} if args.compare_with else {})
        runs = {label: (*run, 0) for label, run in runs.items()}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as folder:
        for backbone in args.backbones:
            torch.manual_seed(12_345)  # not a seed of the control family (0 .. 4): the profiled network is another draw
            config = SHAPES[backbone]
            paths = [Path(folder) / f"{backbone}.pt", Path(folder) / f"{backbone}-second.pt"]
            for path in paths:  # two draws of one shape: two checkpoints of one run, as far as the family goes
                torch.save(training_checkpoint(build_model(config), config, epoch=0, step=0), path)
            cache = Path(folder) / f"cache-{backbone}"  # empty at the first run: every profile's cold start is measured
            entry: dict = {"method": config.method, "backbone": backbone, "d": config.dim}
            for label, (root, kwargs, which) in runs.items():
                if not args.cache_compare and cache.is_dir():
                    shutil.rmtree(cache)  # other comparisons time cold profiles only
                done = subprocess.run(
                    [sys.executable, "-c", WORKER, str(paths[which]), str(args.images), str(args.size), json.dumps(kwargs)],
                    env={**os.environ, "PYTHONPATH": str(root), "LEWEL_CACHE_DIR": str(cache)}, cwd=root,
                    capture_output=True, text=True,
                )
                if done.returncode != 0:
                    raise SystemExit(f"the {label} profile of {backbone} failed:\n{done.stderr[-3000:]}")
                entry[label] = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{backbone} {label}: {entry[label]['seconds']:.1f} s ({entry[label]['patterns_s']:.1f} s in the patterns), "
                      f"{entry[label]['networks']} networks, {entry[label]['verdict']}")
            if args.cache_compare:
                entry["ratio_warm_over_cold"] = entry["warm"]["seconds"] / entry["cold"]["seconds"]
                entry["warm_equals_uncached"] = entry["warm"]["profile_sha256"] == entry["uncached"]["profile_sha256"]
            if "before" in entry:
                entry["ratio_after_over_before"] = entry["after"]["seconds"] / entry["before"]["seconds"]
            if args.patterns_compare:  # the added work itself, measured inside the run: robust to the machine's load
                entry["patterns_overhead"] = entry["after"]["patterns_s"] / (entry["after"]["seconds"] - entry["after"]["patterns_s"])
            results[backbone] = entry
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__,
        "command": " ".join(["python", "benchmarks/profile_cost.py", *sys.argv[1:]]),
        "images_per_split": args.images,
        "size": args.size,
        "results": results,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
