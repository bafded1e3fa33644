"""Score the demo runs (scripts/train_demo_models.sh) and randomly initialised networks of the same shapes.

For every method: kNN top-1 (k = 20, cosine, T = 0.07) of held-out scenes against the training scenes as
the bank (label = category of the largest object; whole images resized, no crop), and for the LEWEL models
`lewel eval-maps` on 512 held-out scenes: object-mass ratio, pointing game (with its chance rate) and
pattern shares. Writes a JSON file and prints a Markdown table.

    .venv/bin/python scripts/evaluate_demo_models.py --runs runs/demo --out docs/demo_models.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from lewel import load_model
from lewel.augmentations import eval_transform
from lewel.checkpoints import safe_load, training_checkpoint
from lewel.config import ModelConfig
from lewel.data.scenes import write_scenes
from lewel.evaluation import evaluate_maps
from lewel.models import build_model
from lewel.train.data import open_source
from lewel.train.knn import knn_top1

METHODS = ("lewel_b_eman", "byol", "lewel_m", "mocov2")


def knn(checkpoint: Path, config: dict, size: int) -> float:
    model = load_model(checkpoint)
    train_source = open_source(config["data"], image_size=size, seed=config["seed"])
    val_source = open_source(config["val_data"], image_size=size, seed=config["seed"], split="val")
    return knn_top1(model.backbone, train_source, val_source, transform=eval_transform(size), batch_size=128)


def random_checkpoint(model_config: dict, folder: Path, name: str) -> Path:
    """A never-trained model of the same shape, saved like a training checkpoint (seed 1234)."""
    torch.manual_seed(1234)
    config = ModelConfig.from_dict(model_config)
    path = folder / f"{name}.pt"
    torch.save(training_checkpoint(build_model(config), config), path)
    return path


def score(checkpoint: Path, config: dict, scenes: Path, size: int) -> dict:
    started = time.time()
    result: dict = {"knn_top1": knn(checkpoint, config, size)}
    if config["model"]["method"].startswith("lewel"):
        maps = evaluate_maps(checkpoint, scenes, size=size, batch_size=64)
        result.update(
            object_mass_ratio=maps["object_mass_ratio"],
            pointing_game=maps["pointing_game"],
            pointing_chance=maps["pointing_chance"],
            patterns=maps["patterns"],
            grid=maps["grid"],
            images=maps["images"],
        )
    result["eval_seconds"] = round(time.time() - started, 1)
    return result


def training_time(run: Path) -> dict:
    """Steps, and the seconds spent training: the sum of the intervals between consecutive logged steps,
    leaving out gaps of more than 10 minutes (a run stopped and resumed later) and the interval that
    precedes a resumed run's first step (metrics.jsonl is appended to across restarts)."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    steps = [r for r in records if "loss" in r]
    seconds = sum(
        b["time"] - a["time"] for a, b in zip(steps, steps[1:]) if b["step"] > a["step"] and b["time"] - a["time"] < 600
    )
    return {"logged_steps": steps[-1]["step"], "seconds_first_to_last_log": round(seconds), "final_loss": steps[-1]["loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs/demo")
    parser.add_argument("--out", default="docs/demo_models.json")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--val-scenes", type=int, default=512)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="score these runs only; other entries already in --out are kept")
    args = parser.parse_args()
    runs = Path(args.runs)
    scenes = runs / "scenes"
    if not (scenes / "scenes.json").exists():
        write_scenes(scenes, train=0, val=args.val_scenes, size=args.size)
    out = Path(args.out)
    results: dict = {"size": args.size, "val_scenes_for_maps": args.val_scenes, "models": {}}
    if out.exists():
        previous = json.loads(out.read_text())
        if (previous["size"], previous["val_scenes_for_maps"]) == (args.size, args.val_scenes):
            results["models"] = previous["models"]
    with tempfile.TemporaryDirectory() as folder:
        for method in args.methods:
            checkpoint = runs / method / "last.pt"
            state = safe_load(checkpoint)
            config = state["config"]
            entry = {"step": state["step"], "config": config, "trained": score(checkpoint, config, scenes, args.size)}
            entry["training"] = training_time(runs / method)
            entry["random_init"] = score(random_checkpoint(state["model_config"], Path(folder), method), config, scenes, args.size)
            results["models"][method] = entry
            results["models"] = {m: results["models"][m] for m in METHODS if m in results["models"]}
            out.write_text(json.dumps(results, indent=2) + "\n")
            print(method, json.dumps({k: v for k, v in entry.items() if k != "config"}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
