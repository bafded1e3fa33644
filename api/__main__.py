"""``python -m api`` (the ``lewel-serve`` console script): start the inference service under uvicorn.

The options are those ``lewel serve`` had; the other settings come from ``LEWEL_*`` environment variables
(``api.settings.Settings``), checked here before uvicorn starts so that a bad one is refused with its message.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lewel-serve",
        description="Start the inference API (FastAPI under uvicorn; settings from LEWEL_* variables).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    parser.add_argument("--models-dir", default=None, help="folder of checkpoints to serve (sets LEWEL_MODELS_DIR)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    return parser


def _reason(error: dict) -> str:
    """One settings error as a sentence that names its variable (``LEWEL_MAX_UPLOAD_MB: Input should be ...``)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    variable = f"LEWEL_{str(error['loc'][0]).upper()}" if error.get("loc") else ""
    return message if not variable or variable in message else f"{variable}: {message}"


def checked_settings(models_dir: str | None = None) -> Settings:
    """The ``LEWEL_*`` settings (``models_dir`` sets ``LEWEL_MODELS_DIR`` first); bad ones (an empty token ...)
    raise ``ValueError`` with their messages, so that they are refused before a server starts."""
    from pydantic import ValidationError

    from .settings import Settings

    if models_dir is not None:
        os.environ["LEWEL_MODELS_DIR"] = models_dir
    try:
        return Settings()
    except ValidationError as error:
        reasons = "; ".join(_reason(e) for e in error.errors())
        raise ValueError(f"invalid service settings: {reasons}") from None


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    checked_settings(args.models_dir)
    uvicorn.run("api.main:app", host=args.host, port=args.port, log_level=args.log_level)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return serve(args)
    except (ValueError, OSError) as error:
        print(f"lewel-serve: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
