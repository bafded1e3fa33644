"""Weighted k-nearest-neighbour evaluation of a backbone (InstDisc's monitor: cosine similarity, the k
neighbours vote with weights exp(sim / T))."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data.folders import DataError
from .data import Transformed


@torch.no_grad()
def embed(
    backbone: nn.Module,
    source: Dataset,
    transform: Callable[[Any], torch.Tensor],
    *,
    batch_size: int = 256,
    workers: int = 0,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised pooled backbone features ``N×D`` and labels ``N`` of every item of ``source``."""
    was_training = backbone.training
    backbone.eval()
    loader = DataLoader(Transformed(source, transform), batch_size=batch_size, num_workers=workers)
    features, labels = [], []
    for images, targets in loader:
        maps = backbone(images.to(device))
        features.append(F.normalize(maps.float().mean(dim=(2, 3)), dim=1).cpu())
        labels.append(targets)
    backbone.train(was_training)
    return torch.cat(features), torch.cat(labels)


def shared_classes(*sources: Dataset) -> list[str]:
    """The sorted union of the sources' class names: two ImageFolder splits need not hold the same classes
    (a small validation split may miss some), so their label numbers are matched by name."""
    return sorted({name for source in sources for name in getattr(source, "classes", ())})


def relabel(labels: torch.Tensor, source: Dataset, classes: list[str]) -> torch.Tensor:
    """Map ``source``'s label numbers to indices into ``classes`` (unchanged when it names no classes)."""
    names = getattr(source, "classes", None)
    if not names or not classes:
        return labels
    return torch.tensor([classes.index(name) for name in names])[labels]


def weighted_knn_predict(
    bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, *, k: int = 20, temperature: float = 0.07,
    num_classes: int | None = None, chunk: int = 1024,
) -> torch.Tensor:
    """Class predicted for each query (``Q×D``) by its k most cosine-similar bank entries (``N×D``)."""
    num_classes = num_classes or int(bank_labels.max()) + 1
    k = min(k, bank.shape[0])
    predictions = []
    for start in range(0, queries.shape[0], chunk):
        similarity = queries[start : start + chunk] @ bank.T
        top, index = similarity.topk(k, dim=1)
        votes = torch.zeros(top.shape[0], num_classes)
        votes.scatter_add_(1, bank_labels[index], (top / temperature).exp())
        predictions.append(votes.argmax(dim=1))
    return torch.cat(predictions)


def knn_top1(
    backbone: nn.Module,
    train_source: Dataset,
    val_source: Dataset,
    *,
    transform: Callable[[Any], torch.Tensor],
    k: int = 20,
    temperature: float = 0.07,
    batch_size: int = 256,
    workers: int = 0,
    device: torch.device | str = "cpu",
) -> float:
    """kNN top-1 accuracy (%) of ``val_source`` against ``train_source`` as the bank; both labelled."""
    bank, bank_labels = embed(backbone, train_source, transform, batch_size=batch_size, workers=workers, device=device)
    queries, labels = embed(backbone, val_source, transform, batch_size=batch_size, workers=workers, device=device)
    if (bank_labels < 0).any() or (labels < 0).any():
        raise DataError("kNN evaluation needs labelled data (one sub-folder per class, or scenes)")
    classes = shared_classes(train_source, val_source)
    bank_labels, labels = relabel(bank_labels, train_source, classes), relabel(labels, val_source, classes)
    num_classes = len(classes) if classes else int(max(bank_labels.max(), labels.max())) + 1
    predicted = weighted_knn_predict(bank, bank_labels, queries, k=k, temperature=temperature, num_classes=num_classes)
    return 100.0 * (predicted == labels).float().mean().item()
