"""The ``lewel`` command line: argument parsing only; the work is done by the library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from . import __version__
from .checkpoints import CheckpointError
from .export import EXPORT_FORMATS, export
from .inference import load_model


def _info(args: argparse.Namespace) -> int:
    model = load_model(args.checkpoint, num_groups=args.num_groups)
    print(json.dumps(model.describe(), indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    model = load_model(args.checkpoint, num_groups=args.num_groups)
    path = export(model, args.out, args.format, half=args.half)
    print(f"wrote {args.format} export of {args.checkpoint} to {path}")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (CheckpointError, ValueError, OSError) as error:
        print(f"lewel {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
