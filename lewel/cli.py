"""The ``lewel`` command line: argument parsing only; each command's handler is in ``lewel.commands`` and the
work is done by the library.

Only torch-free modules are imported at the top, so that ``lewel --help`` answers at once; each handler
imports what it needs (torch, the models, the training loop) when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .commands import checkpoints, measurement, training
from .commands.training import MODEL_OPTIONS
from .config import METHODS
from .train import TrainingDiverged
from .train.config import TrainConfig

#: The names of ``lewel.models.backbones.BACKBONES`` and ``lewel.export.EXPORT_FORMATS``, repeated here so that
#: building the parser needs no torch (tests/test_cli.py checks that they agree).
BACKBONE_NAMES = ("resnet101", "resnet18", "resnet34", "resnet50")
EXPORT_FORMATS = ("torchvision", "detectron2", "safetensors")
#: ``train``'s model options after ``--backbone``: name, type, help.
MODEL_OPTION_HELP = (
    ("hidden_dim", int, "hidden width of the projector and predictor MLPs"),
    ("dim", int, "d: projection size, also the number of alignment maps"),
    ("num_groups", int, "h: channel groups of the coupled head (LEWEL methods)"),
    ("loss_weight", float, "LEWEL: w in w·L_global + (1 - w)·L_aligned"),
    ("aligned_negatives", str, "LEWEL_M: negatives of the aligned loss, a queue of keys or the batch"),
    ("queue_size", int, "MoCo family: length of the queue of negative keys"),
    ("aligned_queue_size", int, "LEWEL_M: length of the queue of aligned keys"),
    ("temperature", float, "MoCo family: InfoNCE temperature"),
)


def _train_default(name: str) -> str:
    """``(default: …)`` for a ``train`` option: the BYOL family's value, and the MoCo family's where it differs."""
    if name == "method":
        return f"(default: {TrainConfig().model.method})"
    values = []
    for method in ("lewel_b_eman", "lewel_m"):
        config = TrainConfig.for_method(method)
        value = getattr(config.model if name in MODEL_OPTIONS else config, name)
        values.append("none" if value is None else str(value))
    if values[1] == values[0]:
        return f"(default: {values[0]})"
    return f"(default: {values[0]}; MoCo family: {values[1]})"


def _add_info(commands: argparse._SubParsersAction) -> None:
    """Add the ``info`` command: describe a checkpoint."""

    info = commands.add_parser("info", help="describe a checkpoint (method, backbone, d, h)")
    info.add_argument("checkpoint", help="a LEWEL / MoCo / ResNet checkpoint")
    info.add_argument("--num-groups", type=int, default=None, help="h, the number of channel groups (default: stored, else 4)")
    info.set_defaults(run=checkpoints.info)


def _add_export(commands: argparse._SubParsersAction) -> None:
    """Add the ``export`` command: weights for torchvision, detectron2 or safetensors."""
    exp = commands.add_parser(
        "export",
        help="export weights: torchvision backbone, detectron2 backbone (COCO transfer) or safetensors model",
    )
    exp.add_argument("checkpoint", help="a LEWEL / MoCo / ResNet checkpoint")
    exp.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    exp.add_argument("--out", required=True, help="output file")
    exp.add_argument("--num-groups", type=int, default=None, help="h for LEWEL heads (default: stored, else 4)")
    exp.add_argument("--half", action="store_true", help="safetensors only: store float16")
    exp.set_defaults(run=checkpoints.export)


def _add_train(commands: argparse._SubParsersAction) -> None:
    """Add the ``train`` command: every option of ``TrainConfig``, defaults from the recipe or the method's family."""
    tr = commands.add_parser(
        "train", help="train LEWEL_B, LEWEL_M, BYOL or MoCo v2 (single process or under torchrun)",
        description="Train one method. An option left out takes the --config recipe's value, else the default "
        "shown, which depends on the method's family: BYOL (lewel_b, lewel_b_eman, byol) or MoCo (lewel_m, mocov2).",
    )
    tr.add_argument("--config", help="YAML recipe (see configs/); command-line options override it (default: none)")
    tr.add_argument("--method", choices=METHODS, help=f"the method to train {_train_default('method')}")
    tr.add_argument("--backbone", choices=BACKBONE_NAMES, help=f"ResNet encoder {_train_default('backbone')}")
    tr.add_argument("--data", help="ImageFolder tree, flat folder of images, scenes[:N] (generated multi-object "
                    "scenes), textured[:N] (on photographs), a mix of those joined by + (scenes:N+textured:N), "
                    "coco:ANNOTATIONS.json[:IMAGES], voc:ROOT[:SPLIT] or images/ + masks/ (their images); "
                    "required, here or in the recipe")
    tr.add_argument("--val-data", help=f"labelled validation split for the kNN monitor {_train_default('val_data')}")
    tr.add_argument("--out", help=f"run directory: checkpoints, metrics.jsonl, tensorboard/ {_train_default('out')}")
    tr.add_argument("--image-size", type=int, help=f"side of the crops in pixels {_train_default('image_size')}")
    tr.add_argument("--batch-size", type=int,
                    help=f"GLOBAL batch size, split over the processes {_train_default('batch_size')}")
    tr.add_argument("--epochs", type=int, help=f"passes over --data {_train_default('epochs')}")
    tr.add_argument("--shared-backdrops", type=int, metavar="K",
                    help="generated training scenes (scenes, textured, a mix) take K backgrounds in turn, so only "
                    "their objects tell them apart; 0 = each scene its own " + _train_default("shared_backdrops"))
    tr.add_argument("--optimizer", choices=("lars", "sgd"), help=f"optimiser {_train_default('optimizer')}")
    tr.add_argument("--lr", type=float, help=f"absolute peak learning rate {_train_default('lr')}")
    tr.add_argument("--weight-decay", type=float, help=f"weight decay {_train_default('weight_decay')}")
    tr.add_argument("--warmup-epochs", type=float,
                    help=f"linear learning-rate warm-up, in epochs {_train_default('warmup_epochs')}")
    tr.add_argument("--base-momentum", type=float,
                    help=f"target/key network momentum m0 {_train_default('base_momentum')}")
    tr.add_argument("--augmentation", choices=("byol", "mocov2"),
                    help=f"view augmentations {_train_default('augmentation')}")
    tr.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"),
                    help=f"mixed precision; auto: bf16 on GPU, none on CPU {_train_default('amp')}")
    tr.add_argument("--compile", action="store_true", default=None, help="torch.compile the backbones (default: off)")
    tr.add_argument("--sync-bn", action="store_true", default=None, help="SyncBatchNorm across GPUs (default: off)")
    tr.add_argument("--no-channels-last", dest="channels_last", action="store_false", default=None,
                    help="keep the NCHW memory layout (default: channels_last)")
    tr.add_argument("--workers", type=int,
                    help=f"data loader processes per training process, at most the CPUs {_train_default('workers')}")
    tr.add_argument("--seed", type=int, help=f"random seed {_train_default('seed')}")
    tr.add_argument("--save-every", type=int,
                    help=f"epochs between numbered checkpoints; the last is always saved {_train_default('save_every')}")
    tr.add_argument("--save-every-steps", type=int,
                    help=f"also refresh last.pt every N steps, 0 = off {_train_default('save_every_steps')}")
    tr.add_argument("--knn-every", type=int,
                    help=f"epochs between kNN evaluations on --val-data, 0 = only at the end {_train_default('knn_every')}")
    tr.add_argument("--log-every", type=int, help=f"steps between logged metrics; the first and last are always logged {_train_default('log_every')}")
    tr.add_argument("--maps-every", type=int, help="LEWEL: steps between map monitor passes (the selected object maps' "
                    "AUROC on masked --val-data such as scenes:N, and a probe grid, to TensorBoard, metrics.jsonl and "
                    f"OUT/maps/; also at step 0 and at the end), 0 = off {_train_default('maps_every')}")
    tr.add_argument("--stop-after-steps", type=int, help="stop after this many steps of the --epochs schedule (a screen "
                    "of a recipe; --resume auto later runs the rest of the same schedule), 0 = run it all "
                    f"{_train_default('stop_after_steps')}")
    tr.add_argument("--maps-images", type=int, help=f"map monitor: masked validation images per split {_train_default('maps_images')}")
    tr.add_argument("--maps-controls", type=int,
                    help="map monitor: random networks per initialisation scheme each pass is judged against, "
                    f"scored once per run (0: none) {_train_default('maps_controls')}")
    tr.add_argument("--maps-size", type=int, help=f"map monitor: side in pixels the images are resized to {_train_default('maps_size')}")
    tr.add_argument("--resume", help="'auto' (OUT/last.pt when present) or a checkpoint path (default: a fresh run)")
    tr.add_argument("--init", help="a model file of the same shape (an export, a lewel train or official checkpoint) "
                    "whose online encoder, copied to the target, starts a fresh run: fine-tuning (a resumed run "
                    "ignores it) (default: none, random initialisation)")
    for name, kind, helptext in MODEL_OPTION_HELP:
        choices = ("queue", "batch") if name == "aligned_negatives" else None
        tr.add_argument("--" + name.replace("_", "-"), type=kind, choices=choices,
                        help=f"{helptext} {_train_default(name)}")
    tr.set_defaults(run=training.train)


def _add_backbone_evals(commands: argparse._SubParsersAction) -> None:
    """Add the ``knn`` and ``linear`` commands: a checkpoint's frozen backbone evaluated on labelled splits."""
    for name, helptext in (("knn", "weighted kNN top-1 (k = 20, cosine) of a checkpoint's backbone"),
                           ("linear", "linear probe on a checkpoint's frozen backbone")):
        ev = commands.add_parser(name, help=helptext, description=helptext)
        ev.add_argument("--checkpoint", required=True, help="a LEWEL / MoCo / ResNet checkpoint")
        ev.add_argument("--train", required=True, help="labelled training split (ImageFolder tree or scenes:N)")
        ev.add_argument("--val", required=True, help="labelled validation split")
        ev.add_argument("--image-size", type=int, default=224, help="input side in pixels (default: %(default)s)")
        ev.add_argument("--batch-size", type=int, default=256, help="images per batch (default: %(default)s)")
        ev.add_argument("--workers", type=int, default=4, help="data loader processes (default: %(default)s)")
        ev.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
        if name == "knn":
            ev.add_argument("--k", type=int, default=20, help="neighbours that vote (default: %(default)s)")
            ev.add_argument("--temperature", type=float, default=0.07,
                            help="temperature of the vote weights exp(cos / T) (default: %(default)s)")
            ev.set_defaults(run=training.knn)
        else:
            ev.add_argument("--epochs", type=int, default=50, help="training epochs of the probe (default: %(default)s)")
            ev.add_argument("--lr", type=float, default=0.4, help="initial SGD learning rate (default: %(default)s)")
            ev.add_argument("--milestones", type=int, nargs="+", default=[30, 40],
                            help="epochs where the learning rate drops tenfold (default: 30 40)")
            ev.set_defaults(run=training.linear)


def _add_data(commands: argparse._SubParsersAction) -> None:
    """Add the ``data`` command and its data sets (``data scenes``)."""
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
    scenes.add_argument(
        "--backgrounds", choices=("procedural", "photos"), default="procedural",
        help="procedural: the scenes benchmark; photos: the textured one (scikit-image photographs, split into "
        "train and evaluation pools; val scenes alternate calibration and held-out backdrops)",
    )
    scenes.set_defaults(run=measurement.data_scenes)


def _add_eval_maps(commands: argparse._SubParsersAction) -> None:
    """Add the ``eval-maps`` command: a checkpoint's maps scored on masked data."""
    maps = commands.add_parser(
        "eval-maps", help="score where the alignment maps look, on images with object masks",
        description="Score where the alignment maps look, on images with object masks.",
    )
    maps.add_argument("--checkpoint", required=True, help="a LEWEL checkpoint (with its coupled head)")
    maps.add_argument("--data", required=True, help="a folder written by `lewel data scenes` (its --split), or any "
                      "masked data: coco:ANNOTATIONS.json[:IMAGES], voc:ROOT[:SPLIT], images/ + masks/, scenes:N")
    maps.add_argument("--split", default="val", help="the split to score (default: val)")
    maps.add_argument("--size", type=int, default=224, help="input side; scenes are resized whole (default: 224)")
    maps.add_argument("--batch-size", type=int, default=32, help="scenes per forward pass (default: 32)")
    maps.add_argument("--num-groups", type=int, default=None, help="h for LEWEL heads (default: stored, else 4)")
    maps.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    maps.add_argument("--out", default="eval-maps.json", help="the JSON result (default: eval-maps.json)")
    maps.add_argument("--no-profile", dest="profile", action="store_false",
                      help="skip the map profile (calibration/held-out AUROC next to a random control) "
                      "(default: the profile is computed)")
    maps.set_defaults(run=measurement.eval_maps)


def _add_profile(commands: argparse._SubParsersAction) -> None:
    """Add the ``profile`` command: a checkpoint's map profile against its random control family."""
    prof = commands.add_parser(
        "profile", help="map profile: which map indices look at objects (AUROC on held-out images, random control)",
        description="Score every map index against object masks on a calibration split and a held-out split: "
        "the indices with the highest calibration AUROC are the object maps, and their AUROC and pointing rate "
        "are reported on the held-out split, next to a family of random networks of the same shape (docs/maps.md).",
    )
    prof.add_argument("--checkpoint", required=True, help="a LEWEL checkpoint (with its coupled head)")
    prof.add_argument("--data", default="scenes",
                      help="scenes[:N] (generated, two seeds), textured[:N] (the same on photographs: calibration and "
                      "held-out backdrops), coco:ANNOTATIONS.json[:IMAGES], voc:ROOT[:SPLIT], a "
                      "`lewel data scenes` folder, or a folder with images/ and masks/ (binary or instance-coded; "
                      "split alternately; a folder named scenes is ./scenes) (default: scenes)")
    prof.add_argument("--images", type=int, default=None,
                      help="images per split (default: 256 generated scenes; folders: all)")
    prof.add_argument("--size", type=int, default=224, help="input side; images are resized whole (default: 224)")
    prof.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: 32)")
    prof.add_argument("--fraction", type=float, default=0.1, help="share of indices given the object (and background) role (default: 0.1)")
    prof.add_argument("--control-seeds", type=int, default=5,
                      help="random networks of each initialisation scheme the model is compared with (seeds 0..N-1) (default: 5)")
    prof.add_argument("--control-schemes", default="torchvision,pytorch,trunc_normal",
                      help="comma-separated initialisation schemes of the random controls "
                      "(lewel.maps.controls.INIT_SCHEMES) (default: torchvision,pytorch,trunc_normal)")
    prof.add_argument("--num-groups", type=int, default=None, help="h for LEWEL heads (default: stored, else 4)")
    prof.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    prof.add_argument("--no-patterns", dest="patterns", action="store_false",
                      help="skip Figure 5's measured patterns and the per-category dissection (they need masks that tell "
                      "instances apart) (default: measured)")
    prof.add_argument("--out", default=None, help="the profile JSON (default: the sidecar NAME.profile.json next to the checkpoint)")
    prof.add_argument("--no-cache", dest="cache", action="store_false",
                      help="compute every random control again and store none (default: read and store them in "
                      "LEWEL_CACHE_DIR, else the user cache folder; `lewel cache`)")
    prof.add_argument("--quiet", action="store_true", help="no progress bar")
    prof.set_defaults(run=measurement.profile)


def _add_cache(commands: argparse._SubParsersAction) -> None:
    """Add the ``cache`` command: the random controls profiles keep (``lewel.maps.family_cache``)."""
    cache = commands.add_parser(
        "cache", help="list or clear the cached random controls of profiles",
        description="Profiles keep each random control's scores, keyed by everything they depend on (the model's "
        "shape, the images, the size, the scheme and seed, the code's version), so that a second checkpoint of the "
        "same shape computes only itself. They live in LEWEL_CACHE_DIR, else the user cache folder.",
    )
    cache.add_argument("action", choices=("list", "clear"), help="list the entries, or delete them all")
    cache.add_argument("--dir", default=None, help="the cache folder (default: LEWEL_CACHE_DIR, else the user cache folder)")
    cache.set_defaults(run=measurement.cache)


def _add_maps(commands: argparse._SubParsersAction) -> None:
    """Add the ``maps`` command: every image of a data set through a model, to NPZ shards."""
    batch = commands.add_parser(
        "maps", help="extract the maps of every image of a data set to NPZ shards (resumable; torchrun-parallel)",
        description="Extract the alignment maps of every image of a folder, ImageFolder tree or generated "
        "scenes into OUT/shards/*.npz with OUT/index.json (docs/atlas.md). Shards already written are skipped, "
        "so a killed run continues; under `torchrun --nproc_per_node N -m lewel.cli maps ...` each process "
        "writes its own shards and rank 0 the index.",
    )
    batch.add_argument("--checkpoint", required=True, help="a LEWEL checkpoint (with its coupled head)")
    batch.add_argument("--data", required=True,
                       help="a folder of images, an ImageFolder tree, or with masks: a `lewel data scenes` folder, "
                       "images/ + masks/, coco:ANNOTATIONS.json[:IMAGES], voc:ROOT[:SPLIT] or scenes:N (generated)")
    batch.add_argument("--out", required=True, help="output folder (an unfinished one is resumed)")
    batch.add_argument("--size", type=int, default=224, help="input side; view 0 is the whole image resized (default: 224)")
    batch.add_argument("--views", type=int, default=0, help="augmented views per image after view 0 (default: 0)")
    batch.add_argument("--preset", default="byol1", choices=("byol1", "byol2", "mocov2", "cropflip"),
                       help="augmentation of the views (default: byol1)")
    batch.add_argument("--seed", type=int, default=0, help="seed of the views; image i uses view_seed(seed, i) (default: 0)")
    batch.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    batch.add_argument("--shard-size", type=int, default=256, help="images per shard (default: 256)")
    batch.add_argument("--workers", type=int, default=4, help="data loader processes per process (default: 4)")
    batch.add_argument("--writers", type=int, default=2,
                       help="threads computing statistics and writing shards per process (default: 2)")
    batch.add_argument("--device", default="auto", help="torch device; auto: cuda:LOCAL_RANK, else cpu (default: auto)")
    batch.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"), help="bf16: autocast (default: fp32)")
    batch.add_argument("--num-groups", type=int, default=None, help="h for LEWEL heads (default: stored, else 4)")
    batch.add_argument("--quiet", action="store_true", help="no progress bar (default: a bar on rank 0)")
    batch.set_defaults(run=measurement.maps)


def _add_atlas(commands: argparse._SubParsersAction) -> None:
    """Add the ``atlas`` command: per map index the images where it concentrates most."""
    atl = commands.add_parser(
        "atlas", help="per map index, the images where it concentrates most, from `lewel maps` shards (JSON + HTML)",
        description="For every map index: its top-N (image, view) pairs by peak ÷ uniform and by range-stretched "
        "mass, its mean statistics and pattern shares, and with masks its AUROC; written as atlas.json, a "
        "static index.html and thumbs/*.png (docs/atlas.md).",
    )
    atl.add_argument("out", help="the folder `lewel maps` wrote")
    atl.add_argument("--dest", default=None, help="where to write the atlas (default: OUT/atlas)")
    atl.add_argument("--top", type=int, default=8, help="entries per map index and score (default: 8)")
    atl.add_argument("--thumb-size", type=int, default=96, help="thumbnail side in pixels (default: 96)")
    atl.add_argument("--data", default=None,
                     help="the data folder, when it moved since the extraction (default: the path in the index)")
    atl.add_argument("--quiet", action="store_true", help="no progress bar (default: a bar)")
    atl.set_defaults(run=measurement.atlas)


#: the functions that add the sub-commands, in the order ``lewel --help`` lists them
COMMANDS = (
    _add_info,
    _add_export,
    _add_train,
    _add_backbone_evals,
    _add_data,
    _add_eval_maps,
    _add_profile,
    _add_cache,
    _add_maps,
    _add_atlas,
)


def build_parser() -> argparse.ArgumentParser:
    """The ``lewel`` parser: one sub-command per ``COMMANDS`` entry, each added by its own function."""
    parser = argparse.ArgumentParser(
        prog="lewel", description="LEWEL explorer: train LEWEL models and look at their alignment maps."
    )
    parser.add_argument("--version", action="version", version=f"lewel {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


#: what the library needs beyond the base install (pip install ".[app]" is the front end alone, without them)
LIBRARY_MODULES = ("torch", "torchvision", "scipy", "skimage", "safetensors", "yaml", "tqdm", "tensorboard", "pycocotools")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in LIBRARY_MODULES:
            raise
        print(
            f"lewel {args.command}: error: {error.name} is not installed; the library's commands need its "
            '[library] extra: pip install ".[library]" (or ".[service]" with the service)',
            file=sys.stderr,
        )
        return 2
    except (ValueError, OSError, TrainingDiverged) as error:  # CheckpointError is a ValueError
        print(f"lewel {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
