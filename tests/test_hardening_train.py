"""Training runs that crash, fill the disk, meet unreadable data or are short (issue 15, items 1, 5, 8, 9)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from image_factory import make_image_folder

import lewel.files.checkpoints as checkpoints
from lewel.data.folders import DataError
from lewel.files.checkpoints import CheckpointError, atomic_save, remove_stale_temporaries
from lewel.train.config import TrainConfig
from lewel.train.loop import TrainingWarning, loader_workers, train, usable_cpus

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return make_image_folder(tmp_path_factory.mktemp("data") / "train", per_class=8)


def tiny_run(data: Path, out: Path, **overrides) -> TrainConfig:
    settings = dict(
        data=str(data), out=str(out), image_size=32, batch_size=8, epochs=1, workers=0, warmup_epochs=0.0,
    )
    settings.update(overrides)
    return TrainConfig.for_method("lewel_b", model=tiny_config("lewel_b"), **settings)


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.endswith(".link"))


def test_a_kill_during_a_checkpoint_write_then_resume_leaves_no_temporary(tmp_path, images):
    out = tmp_path / "run"
    train(tiny_run(images, out))
    writer = (
        "import sys, time\n"
        "from lewel.files.checkpoints import atomic_write\n"
        "def slow(path):\n"
        "    path.write_bytes(b'half a checkpoint')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        "atomic_write(sys.argv[1], slow)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", writer, str(out / "last.pt")], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert process.stdout.readline().strip() == "writing"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(30)
    (out / ".last.pt.link").write_bytes(b"")  # the loop's hard link, as a kill between link and rename leaves it
    left = temporaries(out)
    assert any(name.startswith(".last.pt.") and name.endswith(".tmp") for name in left), left
    with pytest.warns(TrainingWarning, match="removed 2 temporary file"):
        summary = train(tiny_run(images, out, epochs=2, resume="auto"))
    assert summary["steps"] == 4 and temporaries(out) == []
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 4


def test_stale_temporaries_are_only_those_of_atomic_write(tmp_path):
    for name in (".last.pt.abcd1234.tmp", ".epoch_0001.pt.zz_9yy00.tmp", ".last.pt.link"):
        (tmp_path / name).write_bytes(b"x")
    for name in ("last.pt", "notes.tmp", ".hidden", ".last.pt.short.tmp"):
        (tmp_path / name).write_bytes(b"x")
    removed = sorted(p.name for p in remove_stale_temporaries(tmp_path))
    assert removed == [".epoch_0001.pt.zz_9yy00.tmp", ".last.pt.abcd1234.tmp", ".last.pt.link"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", ".last.pt.short.tmp", "last.pt", "notes.tmp"]


def test_a_full_disk_is_reported_as_such(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"

    def torch_write_failure(obj, path):
        Path(path).write_bytes(b"x" * 1000)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    class Nearly:
        f_bavail, f_frsize = 3, 4096

    monkeypatch.setattr(checkpoints.torch, "save", torch_write_failure)
    monkeypatch.setattr(checkpoints.os, "statvfs", lambda folder: Nearly())
    with pytest.raises(OSError) as error:
        atomic_save({"a": 1}, target)
    assert error.value.errno == errno.ENOSPC
    assert f"disk full while writing {target}" in str(error.value) and "inline_container" not in str(error.value)
    assert list(tmp_path.iterdir()) == []

    def python_write_failure(obj, path):
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed") from None

    monkeypatch.setattr(checkpoints.torch, "save", python_write_failure)
    monkeypatch.setattr(checkpoints.os, "statvfs", lambda folder: type("Plenty", (), {"f_bavail": 10**9, "f_frsize": 4096})())
    with pytest.raises(OSError, match="disk full while writing"):
        atomic_save({"a": 1}, target)

    def other_failure(obj, path):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")

    monkeypatch.setattr(checkpoints.torch, "save", other_failure)
    with pytest.raises(RuntimeError, match="inline_container"):  # plenty of space: not called a full disk
        atomic_save({"a": 1}, target)


@pytest.mark.skipif(not sys.platform.startswith("linux") or os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_really_full_disk(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(OSError, match=f"disk full while writing {mount / 'last.pt'}"):
            atomic_save({"weights": torch.zeros(1_000_000)}, mount / "last.pt")
        assert list(mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_resume_auto_falls_back_to_the_newest_readable_checkpoint(tmp_path, images):
    out = tmp_path / "run"
    train(tiny_run(images, out, epochs=2, save_every=1))
    assert (out / "epoch_0001.pt").is_file() and (out / "epoch_0002.pt").is_file()
    (out / "epoch_0002.pt").write_bytes((out / "epoch_0002.pt").read_bytes()[:3000])  # truncated
    (out / "last.pt").unlink()
    (out / "last.pt").write_bytes(b"")  # 0 bytes, as a crash can leave it
    with pytest.warns(TrainingWarning, match="empty \\(0 bytes\\).*continuing from .*epoch_0001.pt"):
        summary = train(tiny_run(images, out, epochs=3, save_every=1, resume="auto"))
    assert summary["steps"] == 6
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 4, 3, 6]  # first and last of each run; resumed at 2


def test_resume_errors_name_the_problem_and_the_fallback(tmp_path, images):
    out = tmp_path / "run"
    train(tiny_run(images, out))
    full = (out / "epoch_0001.pt").read_bytes()
    (out / "last.pt").unlink()
    (out / "last.pt").write_bytes(full[: len(full) // 2])
    with pytest.raises(CheckpointError) as error:
        train(tiny_run(images, out, epochs=2, resume=str(out / "last.pt")))
    message = str(error.value)
    assert "truncated or incomplete" in message and "epoch_0001.pt" in message and "--resume" in message
    (out / "epoch_0001.pt").write_bytes(os.urandom(4000))
    with pytest.raises(CheckpointError) as error:
        train(tiny_run(images, out, epochs=2, resume="auto"))
    assert "no readable epoch_XXXX.pt" in str(error.value) and "unpickled" not in str(error.value)


def test_unreadable_data_is_reported_plainly_and_each_file_once(tmp_path, images):
    bad = tmp_path / "bad"
    (bad / "a").mkdir(parents=True)
    for i in range(3):
        (bad / "a" / f"{i}.png").write_bytes(b"not an image")
    with pytest.raises(DataError) as error:
        train(tiny_run(bad, tmp_path / "out_bad", batch_size=2, workers=2))
    message = str(error.value)
    assert message.startswith("none of the 3 image files") and "Caught" not in message and "worker" not in message
    mixed = tmp_path / "mixed"
    for folder in images.iterdir():
        (mixed / folder.name).mkdir(parents=True)
        for file in folder.iterdir():
            (mixed / folder.name / file.name).write_bytes(file.read_bytes())
    (mixed / "class0" / "broken.png").write_bytes(b"\x89PNG broken")
    # in a process of its own: pytest records the warnings of this one, and its workers' would be lost
    script = (
        "import sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from conftest import tiny_config\n"
        "from lewel.train.config import TrainConfig\n"
        "from lewel.train.loop import train\n"
        "train(TrainConfig.for_method('lewel_b', model=tiny_config('lewel_b'), data=sys.argv[1], out=sys.argv[2],\n"
        "      image_size=32, batch_size=4, epochs=3, workers=2, warmup_epochs=0.0))\n"
    )
    run = subprocess.run(
        [sys.executable, "-W", "default", "-c", script, str(mixed), str(tmp_path / "out_mixed")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("skipping unreadable image") == 1 and "broken.png" in run.stderr, run.stderr


def test_short_runs_log_from_the_first_step_and_say_when_done(tmp_path, images, capfd):
    out = tmp_path / "short"
    val = make_image_folder(tmp_path / "val", per_class=2, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingWarning)
        summary = train(tiny_run(images, out, epochs=1, log_every=50, val_data=str(val)))
    assert summary["steps"] == 2
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2]  # fewer steps than log_every: still logged
    assert [r["step"] for r in records if "knn_top1" in r] == [2]  # --val-data without --knn-every: at the end
    assert any((out / "tensorboard").rglob("events.*"))
    captured = capfd.readouterr()
    assert "loss=" in captured.err and "lr=" in captured.err and "m=" in captured.err
    assert "lewel train: done: 2 steps (1 epochs)" in captured.out + captured.err and "epoch_0001.pt" in captured.out


def test_settings_that_are_probably_not_meant_are_warned_about(tmp_path, images, capfd):
    with pytest.warns(TrainingWarning) as caught:
        train(tiny_run(images, tmp_path / "w", epochs=1, warmup_epochs=10.0, workers=64))
    messages = [str(w.message) for w in caught]
    assert any("warmup_epochs=10 is not below epochs=1" in m and "--warmup-epochs" in m for m in messages)
    assert any(f"--workers 64 lowered to {usable_cpus()}" in m for m in messages)
    assert "Our suggested max number of worker" not in capfd.readouterr().err
    assert loader_workers(64) == usable_cpus() and loader_workers(0) == 0
    with pytest.raises(ValueError, match="fewer than one batch of 64: lower --batch-size"):
        train(tiny_run(images, tmp_path / "b", batch_size=64))


def test_resuming_a_finished_run_says_so_in_strict_json(tmp_path, images, capsys):
    out = tmp_path / "run"
    first = train(tiny_run(images, out))
    assert first["already_finished"] is False and isinstance(first["loss"], float)
    again = train(tiny_run(images, out, resume="auto"))
    assert again["already_finished"] is True and again["loss"] is None and again["steps"] == first["steps"]
    json.loads(json.dumps(again, allow_nan=False))
    assert "the run had already finished" in capsys.readouterr().out
