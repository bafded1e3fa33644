"""Random networks of a model's shape, and the verdict that a model's maps beat all of them.

A random network is not one network: on our scenes the object maps of untrained ResNet-18 LEWEL heads score
held-out AUROCs from about 0.65 to 0.81 depending on the seed and, above all, on the initialisation scheme
(low-level cues such as colour and edges against smooth backgrounds let some of them rank object cells above
background). A profile therefore compares a model with a *family* of controls: ``CONTROL_SEEDS`` seeds of each
scheme in ``INIT_SCHEMES``, each through the same selection, and ``verdict`` calls a model ``localises`` only
when it beats the best of them by a margin that covers both the images' noise and the controls' spread
(docs/maps.md, "The verdict").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from scipy import stats
from torch import nn

from ..inference import LewelModel, MapsUnavailableError
from ..models import build_head
from ..models.backbones import build_backbone

#: how the backbone of a checkpoint of a given shape may plausibly have been initialised (the head is PyTorch's
#: default in every scheme, as ``build_head`` and the authors' code build it):
#: ``torchvision``: torchvision's ResNet init (Kaiming-normal fan-out convolutions);
#: ``pytorch``: every layer's own ``reset_parameters`` (Kaiming-uniform a = √5), as a plain ``nn.Module`` gets;
#: ``trunc_normal``: ``trunc_normal_(std=0.02)`` on every convolution, zero biases (timm's and ConvNeXt's
#: scheme), the highest-scoring of the schemes tried (docs/maps.md lists them and their scores).
INIT_SCHEMES = ("torchvision", "pytorch", "trunc_normal")
CONTROL_SEEDS = 5  #: seeds 0 .. 4 of each scheme
TRUNC_STD = 0.02
PREDICTION_LEVEL = 0.975  #: one-sided level of each scheme's prediction bound (a 95 % two-sided interval's top)
Z_95 = 1.959964  #: two-sided 95 % normal quantile for the paired difference's interval


def initialise(module: nn.Module, scheme: str) -> None:
    """Re-draw ``module``'s weights in place by ``scheme`` (one of ``INIT_SCHEMES``) from torch's global
    generator. BatchNorm layers go back to identity (weight 1, bias 0, running mean 0 and variance 1)."""
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown initialisation scheme {scheme!r}; choose from {list(INIT_SCHEMES)}")
    if scheme == "torchvision":
        return  # what build_backbone / build_head already drew
    for layer in module.modules():
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            if scheme == "pytorch":
                layer.reset_parameters()
            else:
                nn.init.trunc_normal_(layer.weight, std=TRUNC_STD)  # timm's call: cut at ±2 absolute, ±100 σ
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.reset_parameters()


def random_like(model: LewelModel, seed: int = 0, scheme: str = "torchvision") -> LewelModel:
    """A randomly initialised network of ``model``'s shape (torch seed ``seed``; the backbone drawn by
    ``scheme``, the head by PyTorch's default), in eval mode on the same device, float32. torch's global
    generator is left as it was."""
    if model.config is None:
        raise MapsUnavailableError(f"{model.source or 'this model'} has no head to rebuild a control from")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = build_backbone(model.backbone_name)
        neck = build_head(model.config, backbone.out_channels)
        initialise(backbone, scheme)
    device = next(model.parameters()).device
    source = f"random {model.backbone_name} ({scheme} init, seed {seed})"
    return LewelModel(backbone, neck, config=model.config, source=source).to(device).float()


def control_family(schemes: Sequence[str] = INIT_SCHEMES, seeds: int = CONTROL_SEEDS) -> list[tuple[str, int]]:
    """``(scheme, seed)`` of every control: seeds ``0 .. seeds-1`` of each scheme."""
    if seeds < 1:
        raise ValueError(f"a control family needs at least 1 seed per scheme, got {seeds}")
    if not schemes:
        raise ValueError("a control family needs at least one initialisation scheme")
    for scheme in schemes:
        if scheme not in INIT_SCHEMES:
            raise ValueError(f"unknown initialisation scheme {scheme!r}; choose from {list(INIT_SCHEMES)}")
    return [(scheme, seed) for scheme in dict.fromkeys(schemes) for seed in range(seeds)]


def prediction_bound(scores: Sequence[float]) -> float:
    """The upper end of a two-sided 95 % prediction interval for one more control of the same scheme,
    ``mean + t(0.975, n-1) · sd · √(1 + 1/n)`` from its ``n`` controls' scores (the score itself when n = 1)."""
    values = torch.tensor(list(scores), dtype=torch.float64)
    n = values.numel()
    if n == 0:
        raise ValueError("a prediction bound needs at least one score")
    if n == 1:
        return float(values[0])
    quantile = float(stats.t.ppf(PREDICTION_LEVEL, n - 1))
    return float(values.mean() + quantile * values.std(unbiased=True) * math.sqrt(1 + 1 / n))


def mean_se(values: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of the mean of ``values`` (NaN error for a single value)."""
    n = values.numel()
    return float(values.mean()), float(values.std(unbiased=True) / math.sqrt(n)) if n > 1 else math.nan


def verdict(
    model_heldout: torch.Tensor, controls: Sequence[dict[str, Any]], control_heldout: Sequence[torch.Tensor]
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Compare a model with its control family on the same held-out images.

    ``model_heldout``: per held-out image (N, float64), the mean AUROC of the model's object maps;
    ``controls``: one summary per control (``scheme``, ``seed``, ``object_auroc`` ...); ``control_heldout``:
    the same per-image values of each control's own object maps. Returns ``(controls_record, difference,
    verdict)``: the family's scores, spread, best member and random bound ``B`` (the highest of the best
    score and every scheme's ``prediction_bound``); the paired difference from the best control (mean and
    95 % interval over images) with ``spread_allowance = B - best``; and ``localises`` only when the
    interval's lower end exceeds the allowance, else ``not better than random``.
    """
    if len(controls) != len(control_heldout) or not controls:
        raise ValueError("every control needs its per-image scores, and a verdict needs at least one control")
    scores = [float(c["object_auroc"]) for c in controls]
    best = max(range(len(controls)), key=lambda k: (scores[k], -k))
    by_scheme: dict[str, dict[str, Any]] = {}
    for scheme in dict.fromkeys(c["scheme"] for c in controls):
        own = [s for s, c in zip(scores, controls) if c["scheme"] == scheme]
        spread = float(torch.tensor(own, dtype=torch.float64).std(unbiased=True)) if len(own) > 1 else math.nan
        by_scheme[scheme] = {
            "controls": len(own), "mean": sum(own) / len(own), "sd": spread, "max": max(own), "bound": prediction_bound(own),
        }
    bound = max([scores[best]] + [s["bound"] for s in by_scheme.values()])
    paired = model_heldout - control_heldout[best]
    mean, se = mean_se(paired)
    low, high = (mean - Z_95 * se, mean + Z_95 * se) if not math.isnan(se) else (math.nan, math.nan)
    allowance = bound - scores[best]
    record = {
        "count": len(controls),
        "schemes": list(by_scheme),
        "seeds": sorted({int(c["seed"]) for c in controls}),
        "each": list(controls),
        "by_scheme": by_scheme,
        "spread_sd": float(torch.tensor(scores, dtype=torch.float64).std(unbiased=True)) if len(scores) > 1 else math.nan,
        "best": {"scheme": controls[best]["scheme"], "seed": controls[best]["seed"], "object_auroc": scores[best]},
        "random_bound": bound,
    }
    difference = {
        "object_auroc": mean,
        "ci95": [low, high],
        "against": f"best control ({controls[best]['scheme']} init, seed {controls[best]['seed']})",
        "spread_allowance": allowance,
        "margin": low - allowance,
    }
    return record, difference, "localises" if low - allowance > 0 else "not better than random"
