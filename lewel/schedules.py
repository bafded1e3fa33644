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
