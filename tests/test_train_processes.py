"""Training as separate processes: a 2-process torchrun (gloo) run, and a run killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from image_factory import make_image_folder
from lewel import load_model
from lewel.files.checkpoints import safe_load

BIN = Path(sys.executable).parent
TINY = ["--backbone", "resnet18", "--hidden-dim", "64", "--dim", "32", "--image-size", "32", "--workers", "0"]


def environment() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def test_torchrun_two_processes_on_cpu(tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=8)
    out = tmp_path / "run"
    command = [
        str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "lewel.cli", "train",
        "--method", "lewel_m", *TINY, "--queue-size", "64", "--aligned-queue-size", "256",
        "--data", str(data), "--batch-size", "8", "--epochs", "1", "--out", str(out), "--log-every", "1",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=environment(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in out.glob("*.pt")) == ["epoch_0001.pt", "last.pt"]
    assert os.path.samefile(out / "epoch_0001.pt", out / "last.pt")  # one checkpoint, two names
    state = safe_load(out / "last.pt")
    assert state["step"] == 2  # 16 images / global batch 8
    # both processes' keys went into the queues: 2 steps x 8 images (x 8 aligned keys per image)
    assert state["state_dict"]["queue.pointer"].item() == 16
    assert state["state_dict"]["aligned_queue.pointer"].item() == 2 * 8 * 8 % 256
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]  # written by rank 0 only
    assert load_model(out / "last.pt").has_maps


def run_train(out: Path, data: Path, *extra: str, workers: str = "0") -> subprocess.Popen:
    command = [
        str(BIN / "lewel"), "train", "--method", "lewel_b_eman", *TINY[:-2], "--workers", workers,
        "--data", str(data), "--batch-size", "8", "--epochs", "3", "--out", str(out), "--log-every", "1",
        "--warmup-epochs", "1", "--save-every", "1", *extra,
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment())


def logged_steps(out: Path) -> int:
    path = out / "metrics.jsonl"
    if not path.exists():
        return 0
    return max((json.loads(line).get("step", 0) for line in path.read_text().splitlines() if line.strip()), default=0)


def test_killed_and_resumed_run_ends_with_the_same_weights(tmp_path):
    data = make_image_folder(tmp_path / "data", per_class=12)  # 24 images: 3 steps per epoch, 9 in all
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    process = run_train(reference, data)
    assert process.wait(timeout=300) == 0, process.stderr.read()[-3000:]

    process = run_train(interrupted, data, "--save-every-steps", "1", workers="2")
    deadline = time.time() + 300
    while logged_steps(interrupted) < 5 and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = safe_load(interrupted / "last.pt")["step"]
    assert 3 <= killed_at < 9  # killed in the second epoch; last.pt lags the log by at most one step

    process = run_train(interrupted, data, "--resume", "auto")
    assert process.wait(timeout=300) == 0, process.stderr.read()[-3000:]
    expected = safe_load(reference / "epoch_0003.pt")
    resumed = safe_load(interrupted / "epoch_0003.pt")
    assert resumed["step"] == expected["step"] == 9
    for key, value in expected["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, atol=1e-6, rtol=0, msg=key)
