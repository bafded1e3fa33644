"""Score the demo runs of scripts/train_demo_models.sh, pick and ship the LEWEL models, and record it all.

For every run: kNN top-1 (k = 20, cosine, T = 0.07) of the 1,024 validation scenes against the 4,096 training
scenes as the bank (label = category of the largest object; resized to 128/0.875 px and centre-cropped to
128), as `lewel train`'s kNN monitor measured it at the run's last step (computed here when the run did not),
next to a randomly initialised ResNet-18 scored the same way; steps and training time; and for the LEWEL runs the map
monitor's trajectory and the map profile of the exported float16 file (`lewel profile`: 256 + 256 scenes at
224 px, against a random network of the same shape).

A shipped model with several candidate runs (LEWEL_M: two training seeds) is the candidate whose map monitor
scored highest at its last pass. The monitor's scenes come from the validation side (seeds run seed +
1,000,003 and + 2,000,003), so the profile's held-out scenes play no part in the choice. The chosen file and
its profile are copied to models/NAME.safetensors and models/NAME.profile.json.

    .venv/bin/python scripts/evaluate_demo_models.py --runs runs/demo --out docs/demo_models.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from lewel import load_model
from lewel.export import export_safetensors
from lewel.files.checkpoints import safe_load
from lewel.maps.profiles import build_profile, find_profile, read_profile, sidecar_path, write_profile
from lewel.models.backbones import build_backbone
from lewel.train.data import training_images
from lewel.train.knn import knn_top1
from lewel.train.logging import read_records, training_seconds
from lewel.train.monitor import read_map_records
from lewel.views.augmentations import center_crop_transform

ROOT = Path(__file__).resolve().parent.parent
#: run folders, in the order of the table: LEWEL_M's two seeds and MoCo v2 (1,024 steps); LEWEL_B with the plain
#: momentum target on two seeds and BYOL at its recipe (1,024 steps); the controlled EMAN comparison (the plain
#: recipe with only the target changed, 384 steps); the EMAN LEWEL_B of the earlier sweep (lr 1.0, 384 steps)
RUNS = (
    "lewel_m_s0", "lewel_m_s1", "mocov2", "lewel_b_plain_s0", "lewel_b_plain_s1", "byol_plain", "lewel_b_eman_384",
    "lewel_b",
)
METHOD_LABELS = {"lewel_m": "LEWEL_M", "mocov2": "MoCo v2", "lewel_b": "LEWEL_B (plain momentum)", "lewel_b_eman": "LEWEL_B (EMAN)", "byol": "BYOL"}
#: shipped model -> its candidate runs (the best by the map monitor's last pass is shipped)
SHIPPED = {"lewel_m_demo": ("lewel_m_s0", "lewel_m_s1"), "lewel_b_demo": ("lewel_b_plain_s0", "lewel_b_plain_s1")}
#: shipped model -> a selection set of its own: fresh validation-side scenes that neither training, the monitor nor the
#: profile use (``lewel data scenes --train 1 --val 512 --size 224 --seed 9000000``, 256 + 256 scenes, split
#: alternately); the candidate whose object maps score highest there is chosen, not the one with the best monitor
#: pass (64 + 64 scenes: LEWEL_B's two seeds tie there, 0.7999 and 0.798, within its noise of about 0.02)
SELECTION_SEED = 9_000_000
SELECTED_ON_SCENES = {"lewel_b_demo"}
SELECTION_RULE = (
    "the candidate whose object maps score the highest held-out AUROC on 256 + 256 fresh validation-side scenes "
    f"(lewel data scenes --seed {SELECTION_SEED}: val seed {SELECTION_SEED + 1_000_003}), which neither training, the "
    "monitor nor the profile use; the profile's scenes play no part"
)
#: shipped model -> the bar its chosen candidate must pass to replace the file in models/: the profile's verdict
#: "localises" and at least this held-out object-maps AUROC (issue 27); else the shipped file stays
SHIP_BAR = {"lewel_b_demo": 0.80}
RANDOM_SEED = 1234  #: torch seed of the random ResNet-18 the kNN scores are compared with
RULE = (
    "the candidate whose map monitor (object-maps AUROC on validation-side scenes, seeds run seed + 1,000,003 "
    "for calibration and + 2,000,003 held out) scored highest at its last pass; the profile's scenes play no part"
)


def run_label(entry: dict[str, Any]) -> str:
    """What a run is, from its config: method (and target), and the seed for LEWEL_M's two runs."""
    model, seed = entry["config"]["model"], entry["config"]["seed"]
    name = METHOD_LABELS[model["method"]]
    if model["method"] == "byol":
        name += " (EMAN)" if model["eman"] else " (plain momentum)"
    if model["method"] == "lewel_b_eman" and entry["config"].get("lr") != 0.2:
        name += f", LARS lr {entry['config']['lr']}"
    stop = entry["config"].get("stop_after_steps")
    if stop:
        name += f", stopped at step {stop} of its schedule"
    return f"{name}, seed {seed}" if model["method"] in ("lewel_m", "lewel_b") else name


def knn(backbone: torch.nn.Module, config: dict[str, Any], size: int) -> float:
    """The kNN monitor's protocol (``lewel train``): the run's training scenes as the bank, its val scenes as queries."""
    train_source = training_images(config["data"], image_size=size, seed=config["seed"])
    val_source = training_images(config["val_data"], image_size=size, seed=config["seed"], split="val")
    return knn_top1(
        backbone, train_source, val_source, transform=center_crop_transform(size), k=config["knn_k"],
        temperature=config["knn_temperature"], batch_size=128,
    )


def logged_knn(run: Path, step: int) -> float | None:
    """The kNN top-1 ``lewel train`` logged at ``step`` (its last), if it did."""
    values = [r["knn_top1"] for r in read_records(run) if "knn_top1" in r and r["step"] == step]
    return values[-1] if values else None


def training_time(run: Path) -> dict[str, Any]:
    """Steps, the seconds spent training (``lewel.train.logging.training_seconds``) and the last loss."""
    steps = [r for r in read_records(run) if "loss" in r]
    return {"logged_steps": steps[-1]["step"], "seconds_first_to_last_log": round(training_seconds(run)), "final_loss": steps[-1]["loss"]}


def monitor(run: Path) -> list[dict[str, Any]]:
    return [
        {"step": r["step"], **{k: r["maps"][k] for k in ("object_auroc", "object_pointing", "pointing_chance", "seconds")}}
        for r in read_map_records(run)
        if "object_auroc" in r["maps"]
    ]


def profiled_export(run: Path, folder: Path, images: int) -> tuple[Path, dict[str, Any]]:
    """``folder/RUN.safetensors`` (float16 online network) and its profile sidecar, made when missing or stale."""
    path = folder / f"{run.name}.safetensors"
    if not path.is_file() or path.stat().st_mtime < (run / "last.pt").stat().st_mtime:
        export_safetensors(load_model(run / "last.pt"), path, half=True)
    try:
        profile = find_profile(path)
    except Exception:  # noqa: BLE001 - a stale or broken sidecar is made again
        profile = None
    if profile is None:
        started = time.time()
        profile = build_profile(path, images=images)
        profile["seconds"] = round(time.time() - started, 1)
        write_profile(profile, sidecar_path(path))
    return path, profile


def selection_scenes(folder: Path) -> Path:
    """The selection scenes (``SELECTION_SEED``) under ``folder``, generated once."""
    from lewel.data.scenes import write_scenes

    scenes = folder / f"selection_scenes_{SELECTION_SEED}"
    if not (scenes / "scenes.json").is_file():
        write_scenes(scenes, train=1, val=512, size=224, seed=SELECTION_SEED)
    return scenes


def selection_score(path: Path, folder: Path) -> float:
    """Held-out object-maps AUROC of the exported ``path`` on the selection scenes (one control: the score is
    what is compared), cached next to it."""
    cached = path.with_suffix(".selection.json")
    if cached.is_file() and cached.stat().st_mtime >= path.stat().st_mtime:
        return json.loads(cached.read_text())["summary"]["object_auroc"]
    profile = build_profile(
        path, data=str(selection_scenes(folder)), control_schemes=("torchvision",), control_seeds=1
    )
    cached.write_text(json.dumps(profile) + "\n")
    return profile["summary"]["object_auroc"]


def choose(name: str, candidates: dict[str, dict[str, Any]], folder: Path) -> tuple[str, dict[str, float], str]:
    """The candidate to ship as ``name``, the scores it was chosen by, and the rule."""
    if name in SELECTED_ON_SCENES:
        scored = {run: selection_score(folder / f"{run}.safetensors", folder) for run in candidates}
        return max(scored, key=scored.get), scored, SELECTION_RULE
    scored = {run: entry["monitor"][-1]["object_auroc"] for run, entry in candidates.items() if entry.get("monitor")}
    return (max(scored, key=scored.get) if scored else next(iter(candidates))), scored, RULE


def ship(
    name: str, chosen: str, scored: dict[str, float], rule: str, candidates: dict[str, dict[str, Any]], folder: Path
) -> dict[str, Any]:
    """Copy ``chosen`` (picked by ``choose``, by ``scored`` under ``rule``) to ``models/NAME.safetensors`` with its
    profile; the record of the choice."""
    target = ROOT / "models" / f"{name}.safetensors"
    shutil.copyfile(folder / f"{chosen}.safetensors", target)
    profile = read_profile(sidecar_path(folder / f"{chosen}.safetensors"))
    profile["checkpoint"]["file"] = target.name
    write_profile(profile, sidecar_path(target))
    monitor = {run: entry["monitor"][-1]["object_auroc"] for run, entry in candidates.items() if entry.get("monitor")}
    record = {"run": chosen, "monitor_last_auroc": monitor, "rule": rule}
    if rule == SELECTION_RULE:
        record["selection_auroc"] = scored
    return record


def below_bar(name: str, chosen: str, entry: dict[str, Any]) -> dict[str, Any] | None:
    """Why ``chosen`` (its results ``entry``) may not replace the shipped ``name`` (``SHIP_BAR``), or ``None``."""
    bar = SHIP_BAR.get(name)
    if bar is None:
        return None
    summary = entry["profile"]["summary"]
    if summary["verdict"] == "localises" and summary["object_auroc"] >= bar:
        return None
    return {
        "run": chosen, "bar": bar, "object_auroc": summary["object_auroc"], "verdict": summary["verdict"],
        "reason": f"{chosen} (chosen by the rule) scores {summary['object_auroc']:.3f}, {summary['verdict']}; the bar is "
        f"{bar:.2f} and localises",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "demo")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "demo_models.json")
    parser.add_argument("--size", type=int, default=128, help="kNN input side")
    parser.add_argument("--profile-images", type=int, default=256, help="generated scenes per profile split")
    parser.add_argument("--only", nargs="+", choices=RUNS, help="score these runs now (the others keep their entries)")
    parser.add_argument("--no-ship", action="store_true", help="score only; leave models/ as it is")
    args = parser.parse_args()
    results: dict[str, Any] = {"size": args.size, "models": {}, "shipped": {}}
    if args.out.exists():
        previous = json.loads(args.out.read_text())
        if previous.get("size") == args.size and "shipped" in previous:
            results = previous

    def save() -> None:
        results["models"] = {run: results["models"][run] for run in RUNS if run in results["models"]}
        args.out.write_text(json.dumps(results, indent=1) + "\n")

    for run_name in args.only or RUNS:
        run = args.runs / run_name
        if not (run / "last.pt").is_file():
            continue
        state = safe_load(run / "last.pt")
        config = state["config"]
        entry = results["models"].get(run_name, {})
        if entry.get("step") != state["step"] or entry.get("config") != config:
            started = time.time()
            logged = logged_knn(run, state["step"]) if config["image_size"] == args.size else None
            top1 = logged if logged is not None else knn(load_model(run / "last.pt").backbone, config, args.size)
            entry = {"step": state["step"], "config": config, "knn_top1": top1, "knn_source": "training log" if logged is not None else "computed"}
            entry["eval_seconds"] = round(time.time() - started, 1)
        entry["training"] = training_time(run)
        if config["model"]["method"].startswith("lewel"):
            entry["monitor"] = monitor(run)
            path, profile = profiled_export(run, args.runs, args.profile_images)
            entry["profile"] = {"file": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path), "summary": profile["summary"], "seconds": profile.get("seconds")}
        results["models"][run_name] = entry
        save()
        print(run_name, json.dumps({k: v for k, v in entry.items() if k not in ("config", "monitor")})[:400])
    if "random_init" not in results or results["random_init"].get("seed") != RANDOM_SEED:
        torch.manual_seed(RANDOM_SEED)
        any_config = next(iter(results["models"].values()))["config"]
        results["random_init"] = {"seed": RANDOM_SEED, "knn_top1": knn(build_backbone("resnet18").eval(), any_config, args.size)}
        save()
    if not args.no_ship:
        for name, candidates in SHIPPED.items():
            present = {
                run: results["models"][run] for run in candidates
                if run in results["models"] and (args.runs / f"{run}.safetensors").is_file()
            }
            if not present:  # scored earlier from another runs folder: its shipped file stays as it is
                continue
            chosen, scored, rule = choose(name, present, args.runs)
            refusal = below_bar(name, chosen, present[chosen])
            if refusal is not None:
                results.setdefault("not_shipped", {})[name] = refusal
                save()
                print(f"kept the shipped {name}: {refusal['reason']}")
                continue
            results["shipped"][name] = ship(name, chosen, scored, rule, present, args.runs)
            results.get("not_shipped", {}).pop(name, None)
            save()
            print(f"shipped {name}: {results['shipped'][name]['run']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
