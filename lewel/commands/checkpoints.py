"""``lewel info`` and ``lewel export``: a checkpoint described, or its weights exported."""

from __future__ import annotations

import argparse
import json


def info(args: argparse.Namespace) -> int:
    """``lewel info``: the checkpoint's method, backbone, d and h as JSON."""
    from ..inference import load_model

    model = load_model(args.checkpoint, num_groups=args.num_groups)
    print(json.dumps(model.describe(), indent=2))
    return 0


def export(args: argparse.Namespace) -> int:
    """``lewel export``: the checkpoint's weights in ``--format`` at ``--out``."""
    from ..export import export
    from ..inference import load_model

    model = load_model(args.checkpoint, num_groups=args.num_groups)
    path = export(model, args.out, args.format, half=args.half)
    print(f"wrote {args.format} export of {args.checkpoint} to {path}")
    return 0
