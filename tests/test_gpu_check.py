"""benchmarks/gpu_check.py: its dry run (every step on the CPU at tiny sizes) works, and failures show."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def load_module():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gpu_check = load_module()


def run_check(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    env.pop("OUT", None)
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_dry_run_runs_every_step_and_writes_its_results(tmp_path):
    done = run_check("--dry-run", "--out", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["dry_run"] and list(report["steps"]) == list(gpu_check.STEPS)
    assert {name: entry["status"] for name, entry in report["steps"].items()} == dict.fromkeys(gpu_check.STEPS, "ok")
    steps = {name: entry["result"] for name, entry in report["steps"].items()}
    assert steps["pytest"]["tests"] > 0 and steps["pytest"]["skipped"] == steps["pytest"]["tests"]  # no GPU here
    overhead = steps["train_overhead"]
    assert set(overhead["ratios"]) == set(overhead["flop_ratios"]) == {"lewel_b_eman/byol", "lewel_m/mocov2"}
    assert overhead["backbone"] == "resnet18" and overhead["image_size"] == 32
    assert steps["extract"]["extract_images_per_s"] > 0 and steps["extract"]["extract_maps_shape"][1] == 256
    assert steps["maps_latency"]["served_on"] == "cpu" and steps["maps_latency"]["p50_s"] > 0
    assert steps["nccl"]["steps"] == 2 and steps["nccl"]["losses_finite"]
    train = steps["train"]
    assert train["steps"] == 2 and train["losses_finite"] and not train["stopped_at_time_limit"]
    assert train["checkpoint"]["method"] == "lewel_m"
    assert report["targets"] and all(t["met"] is None for t in report["targets"])  # a dry run measures nothing
    summary = (tmp_path / "gpu_check.txt").read_text()
    assert "DRY RUN" in summary and "not evaluated (dry run)" in summary and "failed steps: none" in summary
    files = sorted(p.name for p in tmp_path.iterdir())
    assert {"gpu_check.json", "gpu_check.txt", "gpu_check.log", "train_overhead.json", "pytest_cuda.xml"} <= set(files)
    assert len(files) <= 8 and all(re.fullmatch(r"[A-Za-z0-9._-]+", name) for name in files)
    assert all(p.is_file() for p in tmp_path.iterdir())  # no folders: every result comes back from $OUT


def test_a_failing_step_makes_the_exit_status_non_zero(tmp_path):
    done = run_check("--dry-run", "--only", "train", "--train-data", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert list(report["steps"]) == ["env", "train"] and report["failed_steps"] == ["train"]
    assert "lewel train exited with" in report["steps"]["train"]["error"]
    assert "[failed ] train" in (tmp_path / "out" / "gpu_check.txt").read_text()


def test_run_summary_counts_steps_losses_and_throughput():
    records = [{"step": 10, "time": 100.0, "loss": 5.0}, {"step": 30, "time": 110.0, "loss": 4.0}]
    summary = gpu_check.summarize_run(records, batch=256)
    assert summary["steps"] == 30 and summary["losses_finite"] and summary["last_loss"] == 4.0
    assert summary["steps_per_s"] == pytest.approx(2.0) and summary["images_per_s"] == pytest.approx(512.0)
    assert not gpu_check.summarize_run([*records, {"step": 40, "time": 111.0, "loss": math.nan}], batch=8)["losses_finite"]
    assert gpu_check.summarize_run([], batch=8) == {"logged_steps": 0}


@pytest.mark.parametrize(("dry_run", "value", "met"), [(True, 5000.0, None), (False, 5000.0, True), (False, 10.0, False)])
def test_targets_are_judged_only_on_a_gpu_run(tmp_path, dry_run, value, met):
    with (tmp_path / "log").open("w") as log:
        ctx = gpu_check.Context(dry_run, gpu_check.DRY, tmp_path, tmp_path, 1.0, None, log)
        ctx.target("images/s", value, 3000, at_least=True)
        ctx.target("ratio", 1.0, 1.03, at_least=False)
    assert [t["met"] for t in ctx.targets] == [met, None if dry_run else True]


def test_gpu_sizes_are_the_issue_s_resnet50_at_224_px():
    sizes = gpu_check.GPU
    assert (sizes.backbone, sizes.image_size, sizes.extract_size, sizes.maps_size, sizes.train_size) == ("resnet50", 224, 224, 224, 224)
    assert gpu_check.DRY.backbone == gpu_check.DRY.train_backbone == "resnet18"


def test_a_run_past_its_time_is_interrupted_like_ctrl_c(tmp_path):
    sleeper = "import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print('interrupted')\n    raise SystemExit(3)"
    with (tmp_path / "log").open("w") as log:
        ctx = gpu_check.Context(True, gpu_check.DRY, tmp_path, tmp_path, 1.0, None, log)
        assert gpu_check.run_for(ctx, [sys.executable, "-c", "pass"], seconds=60, name="quick") == (0, False)
        assert gpu_check.run_for(ctx, [sys.executable, "-c", sleeper], seconds=2, name="sleeper") == (3, True)
    assert "interrupted" in (tmp_path / "log").read_text()
