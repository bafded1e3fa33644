"""Write the demo models' cards, the comparison table (docs/demo_models.md and the README) and the LEWEL_B
sweep table from docs/demo_models.json, docs/lewel_b_sweep.json and the shipped models' profile sidecars, so
that every number in them is one that scripts/evaluate_demo_models.py, scripts/summarize_sweep.py or
`lewel profile` measured.

    .venv/bin/python scripts/write_demo_model_cards.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_demo_models import run_label  # noqa: E402  (what a run is, defined once)
from summarize_sweep import table as sweep_table  # noqa: E402

START, END = "<!-- measured table: written by scripts/write_demo_model_cards.py -->", "<!-- end of measured table -->"
SWEEP_START, SWEEP_END = "<!-- sweep table: written by scripts/write_demo_model_cards.py -->", "<!-- end of sweep table -->"
PATTERNS_START = "<!-- patterns table: written by scripts/write_demo_model_cards.py -->"
PATTERNS_END = "<!-- end of patterns table -->"
#: lewel.maps.patterns.PATTERN_ROLES (no torch here)
PATTERN_ROLES = ("object", "multi-object", "global", "background", "mixed")
AMP_WORDS = {"auto": "none (auto: bf16 on a GPU only)", "none": "none"}  #: what a recipe's amp meant on the CPU
HEADER = (
    "| model | steps | kNN top-1 (%) | object maps AUROC, held-out | best random control | object maps pointing (%) | "
    "map monitor AUROC, step 0 → last |\n|---|---|---|---|---|---|---|"
)


def profile_cells(entry: dict[str, Any]) -> str:
    """AUROC (± s.e., verdict), the best random control's AUROC (of how many, and the random bound), and
    pointing against chance: three cells."""
    if "profile" not in entry:
        return "– | – | –"
    s = entry["profile"]["summary"]
    return (
        f"**{s['object_auroc']:.3f}** ± {s['object_auroc_se']:.3f} "
        f"({s['verdict'] if s.get('controls') else 'profile v1, against one random network: not re-profiled'}) | {control_cell(s)} | "
        f"{100 * s['object_pointing']:.1f} (chance {100 * s['pointing_chance']:.1f}; control {100 * s['random_control']['object_pointing']:.1f})"
    )


def control_cell(s: dict[str, Any]) -> str:
    """The best random control's held-out AUROC, of how many, with the random bound (profile version 2)."""
    family = s.get("controls")
    best = s["random_control"]["object_auroc"]
    return f"{best:.3f} (best of {family['count']}; bound {family['random_bound']:.3f})" if family else f"{best:.3f} (one network)"


def monitor_cell(entry: dict[str, Any]) -> str:
    passes = entry.get("monitor") or []
    return f"{passes[0]['object_auroc']:.3f} → {passes[-1]['object_auroc']:.3f}" if passes else "–"


def label(run: str, results: dict[str, Any]) -> str:
    shipped = [name for name, record in results["shipped"].items() if record["run"] == run]
    return run_label(results["models"][run]) + (f" (shipped as `{shipped[0]}`)" if shipped else "")


def table(results: dict[str, Any]) -> str:
    lines = [HEADER]
    for run, entry in results["models"].items():
        lines.append(
            f"| {label(run, results)} | {entry['step']} | {entry['knn_top1']:.1f} | {profile_cells(entry)} | {monitor_cell(entry)} |"
        )
    random_init = results["random_init"]
    lines.append(f"| random ResNet-18 (seed {random_init['seed']}) | 0 | {random_init['knn_top1']:.1f} | – | – | – | – |")
    return "\n".join(lines)


def role_cell(entry: dict[str, Any]) -> str:
    """One role's decided count against the random family's (profile version 4)."""
    count = f"**{entry['count']}**" if entry["beyond"] or entry["below"] else str(entry["count"])
    if entry["below"]:
        return f"{count}, below random ({entry['family_min']} to {entry['family_max']})"
    return f"{count}, {'beyond' if entry['beyond'] else 'within'} random (up to {entry['family_max']})"


def heldout_text(s: dict[str, Any]) -> str:
    compared = s.get("patterns_heldout_compared") or 0
    return f"{100 * s['patterns_heldout_agreement']:.0f} % of {compared}" if compared else "none decided on both"


def patterns_table(results: dict[str, Any]) -> str:
    """Each shipped model's decided roles (profile version 4) against its random controls': per role the model's
    count and the most any control reaches under the same rule, the undecided maps, the agreement of the roles
    decided on both splits, and the maps that prefer one category significantly (docs/maps.md, "Measured
    patterns" and "How sure a role is")."""
    lines = [
        "| model | " + " | ".join(PATTERN_ROLES) + " | undecided | same role on held-out (decided on both) | maps preferring one category |",
        "|---|" + "---|" * (len(PATTERN_ROLES) + 3),
    ]
    for name, shipped in results["shipped"].items():
        s = results["models"][shipped["run"]]["profile"]["summary"]
        if s.get("patterns_beyond_random") is None:
            lines.append(f"| `{name}` | " + " | ".join(["not measured"] * (len(PATTERN_ROLES) + 3)) + " |")
            continue
        cells = [role_cell(s["patterns_beyond_random"][r]) for r in PATTERN_ROLES]
        d = s["dissection"]
        lines.append(
            f"| `{name}` (d = {sum(s['patterns'].values())}) | {' | '.join(cells)} | {s['patterns']['undecided']} | "
            f"{heldout_text(s)} | "
            f"{d['preferring_maps']} (random: mean {d['control_preferring_maps']['mean']:.1f}, max {d['control_preferring_maps']['max']}) |"
        )
    return "\n".join(lines)


def patterns_paragraph(s: dict[str, Any]) -> str:
    """The card's lines on the measured patterns and the dissection."""
    if s.get("patterns_beyond_random") is None:
        return "Measured patterns: not in this profile (made before roles carried their confidence, or on binary masks)."
    counts = "; ".join(f"{r} {role_cell(s['patterns_beyond_random'][r])}" for r in PATTERN_ROLES)
    return (
        f"**Measured patterns** (Figure 5 from the scenes' instance masks, roles on calibration by thresholds from the random "
        f"controls, decided only where resampling the images settles them, docs/maps.md): {counts}; "
        f"undecided {s['patterns']['undecided']}. {s['patterns_note']}. Held-out check: {heldout_text(s)} indices decided "
        f"on both splits keep their role. **Dissection**: {s['dissection']['line']}."
    )


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min"


def card(name: str, results: dict[str, Any]) -> str:
    shipped = results["shipped"][name]
    run = shipped["run"]
    entry = results["models"][run]
    path = ROOT / "models" / f"{name}.safetensors"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    config, model = entry["config"], entry["config"]["model"]
    s = entry["profile"]["summary"]
    control = s["random_control"]
    family = s.get("controls") or {}
    family_text = (
        f"{family['count']} randomly initialised networks of the same shape ({len(family['seeds'])} seeds of each of "
        f"the {', '.join(family['schemes'])} initialisations)"
        if family
        else "a randomly initialised network of the same shape"
    )
    scheme_rows = "".join(
        f"| random controls, {name} init ({v['controls']}): mean ± sd, max | {v['mean']:.3f} ± {v['sd']:.3f}, max {v['max']:.3f} "
        f"(bound {v['bound']:.3f}) | | |\n"
        for name, v in family.get("by_scheme", {}).items()
    )
    allowance = f"{s['difference']['spread_allowance']:.3f}" if family else "0"
    bound = f"{family['random_bound']:.3f}" if family else "–"
    plain = run.startswith("lewel_b_plain")
    recipe_name = "lewel_b_plain" if plain else "lewel_b" if model["method"].startswith("lewel_b") else model["method"]
    recipe = f"configs/demo_{recipe_name}.yaml"
    seed_option = f" --seed {config['seed']}" if run.startswith(("lewel_m", "lewel_b_plain")) else ""
    others = [c for c in shipped["monitor_last_auroc"] if c != run]
    other_lines = "".join(
        f"\n- **Other candidate**: {run_label(results['models'][c])}, held-out object-maps AUROC {results['models'][c]['profile']['summary']['object_auroc']:.3f} "
        f"± {results['models'][c]['profile']['summary']['object_auroc_se']:.3f}, pointing "
        f"{100 * results['models'][c]['profile']['summary']['object_pointing']:.1f} %, map monitor at its last pass "
        f"{shipped['monitor_last_auroc'][c]:.3f} (this model's: {shipped['monitor_last_auroc'][run]:.3f})."
        for c in others
    )
    baseline_run = "mocov2" if model["method"] == "lewel_m" else "byol_plain" if plain else "byol"
    baseline = (
        f"Its baseline ({run_label(results['models'][baseline_run])}) was trained with the same data, input, batch and "
        "number of steps (`docs/demo_models.md`)."
        if baseline_run in results["models"]
        else f"Its baseline ({'MoCo v2' if baseline_run == 'mocov2' else 'BYOL'}) was not trained at this recipe (`docs/demo_models.md`)."
    )
    chosen_by = (
        shipped["rule"]
        if len(shipped["monitor_last_auroc"]) > 1
        else "the one run of this recipe; how the recipe was chosen is in `docs/demo_models.md` (the LEWEL_B sweep)"
    )
    if "selection_auroc" in shipped:
        chosen_by += " (" + ", ".join(
            f"{run_label(results['models'][c])} {v:.3f}" for c, v in sorted(shipped["selection_auroc"].items())
        ) + ")"
    kept = results.get("not_shipped", {}).get(name)
    if kept is not None:
        challenger = results["models"][kept["run"]]
        other_lines += (
            f"\n- **Not replaced**: {run_label(challenger)} (`configs/demo_lewel_b_plain.yaml`, {challenger['step']} steps) "
            f"scores {kept['object_auroc']:.3f} on the held-out scenes ({kept['verdict']}), under the bar of "
            f"{kept['bar']:.2f} a replacement must reach (`scripts/evaluate_demo_models.py`, `SHIP_BAR`); "
            "`docs/demo_models.md` compares them."
        )
    passes = entry.get("monitor") or []
    trajectory = " → ".join(f"{p['object_auroc']:.3f}" for p in passes)
    monitor_seconds = sum(p["seconds"] for p in passes)
    training = entry["training"]["seconds_first_to_last_log"]
    return f"""# Model card: `{name}` ({run_label(entry).split(',')[0]}, ResNet-18)

A demo model trained by this project's own pipeline so that the API, the app and the notebooks show real
alignment maps on a fresh install. It is small and briefly trained: a picture of what LEWEL's maps do, not a
substitute for the authors' ImageNet checkpoints.

- **File**: `models/{name}.safetensors` ({path.stat().st_size / 2**20:.1f} MiB, float16, online network only:
  backbone + coupled head), sha256 `{digest}`. Open it with `lewel.load_model("models/{name}.safetensors")`.
- **Architecture**: {model['backbone']}, coupled head `512 → {model['hidden_dim']} → {model['dim']}`, d = {model['dim']} maps,
  h = {model['num_groups']} groups, {model['dim'] // model['num_groups']} aligned representations; 4×4 maps at 128 px, 7×7 at 224 px.
- **Data**: {config['data'].split(':')[1]} multi-object scenes generated on the fly (`{config['data']}`, seed {config['seed']}):
  1–4 Tux Paint cut-outs on procedural or scikit-image backgrounds, {config['image_size']} px.
- **Recipe**: `{recipe}`: {model['method']}, {config['optimizer'].upper()} lr {config['lr']}, weight decay {config['weight_decay']},
  warm-up {config['warmup_epochs']} epochs, batch {config['batch_size']}, {config['epochs']} epochs = {entry['step']} steps,
  {config['augmentation']} augmentations, target momentum {config['base_momentum']} ({config['momentum_schedule']}),
  loss weight {model.get('loss_weight')}, autocast {AMP_WORDS.get(config.get('amp', 'none'), config.get('amp'))}, training seed {config['seed']}. {baseline}
- **Command**: `lewel train --config {recipe} --out runs/demo/{run} --resume auto{seed_option}`, as
  `./scripts/train_demo_models.sh` runs it (it trains every run, then `scripts/evaluate_demo_models.py`
  scores them, exports and profiles the LEWEL runs and ships the chosen ones, and
  `scripts/write_demo_model_cards.py` writes this card).
- **Hardware and time**: this project's CPU machine (2 cores, no GPU, one torch thread per run, up to seven
  runs sharing the cores): {training} s ({minutes(training)}) of training between its first and last logged
  steps, of which {monitor_seconds:.0f} s were the {len(passes)} map monitor passes.
- **Chosen by**: {chosen_by}.{other_lines}

## Where its maps look (`models/{name}.profile.json`)

Every map index is scored by the AUROC of its cells, object against background, on {s['calibration_images']} calibration
scenes; the {len(s['object_maps'])} best indices are its object maps ({', '.join(map(str, s['object_maps']))}). Their AUROC and
pointing rate are measured on {s['heldout_images']} other, held-out scenes at 224 px (7×7 maps), next to {family_text}, each
scored the same way (its own object maps chosen on the same calibration scenes):

| | object maps AUROC, held-out | object maps pointing (%) | chance (%) |
|---|---|---|---|
| this model | **{s['object_auroc']:.3f}** ± {s['object_auroc_se']:.3f} | {100 * s['object_pointing']:.1f} | {100 * s['pointing_chance']:.1f} |
| best random control ({control.get('scheme', 'torchvision')} init, seed {control.get('seed', 0)}) | {control['object_auroc']:.3f} ± {control['object_auroc_se']:.3f} | {100 * control['object_pointing']:.1f} | {100 * s['pointing_chance']:.1f} |
{scheme_rows}
Paired difference from the best control {s['difference']['object_auroc']:+.3f} (95 % interval {s['difference']['ci95'][0]:+.3f} to
{s['difference']['ci95'][1]:+.3f}); the controls' spread asks for more than {allowance} (random bound {bound}):
**{s['verdict']}** (docs/maps.md, "The verdict"). Reproduce: `lewel profile --checkpoint models/{name}.safetensors`.

{patterns_paragraph(s)}

**While it trained** (the map monitor, `--maps-every 128`: 64 + 64 validation-side scenes at 224 px, the
object maps chosen on the first half, scored on the second; step 0 is the random initialisation):
{trajectory or '(no monitor passes recorded)'}.

## Other scores

kNN top-1 {entry['knn_top1']:.1f} % (a random ResNet-18: {results['random_init']['knn_top1']:.1f} %): k = 20, cosine,
T = 0.07, bank = the {config['data'].split(':')[1]} training scenes, queries = {config['val_data'].split(':')[1]} validation scenes,
label = category of the largest object, resized to {results['size']}/0.875 px and centre-cropped to {results['size']} (`lewel train`'s kNN monitor at the last step). The comparison with its baseline and
the other runs is in `docs/demo_models.md`; definitions in `docs/maps.md`.
"""


def benchmarks_section(name: str) -> str:
    """The model's profiles on the other benchmarks (docs/benchmark_profiles.json), as a card section."""
    path = ROOT / "docs" / "benchmark_profiles.json"
    rows = [p for p in json.loads(path.read_text())["profiles"] if p["model"] == name] if path.exists() else []
    if not rows:
        return ""
    lines = "".join(
        f"| {p['benchmark']} | {p['heldout_images']} | **{p['object_auroc']:.3f}** ± {p['object_auroc_se']:.3f} | "
        f"{p['best_control']:.3f} ({p['best_control_name']}; bound {p['random_bound']:.3f}) | {p['difference']:+.3f} "
        f"({p['ci95'][0]:+.3f} to {p['ci95'][1]:+.3f}; needs more than {p['spread_allowance']:.3f}) | **{p['verdict']}** |\n"
        for p in rows
    )
    return (
        "\n## On photographs (docs/maps.md, \"Scenes on photographs\")\n\n"
        "The same profile on the `textured` benchmark (the scenes' objects on scikit-image photographs, calibration and "
        "held-out backdrops that no training saw) and on an independent COCO set of objects on photographs written "
        "without lewel's generator (`benchmarks/photo_objects_coco.py`, 512 images split alternately); commands in "
        "`docs/benchmark_profiles.json`:\n\n"
        "| data | held-out images | object maps AUROC | best of 15 random controls | difference, 95 % | verdict |\n"
        "|---|---|---|---|---|---|\n" + lines
    )


def replace_between(text: str, start: str, end: str, body: str) -> str:
    before, rest = text.split(start, 1)
    return before + start + "\n" + body + "\n" + end + rest.split(end, 1)[1]


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    results = json.loads((ROOT / "docs" / "demo_models.json").read_text())
    for name in results["shipped"]:
        (ROOT / "models" / f"{name}.md").write_text(card(name, results) + benchmarks_section(name))
    measured = table(results)
    patterns = patterns_table(results)
    for page in (ROOT / "docs" / "maps.md", ROOT / "README.md"):
        page.write_text(replace_between(page.read_text(), PATTERNS_START, PATTERNS_END, patterns))
    for page in (ROOT / "docs" / "demo_models.md", ROOT / "README.md"):
        text = replace_between(page.read_text(), START, END, measured)
        sweep = ROOT / "docs" / "lewel_b_sweep.json"
        if SWEEP_START in text and sweep.exists():
            text = replace_between(text, SWEEP_START, SWEEP_END, sweep_table(json.loads(sweep.read_text())["runs"]))
        page.write_text(text)
    print(measured)


if __name__ == "__main__":
    main()
