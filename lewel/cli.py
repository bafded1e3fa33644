"""The ``lewel`` command line: argument parsing only; the work is done by the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import torch

from . import __version__
from .checkpoints import CheckpointError
from .config import METHODS
from .export import EXPORT_FORMATS, export
from .inference import load_model
from .models.backbones import BACKBONES
from .train import TrainingDiverged


def _info(args: argparse.Namespace) -> int:
    model = load_model(args.checkpoint, num_groups=args.num_groups)
    print(json.dumps(model.describe(), indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    model = load_model(args.checkpoint, num_groups=args.num_groups)
    path = export(model, args.out, args.format, half=args.half)
    print(f"wrote {args.format} export of {args.checkpoint} to {path}")
    return 0


def _data_scenes(args: argparse.Namespace) -> int:
    from .data.scenes import write_scenes

    def progress(split: str, done: int, total: int) -> None:
        if done % 1000 == 0 or done == total:
            print(f"{split}: {done}/{total} scenes", file=sys.stderr)

    index = write_scenes(
        args.out, train=args.train, val=args.val, size=args.size, seed=args.seed, progress=progress,
        min_objects=args.min_objects, max_objects=args.max_objects, stamps_dir=args.stamps_dir,
    )
    print(f"wrote {args.train} train and {args.val} val scenes of {args.size}×{args.size} px to {args.out} ({index})")
    return 0


def _eval_maps(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_maps, format_summary
    from .inference import MapsUnavailableError

    try:
        result = evaluate_maps(
            args.checkpoint, args.data, split=args.split, size=args.size, batch_size=args.batch_size,
            num_groups=args.num_groups, device=args.device, out=args.out,
        )
    except MapsUnavailableError as error:
        print(f"lewel eval-maps: error: {error}", file=sys.stderr)
        return 2
    print(format_summary(result))
    print(f"wrote {args.out}")
    return 0


MODEL_OPTIONS = ("backbone", "hidden_dim", "dim", "num_groups", "loss_weight", "aligned_negatives", "queue_size", "aligned_queue_size", "temperature")
TRAIN_OPTIONS = (
    "data", "val_data", "out", "image_size", "batch_size", "epochs", "optimizer", "lr", "weight_decay", "warmup_epochs",
    "base_momentum", "augmentation", "amp", "compile", "sync_bn", "channels_last", "workers", "seed", "save_every",
    "save_every_steps", "knn_every", "log_every", "resume",
)


def _train(args: argparse.Namespace) -> int:
    from .train.config import TrainConfig, load_recipe, merge
    from .train.loop import train

    recipe = load_recipe(args.config) if args.config else {}
    overrides: dict = {k: getattr(args, k) for k in TRAIN_OPTIONS if getattr(args, k) is not None}
    model = {k: getattr(args, k) for k in MODEL_OPTIONS if getattr(args, k) is not None}
    if model:
        overrides["model"] = model
    if args.method is not None:
        overrides["method"] = args.method
    config = TrainConfig.from_dict(merge(recipe, overrides))
    summary = train(config)
    print(json.dumps(summary))
    return 0


def _eval_sources(args: argparse.Namespace):
    from .train.data import open_source

    train_source = open_source(args.train, image_size=args.image_size, seed=args.seed)
    val_source = open_source(args.val, image_size=args.image_size, seed=args.seed, split="val")
    return train_source, val_source


def _knn(args: argparse.Namespace) -> int:
    from .augmentations import center_crop_transform
    from .train.knn import knn_top1

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(args.checkpoint, map_location=device)
    top1 = knn_top1(
        model.backbone, *_eval_sources(args), transform=center_crop_transform(args.image_size), k=args.k,
        temperature=args.temperature, batch_size=args.batch_size, workers=args.workers, device=device,
    )
    print(json.dumps({"checkpoint": args.checkpoint, "knn_top1": top1, "k": args.k}))
    return 0


def _linear(args: argparse.Namespace) -> int:
    from .train.linear import linear_probe

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(args.checkpoint, map_location=device)
    result = linear_probe(
        model.backbone, *_eval_sources(args), image_size=args.image_size,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, milestones=args.milestones,
        workers=args.workers, device=device, seed=args.seed,
    )
    print(json.dumps({"checkpoint": args.checkpoint, "linear_top1": result["top1"], "epochs": result["epochs"]}))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    if args.models_dir is not None:
        os.environ["LEWEL_MODELS_DIR"] = args.models_dir
    uvicorn.run("api.main:app", host=args.host, port=args.port, log_level=args.log_level)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lewel", description="LEWEL explorer: train LEWEL models and look at their alignment maps."
    )
    parser.add_argument("--version", action="version", version=f"lewel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="describe a checkpoint (method, backbone, d, h)")
    info.add_argument("checkpoint", help="a LEWEL / MoCo / ResNet checkpoint")
    info.add_argument("--num-groups", type=int, default=None, help="h, the number of channel groups (default: stored, else 4)")
    info.set_defaults(run=_info)

    exp = commands.add_parser(
        "export",
        help="export weights: torchvision backbone, detectron2 backbone (COCO transfer) or safetensors model",
    )
    exp.add_argument("checkpoint", help="a LEWEL / MoCo / ResNet checkpoint")
    exp.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    exp.add_argument("--out", required=True, help="output file")
    exp.add_argument("--num-groups", type=int, default=None, help="h for LEWEL heads (default: stored, else 4)")
    exp.add_argument("--half", action="store_true", help="safetensors only: store float16")
    exp.set_defaults(run=_export)

    tr = commands.add_parser("train", help="train LEWEL_B, LEWEL_M, BYOL or MoCo v2 (single process or under torchrun)")
    tr.add_argument("--config", help="YAML recipe (see configs/); command-line options override it")
    tr.add_argument("--method", choices=METHODS)
    tr.add_argument("--backbone", choices=sorted(BACKBONES))
    tr.add_argument("--data", help="ImageFolder tree, flat folder of images, or scenes[:N] (generated multi-object scenes)")
    tr.add_argument("--val-data", help="labelled validation split for the kNN monitor")
    tr.add_argument("--out", help="run directory: checkpoints, metrics.jsonl, tensorboard/")
    tr.add_argument("--image-size", type=int)
    tr.add_argument("--batch-size", type=int, help="GLOBAL batch size, split over the processes")
    tr.add_argument("--epochs", type=int)
    tr.add_argument("--optimizer", choices=("lars", "sgd"))
    tr.add_argument("--lr", type=float, help="absolute peak learning rate")
    tr.add_argument("--weight-decay", type=float)
    tr.add_argument("--warmup-epochs", type=float)
    tr.add_argument("--base-momentum", type=float, help="target/key network momentum m0")
    tr.add_argument("--augmentation", choices=("byol", "mocov2"))
    tr.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), help="auto: bf16 on GPU, none on CPU")
    tr.add_argument("--compile", action="store_true", default=None, help="torch.compile the backbones")
    tr.add_argument("--sync-bn", action="store_true", default=None, help="SyncBatchNorm across GPUs")
    tr.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=None)
    tr.add_argument("--workers", type=int, help="data loader processes per training process")
    tr.add_argument("--seed", type=int)
    tr.add_argument("--save-every", type=int, help="epochs between numbered checkpoints")
    tr.add_argument("--save-every-steps", type=int, help="also refresh last.pt every N steps")
    tr.add_argument("--knn-every", type=int, help="epochs between kNN evaluations on --val-data")
    tr.add_argument("--log-every", type=int, help="steps between logged metrics")
    tr.add_argument("--resume", help="'auto' (OUT/last.pt when present) or a checkpoint path")
    for name in MODEL_OPTIONS[1:]:
        kind = str if name == "aligned_negatives" else (float if name in ("loss_weight", "temperature") else int)
        tr.add_argument("--" + name.replace("_", "-"), type=kind)
    tr.set_defaults(run=_train)

    for name, helptext in (("knn", "weighted kNN top-1 (k = 20, cosine) of a checkpoint's backbone"),
                           ("linear", "linear probe on a checkpoint's frozen backbone")):
        ev = commands.add_parser(name, help=helptext)
        ev.add_argument("--checkpoint", required=True)
        ev.add_argument("--train", required=True, help="labelled training split (ImageFolder tree or scenes:N)")
        ev.add_argument("--val", required=True, help="labelled validation split")
        ev.add_argument("--image-size", type=int, default=224)
        ev.add_argument("--batch-size", type=int, default=256)
        ev.add_argument("--workers", type=int, default=4)
        ev.add_argument("--seed", type=int, default=0)
        if name == "knn":
            ev.add_argument("--k", type=int, default=20)
            ev.add_argument("--temperature", type=float, default=0.07)
            ev.set_defaults(run=_knn)
        else:
            ev.add_argument("--epochs", type=int, default=50)
            ev.add_argument("--lr", type=float, default=0.4)
            ev.add_argument("--milestones", type=int, nargs="+", default=[30, 40])
            ev.set_defaults(run=_linear)

    data = commands.add_parser("data", help="build data sets (multi-object scenes with object masks)")
    datasets = data.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    scenes = datasets.add_parser(
        "scenes", help="Tux Paint cut-outs pasted onto backgrounds: an ImageFolder tree, instance masks, scenes.json"
    )
    scenes.add_argument("--out", required=True, help="a new or empty folder")
    scenes.add_argument("--train", type=int, required=True, help="number of training scenes")
    scenes.add_argument("--val", type=int, required=True, help="number of validation scenes")
    scenes.add_argument("--size", type=int, default=64, help="image side in pixels (default: 64)")
    scenes.add_argument("--seed", type=int, default=0, help="train uses it, val uses seed + 1000003 (default: 0)")
    scenes.add_argument("--min-objects", type=int, default=1, help="objects per scene, at least (default: 1)")
    scenes.add_argument("--max-objects", type=int, default=4, help="objects per scene, at most (default: 4)")
    scenes.add_argument("--stamps-dir", default="/usr/share/tuxpaint/stamps", help="the Tux Paint stamps folder")
    scenes.set_defaults(run=_data_scenes)

    maps = commands.add_parser("eval-maps", help="score where the alignment maps look, on scenes with object masks")
    maps.add_argument("--checkpoint", required=True, help="a LEWEL checkpoint (with its coupled head)")
    maps.add_argument("--data", required=True, help="a folder written by `lewel data scenes`")
    maps.add_argument("--split", default="val", help="the split to score (default: val)")
    maps.add_argument("--size", type=int, default=224, help="input side; scenes are resized whole (default: 224)")
    maps.add_argument("--batch-size", type=int, default=32)
    maps.add_argument("--num-groups", type=int, default=None, help="h for LEWEL heads (default: stored, else 4)")
    maps.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    maps.add_argument("--out", default="eval-maps.json", help="the JSON result (default: eval-maps.json)")
    maps.set_defaults(run=_eval_maps)

    serve = commands.add_parser(
        "serve", help="start the inference API (FastAPI under uvicorn; settings from LEWEL_* variables)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--models-dir", default=None, help="folder of checkpoints to serve (sets LEWEL_MODELS_DIR)")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(run=_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CheckpointError, ValueError, OSError, TrainingDiverged) as error:
        print(f"lewel {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
