"""The scripts that score and document training runs (scripts/summarize_sweep.py, the sweep's screen choice),
on tiny runs of `lewel train`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import tiny_config
from lewel.data.scenes import STAMPS_DIR
from lewel.maps.profiles import build_profile, write_profile
from lewel.train.config import TrainConfig
from lewel.train.loop import train

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="scenes need tuxpaint-stamps-default")


def run_variant(out: Path, profile: bool, **overrides) -> None:
    settings = dict(data="scenes:16", val_data="scenes:8", out=str(out), image_size=32, batch_size=8, epochs=2,
                    workers=0, warmup_epochs=0.0, maps_every=2, maps_images=4, maps_size=96)
    settings.update(overrides)
    model = settings.pop("model", tiny_config("lewel_b_eman"))
    train(TrainConfig.for_method("lewel_b_eman", model=model, **settings))
    if profile:
        write_profile(build_profile(out / "last.pt", data="scenes:4", size=96, batch_size=4, control_seeds=1), out / "profile.json")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    run_variant(root / "lewel_b_base", profile=True)
    run_variant(root / "lewel_b_lr1.0", profile=False, lr=1.0, stop_after_steps=2)
    run_variant(root / "lewel_b_w0.25", profile=False, stop_after_steps=2, model=tiny_config("lewel_b_eman", loss_weight=0.25))
    return root


def summarize(*args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "summarize_sweep.py"), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_summary_lists_finished_and_screened_runs(sweep, tmp_path):
    out = tmp_path / "sweep.json"
    table = summarize(*(str(p) + "/" for p in sorted(sweep.iterdir())), "--out", str(out))
    records = {r["variant"]: r for r in json.loads(out.read_text())["runs"]}
    assert list(records) == ["base", "lr1.0", "w0.25"]  # the base first, the reference of "changed"
    assert records["base"]["changed"] == {} and records["base"]["profile"]["verdict"] in table
    assert records["lr1.0"]["changed"] == {"lr": 1.0, "stop_after_steps": 2} and records["lr1.0"]["profile"] is None
    assert records["w0.25"]["changed"] == {"model.loss_weight": 0.25, "stop_after_steps": 2}
    assert [m["step"] for m in records["base"]["monitor"]] == [0, 2, 4]
    assert "| lr1.0 | lr 1.0 | 2 of 4 (not finished) |" in table and "| base | – (the reference) | 4 |" in table


def test_the_screen_choice_is_the_best_monitor_score_and_never_the_base(sweep):
    scores = {}
    for run in sweep.iterdir():
        for line in (run / "metrics.jsonl").read_text().splitlines():
            record = json.loads(line)
            if record.get("step") == 2 and "maps" in record:
                scores[run.name.removeprefix("lewel_b_")] = record["maps"]["object_auroc"]
    chosen = summarize(*(str(p) + "/" for p in sorted(sweep.iterdir())), "--best-at", "2").strip()
    candidates = {k: v for k, v in scores.items() if k != "base"}
    assert chosen == max(candidates, key=candidates.get)
