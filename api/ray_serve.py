"""``python -m api.ray_serve``: the inference service on Ray Serve, ``--replicas`` copies of the same FastAPI
application (``api.ray_deployment``) behind Ray Serve's HTTP proxy, on a local Ray instance by default or on a
running cluster with ``--address`` (docs/ray.md).

    python -m api.ray_serve --replicas 2 --port 8855                  # a local Ray instance on this machine
    python -m api.ray_serve --replicas 4 --num-gpus 1 --address auto  # the cluster of `ray start --head`

The service's other settings are the ``LEWEL_*`` variables (``api.settings.Settings``), checked before Ray starts
and handed to every replica and to the builds' coordinator. Without ``LEWEL_ATLAS_DIR`` or
``LEWEL_ATLAS_BUILD_DIR``, atlases are built into a temporary folder that this command removes when it stops.
It runs until Ctrl-C or SIGTERM, then deletes the application (and, on the local instance it started, Serve and
Ray themselves) and exits 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .__main__ import checked_settings

APP_NAME = "lewel"
CLOSE_TIMEOUT_S = 30  #: how long stopping waits for the running builds (atlas, profile) to be cancelled
MISSING_RAY = "Ray Serve is not installed: pip install '.[ray]' (the `ray` extra of lewel)"


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type: ``kind(text)`` above 0."""

    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


def not_negative(text: str) -> float:
    """An argparse type: a number of 0 or more."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m api.ray_serve",
        description="Serve the inference API on Ray Serve (settings from LEWEL_* variables; docs/ray.md).",
    )
    parser.add_argument("--replicas", type=positive(int), default=1, help="copies of the service (default: 1)")
    parser.add_argument("--num-gpus", type=not_negative, default=0.0,
                        help="GPUs per replica, fractions allowed (default: 0, the CPU)")
    parser.add_argument("--num-cpus", type=positive(float), default=1.0, help="CPUs per replica (default: 1)")
    parser.add_argument("--host", default="127.0.0.1", help="address of Serve's HTTP proxy (default: 127.0.0.1)")
    parser.add_argument("--port", type=positive(int), default=8000, help="port of Serve's HTTP proxy (default: 8000)")
    parser.add_argument("--address", default=None,
                        help="a running Ray cluster ('auto', or HOST:6379); default: start a local instance")
    parser.add_argument("--models-dir", default=None, help="folder of checkpoints to serve (sets LEWEL_MODELS_DIR)")
    parser.add_argument("--no-batching", dest="batching", action="store_false",
                        help="one request at a time per model instead of @serve.batch")
    parser.add_argument("--max-ongoing", type=positive(int), default=32,
                        help="requests a replica takes at once; Serve queues the rest (default: 32)")
    parser.add_argument("--build-cpus", type=positive(float), default=1.0,
                        help="CPUs of a build task, an atlas or a profile (default: 1)")
    parser.add_argument("--build-gpus", type=not_negative, default=0.0,
                        help="GPUs of a build task, an atlas or a profile (default: 0, built on the CPU)")
    return parser


class Stopped(Exception):
    """Raised in the main thread by the first Ctrl-C or SIGTERM."""


def stop_on_signals() -> Callable[[], None]:
    """Make the first SIGINT / SIGTERM raise ``Stopped`` wherever the main thread is (later ones are ignored
    while it cleans up); returns what installs the handler again, as ``ray.init`` puts its own on SIGTERM."""
    stopping = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            return
        stopping.set()
        print(f"\nlewel ray serve: {signal.Signals(signum).name}, stopping", file=sys.stderr, flush=True)
        raise Stopped

    def install() -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, handler)

    install()
    return install


def replica_options(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """The ``LewelService.options`` of ``args``: replicas, their CPUs and GPUs, and the ``LEWEL_*`` variables."""
    return {
        "num_replicas": args.replicas,
        "max_ongoing_requests": args.max_ongoing,
        "ray_actor_options": {
            "num_cpus": args.num_cpus,
            "num_gpus": args.num_gpus,
            "runtime_env": {"env_vars": env},
        },
    }


def lewel_environment() -> dict[str, str]:
    """The ``LEWEL_*`` variables of this process, which every replica, the coordinator and the builds get."""
    return {name: value for name, value in os.environ.items() if name.startswith("LEWEL_")}


def deploy(args: argparse.Namespace, env: dict[str, str]) -> None:
    """Run the application (``APP_NAME`` at ``/``) with ``args``' replicas; returns once they are up."""
    from ray import serve

    from .ray_deployment import AppArgs, application

    app_args = AppArgs(batching=args.batching, build_cpus=args.build_cpus, build_gpus=args.build_gpus)
    serve.run(application(app_args, replica_options(args, env)), name=APP_NAME, route_prefix="/")


def serve_on_ray(args: argparse.Namespace) -> int:
    """Deploy, serve until a signal, clean up; the exit status."""
    settings = checked_settings(args.models_dir)
    try:
        import ray
        from ray import serve
    except ModuleNotFoundError:
        raise ValueError(MISSING_RAY) from None
    from .atlas_builds import TEMPORARY_PREFIX

    temporary: Path | None = None
    if settings.atlas_dir is None and settings.atlas_build_dir is None:
        temporary = Path(tempfile.mkdtemp(prefix=f"{TEMPORARY_PREFIX}{os.getpid()}-"))
        os.environ["LEWEL_ATLAS_BUILD_DIR"] = str(temporary)
    env = lewel_environment()
    local = args.address is None
    reinstall = stop_on_signals()
    try:
        ray.init(address=args.address, include_dashboard=False if local else None, runtime_env={"env_vars": env})
        reinstall()
        serve.start(http_options={"host": args.host, "port": args.port})
        deploy(args, env)
        print(
            f"lewel ray serve: {args.replicas} replica(s) serving on http://{args.host}:{args.port} "
            f"(batching {'on' if args.batching else 'off'}; Ctrl-C or SIGTERM stops)",
            flush=True,
        )
        threading.Event().wait()
    except Stopped:
        pass
    finally:
        if ray.is_initialized():
            clean_up(local=local)
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    return 0


def clean_up(*, local: bool) -> None:
    """Stop the builds (atlas, profile) and the application; on the local instance, Serve and Ray too. A step that fails
    is reported and the next one still runs."""
    import ray
    from ray import serve

    from .ray_deployment import COORDINATOR_NAME, COORDINATOR_NAMESPACE

    def end_coordinator() -> None:
        try:
            actor = ray.get_actor(COORDINATOR_NAME, namespace=COORDINATOR_NAMESPACE)
        except ValueError:  # never started
            return
        ray.get(actor.close.remote(), timeout=CLOSE_TIMEOUT_S)
        ray.kill(actor)

    steps = [("stop the builds", end_coordinator)]
    if local:
        steps.append(("shut Serve down", serve.shutdown))
    else:  # the cluster's other applications and its Serve proxies stay
        steps.append(("delete the application", lambda: serve.delete(APP_NAME)))
    steps.append(("disconnect from Ray", ray.shutdown))
    for what, step in steps:
        try:
            step()
        except Exception as error:  # noqa: BLE001 - what is left to clean up still is
            print(f"lewel ray serve: could not {what}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    print("lewel ray serve: stopped", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return serve_on_ray(args)
    except (ValueError, OSError, ConnectionError) as error:
        print(f"python -m api.ray_serve: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
