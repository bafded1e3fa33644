"""Pure loss functions. No modules, no state: tensors in, a scalar tensor out."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalized_mse(prediction: torch.Tensor, target: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """BYOL's regression loss ``2 - 2·cos(prediction, target)`` along ``dim``, averaged over all other axes.

    For ``B×d`` inputs it averages over the batch; for ``B×d×n`` aligned embeddings over all B·n pairs.
    """
    cosine = F.cosine_similarity(prediction.float(), target.float(), dim=dim, eps=1e-12)
    return (2.0 - 2.0 * cosine).mean()


def info_nce(
    query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor, temperature: float
) -> torch.Tensor:
    """MoCo's InfoNCE: ``query`` and ``positive`` are ``N×c``, ``negatives`` is ``K×c``.

    All are L2-normalised here. Each query's logits are its positive followed by the K negatives, divided
    by ``temperature``; the loss is the cross-entropy with the positive as the class, averaged over N.
    """
    query = F.normalize(query.float(), dim=1)
    positive = F.normalize(positive.float(), dim=1)
    negatives = F.normalize(negatives.float(), dim=1)
    logits = torch.cat([(query * positive).sum(dim=1, keepdim=True), query @ negatives.T], dim=1)
    labels = torch.zeros(query.shape[0], dtype=torch.long, device=query.device)
    return F.cross_entropy(logits / temperature, labels)


def in_batch_info_nce(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE where query i's positive is key i and its negatives are all other keys (``N×c`` each)."""
    query = F.normalize(query.float(), dim=1)
    keys = F.normalize(keys.float(), dim=1)
    labels = torch.arange(query.shape[0], device=query.device)
    return F.cross_entropy(query @ keys.T / temperature, labels)


def weighted_sum(global_loss: torch.Tensor, aligned_loss: torch.Tensor, weight: float) -> torch.Tensor:
    """LEWEL's combination ``w·L_global + (1 - w)·L_aligned``."""
    return weight * global_loss + (1.0 - weight) * aligned_loss
