"""Linear evaluation: a linear classifier on the frozen, pooled backbone features (the authors' recipe by
default: SGD lr 0.4, momentum 0.9, batch 256, 50 epochs, lr x0.1 at epochs 30 and 40, no weight decay)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.folders import DataError
from ..views.augmentations import center_crop_transform, linear_train_transform
from .data import Transformed
from .knn import relabel, shared_classes


def _pooled(backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return backbone(images).float().mean(dim=(2, 3))


def linear_probe(
    backbone: nn.Module,
    train_source: Dataset,
    val_source: Dataset,
    *,
    image_size: int = 224,
    epochs: int = 50,
    batch_size: int = 256,
    lr: float = 0.4,
    milestones: Sequence[int] = (30, 40),
    weight_decay: float = 0.0,
    workers: int = 4,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``nn.Linear(D, classes)`` on augmented (crop + flip) training images through the frozen
    ``backbone`` (eval mode: BatchNorm statistics fixed); report top-1 (%) on centre-cropped ``val_source``.
    Both sources must name their ``classes``; labels are matched by name across the two splits."""
    classes = shared_classes(train_source, val_source)
    if not classes:
        raise DataError("linear evaluation needs labelled data (one sub-folder per class, or scenes)")
    backbone = backbone.to(device).eval()
    for parameter in backbone.parameters():
        parameter.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        Transformed(train_source, linear_train_transform(image_size)),
        batch_size=batch_size, shuffle=True, drop_last=False, num_workers=workers, generator=generator,
    )
    val_loader = DataLoader(Transformed(val_source, center_crop_transform(image_size)), batch_size=batch_size, num_workers=workers)
    classifier = nn.Linear(backbone.out_channels, len(classes)).to(device)
    nn.init.normal_(classifier.weight, std=0.01)
    nn.init.zeros_(classifier.bias)
    optimizer = torch.optim.SGD(classifier.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(milestones), gamma=0.1)
    history = []
    for epoch in tqdm(range(epochs), desc="lewel linear", unit="epoch", disable=not progress):
        total, count = 0.0, 0
        for images, labels in train_loader:
            images, labels = images.to(device), relabel(labels, train_source, classes).to(device)
            loss = F.cross_entropy(classifier(_pooled(backbone, images)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(labels), count + len(labels)
        schedule.step()
        history.append({"epoch": epoch + 1, "train_loss": total / max(count, 1)})
    correct, seen = 0, 0
    with torch.no_grad():
        for images, labels in val_loader:
            predicted = classifier(_pooled(backbone, images.to(device))).argmax(dim=1).cpu()
            labels = relabel(labels, val_source, classes)
            correct, seen = correct + int((predicted == labels).sum()), seen + len(labels)
    return {"top1": 100.0 * correct / max(seen, 1), "epochs": epochs, "history": history}
