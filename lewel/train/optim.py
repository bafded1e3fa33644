"""Optimisers: LARS as the LEWEL authors' training code runs it (BYOL / LEWEL_B), with the authors' choice,
by parameter name, of the tensors that get no weight decay and no trust-ratio adaptation, and SGD (MoCo v2 /
LEWEL_M)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

#: A parameter whose name contains one of these is excluded from weight decay and adaptation (the authors' rule).
EXCLUDED_NAME_PARTS: tuple[str, ...] = ("bn", "downsample.1", "bias")
#: The heads' and predictors' BatchNorm weights (``...mlp.1.weight``): excluded too, but only in EMAN runs.
HEAD_NORM_NAME_PART = "mlp.1"
#: ``parameter_groups`` rules: ``authors`` (by name, as the authors' code) or ``norm_bias`` (every 1-D tensor).
EXCLUSION_RULES: tuple[str, ...] = ("authors", "norm_bias")
#: Written into ``LARS.state_dict()``; a state without it comes from the earlier update rule.
LARS_RULE = "lr-in-momentum/v1"


class LARS(torch.optim.Optimizer):
    """SGD with momentum and a layer-wise trust ratio (You et al., 2017) in the form of the LEWEL authors' code.

    For a parameter w with gradient g in a group with learning rate lr and weight decay wd:
    ``local_lr = eta·|w| / (|g| + wd·|w|)`` when the group has ``lars=True`` (1 when ``|w|`` or ``|g|`` is 0,
    and for groups with ``lars=False``), ``u = (g + wd·w)·lr·local_lr``, ``buf = momentum·buf + u`` (``buf = u``
    on the first step), ``w -= buf``. The learning rate is inside the momentum buffer, so a change of lr
    reaches the update gradually. Written here because neither torch nor torchvision ships LARS.
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
            weight_decay, lr = group["weight_decay"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                scale = torch.full((), lr, dtype=p.dtype, device=p.device)
                if group["lars"]:
                    weight_norm, grad_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(grad)
                    trust = group["eta"] * weight_norm / (grad_norm + weight_decay * weight_norm)
                    scale = scale * torch.where((weight_norm > 0) & (grad_norm > 0), trust, torch.ones_like(trust))
                update = grad.add(p, alpha=weight_decay) if weight_decay else grad.clone()
                update.mul_(scale)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = update
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(update)
                p.sub_(state["momentum_buffer"])
        return loss

    def state_dict(self) -> dict[str, Any]:
        """torch's optimizer state, marked with ``LARS_RULE``."""
        return {**super().state_dict(), "rule": LARS_RULE}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state written by this update rule; an older one (learning rate outside the momentum buffer,
        trust ratio on ``|g + wd·w|``, all 1-D tensors excluded) is refused, since its buffers mean otherwise."""
        if state_dict.get("rule") != LARS_RULE:
            raise ValueError(
                "this LARS state was written by an earlier version of lewel, whose update kept the learning rate "
                "outside the momentum buffer; it cannot continue with the authors' update. Start the run again "
                "(or finish it with the version that began it)"
            )
        super().load_state_dict({key: value for key, value in state_dict.items() if key != "rule"})


def excluded_by_name(name: str, *, head_norm: bool) -> bool:
    """The authors' rule: ``name`` gets no weight decay and no adaptation when it contains ``bn``,
    ``downsample.1`` or ``bias``, or (``head_norm``, the EMAN runs) ``mlp.1``."""
    parts = EXCLUDED_NAME_PARTS + ((HEAD_NORM_NAME_PART,) if head_norm else ())
    return any(part in name for part in parts)


def parameter_groups(model: nn.Module, weight_decay: float, *, rule: str = "authors", eman: bool = False) -> list[dict]:
    """Two groups of the trainable parameters: decayed and adapted, then excluded (no decay, no adaptation).

    ``rule="authors"``: by name (``excluded_by_name``), the heads' BatchNorm weights excluded only when
    ``eman``; ``rule="norm_bias"``: every tensor with ``ndim <= 1`` (all BatchNorm and bias tensors) excluded.
    """
    if rule not in EXCLUSION_RULES:
        raise ValueError(f"unknown exclusion rule {rule!r}; choose one of {list(EXCLUSION_RULES)}")
    decayed, excluded = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        out = excluded_by_name(name, head_norm=eman) if rule == "authors" else parameter.ndim <= 1
        (excluded if out else decayed).append(parameter)
    return [
        {"params": decayed, "weight_decay": weight_decay, "lars": True},
        {"params": excluded, "weight_decay": 0.0, "lars": False},
    ]


def build_optimizer(
    model: nn.Module,
    name: str,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    *,
    exclude: str = "authors",
    eman: bool | None = None,
) -> torch.optim.Optimizer:
    """``lars`` over ``parameter_groups(model, rule=exclude, eman=eman)`` (``eman`` defaults to the model's
    own ``eman`` attribute), or ``sgd`` with weight decay on every trainable parameter (MoCo v2's recipe).
    ``lr`` is the absolute peak learning rate."""
    if name == "lars":
        eman = bool(getattr(model, "eman", False)) if eman is None else eman
        return LARS(parameter_groups(model, weight_decay, rule=exclude, eman=eman), lr=lr, momentum=momentum)
    if name == "sgd":
        trainable = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.SGD(trainable, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose 'lars' or 'sgd'")
