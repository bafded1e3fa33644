"""MoCo's dictionary: a ring buffer of normalised keys kept as module buffers (so it is checkpointed)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather_all


class KeyQueue(nn.Module):
    """``size`` keys of ``dim`` numbers, stored as ``keys`` (``size×dim``) and a write pointer.

    ``push`` gathers the keys of all processes (so every rank holds the same queue) and overwrites the
    oldest entries, wrapping around; the global batch need not divide the queue size.
    """

    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"queue size must be positive, got {size}")
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Enqueue ``N×dim`` keys (normalised here) from this process and, when distributed, all others."""
        keys = F.normalize(gather_all(keys.detach()).to(self.keys.dtype), dim=1)
        size = self.keys.shape[0]
        keys = keys[-size:]
        slots = (self.pointer + torch.arange(keys.shape[0], device=keys.device)) % size
        self.keys[slots] = keys
        self.pointer.copy_((self.pointer + keys.shape[0]) % size)
