"""``python -m app``: start the inference service (``python -m api``) and the Streamlit app together (the app
with its imports done beforehand, ``app.preload``), print the address, and stop both on Ctrl-C / SIGTERM.
When the service stops on its own the launcher says so (exit
status or signal) and starts it again, up to ``--restarts`` times, while the app stays up and its page says
the service is not reachable, with a Retry; when the app stops, the launcher says so and stops the service.
``--api-url`` uses a running service instead of starting one."""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Callable, Mapping
from types import FrameType

import httpx

MAIN = Path(__file__).resolve().parent / "main.py"


def env_port(parser: argparse.ArgumentParser, env: Mapping[str, str], name: str, default: int) -> int:
    """The port in variable ``name`` of ``env`` (``default`` when unset); a value that is not a port is an
    error naming the variable."""
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        parser.error(f"{name}={value!r} is not a port (a whole number from 1 to 65535)")
    return int(value)


def parse_args(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> argparse.Namespace:
    """The launcher's options; ``PORT`` and ``API_PORT`` in ``env`` (the environment by default) give the
    ports when ``--port`` / ``--api-port`` are not given, as ./scripts/app reads them (flags win)."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address of the app and the service (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=env_port(parser, env, "PORT", 8501), help="port of the app (default $PORT or 8501)"
    )
    parser.add_argument(
        "--api-port",
        type=int,
        default=env_port(parser, env, "API_PORT", 8000),
        help="port of the service it starts (default $API_PORT or 8000)",
    )
    parser.add_argument("--api-url", default=None, help="use the service at this URL instead of starting one")
    parser.add_argument("--models-dir", default=None, help="folder of checkpoints to serve (sets LEWEL_MODELS_DIR)")
    parser.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for the service")
    parser.add_argument(
        "--restarts", type=int, default=3, help="times a service that stops is started again (default 3)"
    )
    return parser.parse_args(argv)


def wait_ready(url: str, service: subprocess.Popen | None, seconds: float) -> None:
    """Poll ``url/readyz`` until it answers 200; raise with the reason when the service exits or is late."""
    deadline = time.monotonic() + seconds
    reason = "no answer yet"
    while time.monotonic() < deadline:
        if service is not None and service.poll() is not None:
            raise RuntimeError(f"the service exited with status {service.returncode} before it was ready")
        try:
            response = httpx.get(f"{url}/readyz", timeout=5.0)
            if response.status_code == 200:
                return
            reason = response.json().get("message", response.text)
        except (httpx.HTTPError, ValueError) as error:
            reason = str(error)
        time.sleep(0.3)
    raise RuntimeError(f"the service at {url} was not ready after {seconds:.0f} s: {reason}")


def port_problem(host: str, port: int, variable: str, option: str) -> str | None:
    """Why ``port`` cannot be used on ``host`` (it is taken), naming the variable and option that change it;
    None when it is free."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            return (
                f"port {port} on {host} is not free ({error.strerror or error}): another program, perhaps an "
                f"earlier ./scripts/app, is using it. Stop it, or choose another port with {variable}=… or "
                f"{option} … (./scripts/app and python -m app read both; the option wins)"
            )
    return None


def upload_limit_mb(env: dict[str, str]) -> int:
    """The service's upload cap in whole MB (LEWEL_MAX_UPLOAD_MB, default 20), for Streamlit's uploader."""
    try:
        return max(1, math.ceil(float(env.get("LEWEL_MAX_UPLOAD_MB", "20"))))
    except ValueError:
        return 20


def wait_app(url: str, app: subprocess.Popen, seconds: float) -> None:
    """Poll Streamlit's health endpoint until the page can be opened (the address is printed only then)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if app.poll() is not None:
            raise RuntimeError(f"the Streamlit app exited with status {app.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the Streamlit app at {url} did not answer within {seconds:.0f} s")


def exit_reason(process: subprocess.Popen) -> str:
    """How a finished process ended: ``exit status 3`` or ``killed by signal SIGKILL``."""
    code = process.returncode
    if code is not None and code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def supervise(
    app: subprocess.Popen,
    service: subprocess.Popen | None,
    start_service: Callable[[], subprocess.Popen],
    ready: Callable[[subprocess.Popen], None],
    *,
    restarts: int,
    app_url: str,
    poll_s: float = 0.5,
) -> int:
    """Watch the app and the service until the app stops (its status is returned). A service that stops is
    named with its reason and started again (at most ``restarts`` times); after that the app stays up alone
    and the launcher says what the page will show."""
    left = restarts
    while app.poll() is None:
        if service is not None and service.poll() is not None:
            print(f"error: the LEWEL service (pid {service.pid}) stopped: {exit_reason(service)}.", file=sys.stderr, flush=True)
            if left <= 0:
                print(
                    f"error: not restarting it again ({restarts} restarts). The app stays up at {app_url}; its page "
                    "says the service is not reachable. Stop with Ctrl-C and look at the service's output above.",
                    file=sys.stderr,
                    flush=True,
                )
                service = None
                continue
            left -= 1
            print(f"restarting the service ({restarts - left} of {restarts}) …", file=sys.stderr, flush=True)
            service = start_service()
            try:
                ready(service)
            except RuntimeError as error:
                print(f"error: {error}", file=sys.stderr, flush=True)
                continue
            print(f"the service is back: press Retry on the page at {app_url}", flush=True)
        time.sleep(poll_s)
    print(f"error: the Streamlit app (pid {app.pid}) stopped: {exit_reason(app)}; stopping the service.", file=sys.stderr, flush=True)
    return int(app.returncode or 0)


def browser_host(host: str) -> str:
    """The address a browser on this machine uses for a server bound to ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = dict(os.environ)
    if args.models_dir:
        env["LEWEL_MODELS_DIR"] = str(Path(args.models_dir).expanduser().resolve())
    children: list[subprocess.Popen] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    problems = [port_problem(args.host, args.port, "PORT", "--port")]
    if not args.api_url:
        problems.append(port_problem(args.host, args.api_port, "API_PORT", "--api-port"))
    if any(problems):
        for problem in filter(None, problems):
            print(f"error: {problem}", file=sys.stderr)
        return 2
    service = None

    def start_service() -> subprocess.Popen:
        command = [sys.executable, "-m", "api", "--host", args.host, "--port", str(args.api_port)]
        started = subprocess.Popen(command, env=env)
        children.append(started)
        return started

    try:
        if args.api_url:
            api_url = args.api_url.rstrip("/")
        else:
            api_url = f"http://{browser_host(args.host)}:{args.api_port}"
            service = start_service()
        # the app starts beside the service (it needs the service only when a page opens): both boot at once
        app = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.preload",
                "run",
                str(MAIN),
                "--server.address",
                args.host,
                "--server.port",
                str(args.port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--client.toolbarMode",
                "viewer",
                "--server.maxUploadSize",
                str(upload_limit_mb(env)),
            ],
            env={**env, "LEWEL_API_URL": api_url},
            cwd=MAIN.parent.parent,
        )
        children.append(app)
        started = f" (pid {service.pid})" if service is not None else ""
        print(f"waiting for the LEWEL service at {api_url}{started} …", flush=True)
        wait_ready(api_url, service, args.ready_timeout)
        wait_app(f"http://{browser_host(args.host)}:{args.port}", app, args.ready_timeout)
        print(
            f"LEWEL explorer: http://{browser_host(args.host)}:{args.port}  (service: {api_url}/docs)",
            flush=True,
        )
        return supervise(
            app,
            service,
            start_service,
            lambda started: wait_ready(api_url, started, args.ready_timeout),
            restarts=args.restarts,
            app_url=f"http://{browser_host(args.host)}:{args.port}",
        )
    except KeyboardInterrupt:
        return 0
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
