"""Write the demo models' cards and the comparison table from docs/demo_models.json and the shipped models'
profile sidecars (models/NAME.profile.json, written by `lewel profile`), so that every number in them is one
that scripts/evaluate_demo_models.py or `lewel profile` measured.

    .venv/bin/python scripts/write_demo_model_cards.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = {"lewel_b_eman": "LEWEL_B (EMAN)", "byol": "BYOL (EMAN)", "lewel_m": "LEWEL_M", "mocov2": "MoCo v2"}
SHIPPED = {"lewel_b_eman": "lewel_b_demo", "lewel_m": "lewel_m_demo"}


START, END = "<!-- measured table: written by scripts/write_demo_model_cards.py -->", "<!-- end of measured table -->"
INTRO = (
    "# Demo models: LEWEL against its baselines at the same budget\n\n"
    "Four ResNet-18 models trained with `./scripts/train_demo_models.sh` (recipes `configs/demo_*.yaml`: the same\n"
    "4,096 generated scenes at 128 px, batch 32, the same number of steps), each next to a randomly initialised\n"
    "network of the same shape, on held-out scenes. Measured numbers, from `docs/demo_models.json`; the model\n"
    "cards of the two shipped models are `models/lewel_b_demo.md` and `models/lewel_m_demo.md`. Baselines have\n"
    "no alignment maps, hence no map scores. Definitions: `docs/maps.md`.\n\n"
)


HEADER = (
    "| model | kNN top-1 (%) | object maps AUROC, held-out | object maps pointing (%) | object-mass ratio | "
    "heuristic patterns object / multi / global (%) |\n|---|---|---|---|---|---|"
)


def profile_of(method: str) -> dict | None:
    """The summary of a shipped model's sidecar profile (None for the baselines, which have no maps)."""
    from lewel.profiles import read_profile

    path = ROOT / "models" / f"{SHIPPED.get(method, '')}.profile.json"
    return read_profile(path)["summary"] if method in SHIPPED and path.exists() else None


def profile_cells(summary: dict | None, control: bool) -> str:
    """AUROC and pointing of the selected object maps on held-out scenes: the model's, or its random control's."""
    if summary is None:
        return "– | –"
    chance = f"chance {100 * summary['pointing_chance']:.1f}"
    if control:
        part = summary["random_control"]
        return f"{part['object_auroc']:.3f} | {100 * part['object_pointing']:.1f} ({chance})"
    return (
        f"**{summary['object_auroc']:.3f}** ± {summary['object_auroc_se']:.3f} ({summary['verdict']}) | "
        f"{100 * summary['object_pointing']:.1f} ({chance})"
    )


def maps_cells(entry: dict) -> str:
    if "object_mass_ratio" not in entry:
        return "– | –"
    patterns = entry["patterns"]
    shares = " / ".join(f"{100 * patterns[p]:.0f}" for p in ("object", "multi-object", "global"))
    return f"{entry['object_mass_ratio']:.3f} | {shares}"


def table(results: dict) -> str:
    lines = [HEADER]
    for method, entry in results["models"].items():
        summary = profile_of(method)
        lines.append(
            f"| {NAMES[method]}, trained ({entry['step']} steps) | {entry['trained']['knn_top1']:.1f} | "
            f"{profile_cells(summary, False)} | {maps_cells(entry['trained'])} |"
        )
        lines.append(
            f"| {NAMES[method]}, random init | {entry['random_init']['knn_top1']:.1f} | "
            f"{profile_cells(summary, True)} | {maps_cells(entry['random_init'])} |"
        )
    return "\n".join(lines)


def card(method: str, entry: dict, results: dict, wall: str) -> str:
    name = SHIPPED[method]
    path = ROOT / "models" / f"{name}.safetensors"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    config, model = entry["config"], entry["config"]["model"]
    trained, random_init, training = entry["trained"], entry["random_init"], entry["training"]
    profile = profile_of(method)
    return f"""# Model card: `{name}` ({NAMES[method]}, ResNet-18)

A demo model trained by this project's own pipeline so that the API, the app and the notebooks show real
alignment maps on a fresh install. It is small and briefly trained: a picture of what LEWEL's maps do, not a
substitute for the authors' ImageNet checkpoints.

- **File**: `models/{name}.safetensors` ({path.stat().st_size / 2**20:.1f} MiB, float16, online network only:
  backbone + coupled head), sha256 `{digest}`. Open it with `lewel.load_model("models/{name}.safetensors")`.
- **Architecture**: {model['backbone']}, coupled head `512 → {model['hidden_dim']} → {model['dim']}`
  ({"BatchNorm" if model['head_norm'] else "no BatchNorm"}), d = {model['dim']} maps, h = {model['num_groups']} groups,
  {model['dim'] // model['num_groups']} aligned representations; 4×4 maps at 128 px.
- **Data**: {config['data'].split(':')[1]} multi-object scenes generated on the fly (`{config['data']}`, seed {config['seed']}):
  1–4 Tux Paint cut-outs on procedural or scikit-image backgrounds, {config['image_size']} px.
- **Recipe**: `configs/demo_{method}.yaml`: {config['optimizer'].upper()} lr {config['lr']}, weight decay
  {config['weight_decay']}, batch {config['batch_size']}, {config['epochs']} epochs = {entry['step']} steps,
  {config['augmentation']} augmentations, target momentum {config['base_momentum']} ({config['momentum_schedule']}).
  The baseline was trained with the same data, input, batch and number of steps.
- **Command**: `./scripts/train_demo_models.sh` (trains all four, exports, evaluates; then
  `scripts/write_demo_model_cards.py`).
- **Hardware and time**: this project's CPU machine (2 cores, no GPU), two runs at a time with one thread
  each, next to other work; {training['seconds_first_to_last_log']} s of training between its first and last
  logged steps (a stop and resume left out); wall time of the whole training script: {wall}.

## Scores (held-out scenes; `docs/demo_models.json`, `models/{name}.profile.json`)

| | kNN top-1 (%) | object maps AUROC, held-out | object maps pointing (%) | object-mass ratio | heuristic patterns object / multi / global (%) |
|---|---|---|---|---|---|
| this model | {trained['knn_top1']:.1f} | {profile_cells(profile, False)} | {maps_cells(trained)} |
| same shape, random init | {random_init['knn_top1']:.1f} | {profile_cells(profile, True)} | {maps_cells(random_init)} |

**Where its maps look** (`lewel profile --checkpoint models/{name}.safetensors`, the sidecar
`models/{name}.profile.json`): every map index is scored by the AUROC of its cells, object against
background, on {profile['calibration_images']} calibration scenes; the {len(profile['object_maps'])} best indices are its object maps
({', '.join(map(str, profile['object_maps']))}), and their AUROC and pointing rate are measured on
{profile['heldout_images']} other, held-out scenes at 224 px (7×7 maps), next to a randomly initialised network of the same
shape scored the same way. Paired difference {profile['difference']['object_auroc']:+.3f} (95 % interval
{profile['difference']['ci95'][0]:+.3f} to {profile['difference']['ci95'][1]:+.3f}): **{profile['verdict']}**.

kNN: k = 20, cosine, T = 0.07, bank = the {config['data'].split(':')[1]} training scenes, queries =
{config['val_data'].split(':')[1]} held-out scenes, label = category of the largest object. Object-mass ratio and
patterns: `lewel eval-maps` on {results['val_scenes_for_maps']} held-out scenes at {results['size']} px (the
ratio is 1.0 for a uniform map and reads about 1.000 for every LEWEL model, trained or not, because the maps stay
within a few per cent of uniform; the patterns are a shape heuristic relative to each map's range). The
definitions are in `docs/maps.md`; the comparison with the baselines is in `docs/demo_models.md`.
"""


def main() -> None:
    results = json.loads((ROOT / "docs" / "demo_models.json").read_text())
    wall_file = ROOT / "runs" / "demo" / "wall_time.txt"
    wall = wall_file.read_text().split(":")[1].strip() if wall_file.exists() else "(not recorded)"
    for method, name in SHIPPED.items():
        if method in results["models"] and (ROOT / "models" / f"{name}.safetensors").exists():
            (ROOT / "models" / f"{name}.md").write_text(card(method, results["models"][method], results, wall))
    page = ROOT / "docs" / "demo_models.md"
    text = page.read_text() if page.exists() else INTRO + f"{START}\n{END}\n"
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    page.write_text(before + START + "\n" + table(results) + "\n" + END + after)
    print(table(results))


if __name__ == "__main__":
    main()
