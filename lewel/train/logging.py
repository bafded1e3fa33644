"""Run monitoring on the main process: tqdm progress bar, TensorBoard scalars and a JSON-lines metrics file."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from ..models import StepOutput


def png_to_array(png: bytes) -> np.ndarray:
    """PNG bytes -> ``H×W×3`` uint8 (what ``SummaryWriter.add_image`` takes with ``dataformats="HWC"``)."""
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


class MetricsLogger:
    """Writes ``OUT/metrics.jsonl`` and ``OUT/tensorboard/``; does nothing when ``enabled`` is False (rank > 0)."""

    def __init__(self, out: Path, *, enabled: bool, total: int, initial: int = 0) -> None:
        self.enabled = enabled
        if not enabled:
            return
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.file = (out / "metrics.jsonl").open("a")
        self.writer = SummaryWriter(str(out / "tensorboard"))
        self.bar = tqdm(total=total, initial=initial, desc="lewel train", unit="step", dynamic_ncols=True)

    def _write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def step(self, step: int, epoch: int, output: StepOutput, *, lr: float, momentum: float, log: bool) -> None:
        """Advance the bar and show loss, lr and momentum every step; record the scalars when ``log`` is True."""
        if not self.enabled:
            return
        loss = output.loss.item()
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", m=f"{momentum:.4f}", refresh=False)
        self.bar.update(1)
        if not log:
            return
        values = {"loss": loss, "loss_global": output.loss_global.item(), "lr": lr, "momentum": momentum}
        if output.loss_aligned is not None:
            values["loss_aligned"] = output.loss_aligned.item()
        for name, value in values.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        self._write({"step": step, "epoch": epoch, "time": time.time(), **values})

    def scalar(self, name: str, value: float, step: int, **extra: Any) -> None:
        if not self.enabled:
            return
        self.writer.add_scalar(f"eval/{name}", value, step)
        self.bar.write(f"step {step}: {name} = {value:.2f}")
        self._write({"step": step, name: value, "time": time.time(), **extra})

    def maps(self, step: int, epoch: float, scores: dict[str, Any], png: bytes) -> None:
        """Record a map monitor pass (``lewel.train.monitor``): its scalars under ``maps/`` in TensorBoard,
        a ``maps`` record in metrics.jsonl, and the probe grid as a TensorBoard image and as
        ``OUT/maps/step_XXXXXXX.png``."""
        if not self.enabled:
            return
        for name, value in scores.items():
            if isinstance(value, float):
                self.writer.add_scalar(f"maps/{name}", value, step)
        self.writer.add_image("maps/probes", png_to_array(png), step, dataformats="HWC")
        self.writer.flush()
        folder = self.out / "maps"
        folder.mkdir(exist_ok=True)
        (folder / f"step_{step:07d}.png").write_bytes(png)
        if "object_auroc" in scores:
            against = (
                f"; best of {scores['controls']} random networks {scores['best_control']['object_auroc']:.3f} "
                f"(bound {scores['random_bound']:.3f}): {scores['verdict']}"
                if "verdict" in scores
                else ""
            )
            self.bar.write(
                f"step {step}: object maps AUROC {scores['object_auroc']:.3f} (held-out), pointing "
                f"{scores['object_pointing']:.2f} (chance {scores['pointing_chance']:.2f}){against}"
            )
        self._write({"step": step, "epoch": epoch, "time": time.time(), "maps": scores})

    def finish(self, line: str) -> None:
        """Write the run's closing line under the bar, then close (see ``close``)."""
        if self.enabled and not self.file.closed:
            self.bar.refresh()
            self.bar.write(f"lewel train: {line}")
        self.close()

    def close(self) -> None:
        if not self.enabled or self.file.closed:
            return
        self.bar.close()
        self.writer.close()
        self.file.close()


STOP_GAP = 600.0  #: seconds: a longer interval between two logged steps is a stopped run, not training


def read_records(run: str | Path) -> list[dict[str, Any]]:
    """Every record of a run folder's ``metrics.jsonl`` (appended to across resumes), in file order."""
    path = Path(run) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def training_seconds(run: str | Path) -> float:
    """The seconds a run trained: the sum of the intervals between consecutive logged steps, leaving out
    intervals longer than ``STOP_GAP`` (stopped and resumed later) and the one before a resumed run's first
    step (its step number goes back)."""
    steps = [r for r in read_records(run) if "loss" in r]
    return sum(b["time"] - a["time"] for a, b in zip(steps, steps[1:]) if b["step"] > a["step"] and b["time"] - a["time"] < STOP_GAP)
