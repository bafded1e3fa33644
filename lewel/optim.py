"""Optimisers: LARS (BYOL / LEWEL_B), with BatchNorm and bias parameters excluded from weight decay and
from the trust-ratio adaptation, and SGD (MoCo v2 / LEWEL_M)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratio (You et al., 2017), as BYOL uses it.

    For a parameter p of a group with ``lars=True``: ``u = g + wd·p``, ``u <- u · eta·|p|/|u|`` (when both
    norms are non-zero), ``buf <- momentum·buf + u``, ``p <- p - lr·buf``. Groups with ``lars=False`` skip the
    adaptation (and are given no weight decay by ``parameter_groups``). Written here because neither
    torch nor torchvision ships LARS, and the small third-party packages are unmaintained.
    """

    def __init__(
        self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 0.001
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, eta=eta, lars=True)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                update = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad.clone()
                if group["lars"]:
                    param_norm, update_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(update)
                    trust = torch.where(
                        (param_norm > 0) & (update_norm > 0), group["eta"] * param_norm / update_norm, torch.ones_like(param_norm)
                    )
                    update.mul_(trust)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = update.clone()
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(update)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups of the trainable parameters: weights (decayed, adapted) and BatchNorm/bias vectors
    (``ndim <= 1``: no decay, no LARS adaptation)."""
    decayed, excluded = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (excluded if parameter.ndim <= 1 else decayed).append(parameter)
    return [
        {"params": decayed, "weight_decay": weight_decay, "lars": True},
        {"params": excluded, "weight_decay": 0.0, "lars": False},
    ]


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float, momentum: float = 0.9) -> torch.optim.Optimizer:
    """``lars`` over ``parameter_groups(model)`` (BYOL), or ``sgd`` with weight decay on every trainable
    parameter (MoCo v2's recipe). ``lr`` is the absolute peak learning rate."""
    if name == "lars":
        return LARS(parameter_groups(model, weight_decay), lr=lr, momentum=momentum)
    if name == "sgd":
        trainable = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose 'lars' or 'sgd'")
