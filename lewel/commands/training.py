"""``lewel train``, ``knn`` and ``linear``: a training run from its recipe and options, and the backbone's
kNN and linear probes."""

from __future__ import annotations

import argparse
import json
from typing import Any

#: ``train``'s options of the model config (``TrainConfig.model``), by their argparse names
MODEL_OPTIONS = ("backbone", "hidden_dim", "dim", "num_groups", "loss_weight", "aligned_negatives", "queue_size", "aligned_queue_size", "temperature")
#: ``train``'s options of the run (``TrainConfig`` less its model), by their argparse names
TRAIN_OPTIONS = (
    "data", "shared_backdrops", "val_data", "out", "image_size", "batch_size", "epochs", "optimizer", "lr", "weight_decay", "warmup_epochs",
    "base_momentum", "augmentation", "amp", "compile", "sync_bn", "channels_last", "workers", "seed", "save_every",
    "save_every_steps", "knn_every", "log_every", "maps_every", "maps_images", "maps_size", "maps_controls", "stop_after_steps", "resume",
    "init",
)


def train(args: argparse.Namespace) -> int:
    """``lewel train``: a run of the recipe with the options given; its summary as strict JSON."""
    from ..train.config import TrainConfig, load_recipe, merge
    from ..train.loop import train

    recipe = load_recipe(args.config) if args.config else {}
    overrides: dict = {k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k) is not None}
    model = {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None}
    if model:
        overrides["model"] = model
    if args.method is not None:
        overrides["method"] = args.method
    config = TrainConfig.from_dict(merge(recipe, overrides))
    summary = train(config)
    print(json.dumps(summary, allow_nan=False))  # strict JSON: a run that trained no step has loss null
    return 0


def eval_sources(args: argparse.Namespace) -> tuple[Any, Any]:
    """The labelled ``--train`` and ``--val`` images of a probe."""
    from ..train.data import training_images

    train_source = training_images(args.train, image_size=args.image_size, seed=args.seed)
    val_source = training_images(args.val, image_size=args.image_size, seed=args.seed, split="val")
    return train_source, val_source


def knn(args: argparse.Namespace) -> int:
    """``lewel knn``: the kNN top-1 accuracy of a checkpoint's frozen backbone."""
    import torch

    from ..inference import load_model
    from ..train.knn import knn_top1
    from ..views.augmentations import center_crop_transform

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(args.checkpoint, map_location=device)
    top1 = knn_top1(
        model.backbone, *eval_sources(args), transform=center_crop_transform(args.image_size), k=args.k,
        temperature=args.temperature, batch_size=args.batch_size, workers=args.workers, device=device,
    )
    print(json.dumps({"checkpoint": args.checkpoint, "knn_top1": top1, "k": args.k}))
    return 0


def linear(args: argparse.Namespace) -> int:
    """``lewel linear``: the top-1 accuracy of a linear probe on a checkpoint's frozen backbone."""
    import torch

    from ..inference import load_model
    from ..train.linear import linear_probe

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(args.checkpoint, map_location=device)
    result = linear_probe(
        model.backbone, *eval_sources(args), image_size=args.image_size,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, milestones=args.milestones,
        workers=args.workers, device=device, seed=args.seed,
    )
    print(json.dumps({"checkpoint": args.checkpoint, "linear_top1": result["top1"], "epochs": result["epochs"]}))
    return 0
