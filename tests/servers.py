"""Processes the tests serve from: free ports, waiting for readiness, and the inference service on a
folder of models in its own process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2

ROOT = Path(__file__).parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_ready(server: subprocess.Popen, client: httpx2.Client, *, seconds: float) -> None:
    """Poll ``/readyz`` until it answers 200; fail with the server's output if it exits or takes too long."""
    deadline = time.monotonic() + seconds
    while True:
        assert server.poll() is None, server.stdout.read() if server.stdout else server.returncode
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx2.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.2)


def start_service(models_dir: Path, default: str, *, bundled_dir: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``uvicorn api.main:app`` serving ``models_dir`` (and no bundled models unless ``bundled_dir``) on a free
    port, its output piped; returns the process and its base URL (not yet ready)."""
    port = free_port()
    env = {
        **os.environ,
        "LEWEL_MODELS_DIR": str(models_dir),
        "LEWEL_BUNDLED_MODELS_DIR": str(bundled_dir or models_dir / "no-bundled-models"),
        "LEWEL_DEFAULT_MODEL": default,
        "LEWEL_WARMUP_SIZE": "64",
        "LEWEL_TORCH_THREADS": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return server, f"http://127.0.0.1:{port}"


def stop(process: subprocess.Popen, *, seconds: float = 30) -> str:
    """SIGTERM, then wait (SIGKILL after ``seconds``); returns what the process printed when it was piped."""
    process.send_signal(signal.SIGTERM)
    try:
        output = process.communicate(timeout=seconds)[0]
    except subprocess.TimeoutExpired:
        process.kill()
        output = process.communicate()[0]
    return output or ""


@contextlib.contextmanager
def running_service(models_dir: Path, default: str, *, seconds: float = 90) -> Iterator[str]:
    """``start_service``, waited for until ready; yields its base URL and stops it afterwards."""
    server, base = start_service(models_dir, default)
    try:
        with httpx2.Client(base_url=base, timeout=30) as client:
            wait_until_ready(server, client, seconds=seconds)
        yield base
    finally:
        stop(server)


APP_MAIN = Path(__file__).parent.parent / "app" / "main.py"


def app_page(url: str, monkeypatch, **state):
    """The app's page (Streamlit's ``AppTest``) pointed at the service at ``url`` without a token, with
    ``state`` preset in its session (e.g. ``size=64``, ``gallery_item="skimage:coffee"``)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("LEWEL_API_URL", url)
    monkeypatch.delenv("LEWEL_API_TOKEN", raising=False)
    page = AppTest.from_file(str(APP_MAIN), default_timeout=120)
    for key, value in state.items():
        page.session_state[key] = value
    return page
