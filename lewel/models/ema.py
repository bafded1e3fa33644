"""Exponential moving averages of a network: BYOL / MoCo's parameter EMA, and EMAN's whole-state EMA."""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def ema_update_(online: nn.Module, target: nn.Module, momentum: float, *, whole_state: bool = False) -> None:
    """``target <- momentum·target + (1 - momentum)·online``, in place.

    ``whole_state=False`` (BYOL, MoCo): parameters only; the target's BatchNorm keeps its own statistics.
    ``whole_state=True`` (EMAN): every floating-point entry of the state dict, BatchNorm running statistics
    included, is averaged and integer buffers (``num_batches_tracked``) are copied.
    """
    if whole_state:
        online_state, target_state = online.state_dict(), target.state_dict()
        floats = [k for k, v in target_state.items() if v.is_floating_point()]
        torch._foreach_lerp_([target_state[k] for k in floats], [online_state[k] for k in floats], 1.0 - momentum)
        for key, value in target_state.items():
            if not value.is_floating_point():
                value.copy_(online_state[key])
    else:
        torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1.0 - momentum)


def make_target(online: nn.Module) -> nn.Module:
    """A frozen copy of ``online`` to serve as the target / key network."""
    target = copy.deepcopy(online)
    for parameter in target.parameters():
        parameter.requires_grad_(False)
    return target
