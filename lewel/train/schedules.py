"""Schedules as pure functions of the training position."""

from __future__ import annotations

import math


def cosine_momentum(base_momentum: float, step: int, total_steps: int) -> float:
    """BYOL's target momentum at ``step`` of ``total_steps``: ``1 - (1 - m0)·(cos(π·t/T) + 1)/2``.

    It rises from ``base_momentum`` at step 0 to 1.0 at the last step.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    progress = min(max(step / total_steps, 0.0), 1.0)
    return 1.0 - (1.0 - base_momentum) * (math.cos(math.pi * progress) + 1.0) / 2.0


def warmup_cosine_lr(base_lr: float, step: int, steps_per_epoch: int, warmup_epochs: float, epochs: int) -> float:
    """Learning rate at global ``step``: linear warm-up per iteration over ``warmup_epochs``, then a cosine
    decay to 0 stepped per epoch (the authors' recipe; ``warmup_epochs=0`` gives MoCo v2's cosine)."""
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    epoch = step // steps_per_epoch
    decay_epochs = max(epochs - warmup_epochs, 1e-8)
    progress = min(max((epoch - warmup_epochs) / decay_epochs, 0.0), 1.0)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
