"""What the benchmarks that drive a live service on localhost share (``api_latency.py``, ``mixed_load.py``,
``api_memory.py``): a free port, a process's memory from ``/proc/PID/status``, and the service in a subprocess,
started, waited for until ``/readyz`` answers 200, and stopped with SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx2

READY_S = 300  #: how long a service may take to answer /readyz 200 (its models loaded and warmed up)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that no one listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status_kib(pid: int, field: str) -> int:
    """``field`` (``VmRSS``, ``VmHWM``, ...) of ``/proc/PID/status``, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


class ServiceProcess:
    """``python ARGUMENTS --port PORT --log-level warning`` (``-m api``, or ``-m uvicorn api.main:app ...``) in
    ``cwd`` with ``env``, its output to ``log`` (default: this process's), ready once constructed."""

    def __init__(self, arguments: list[str], *, cwd: Path, env: dict[str, str], log: Path | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log: IO[str] | None = log.open("w") if log is not None else None
        self.process = subprocess.Popen(
            [sys.executable, *arguments, "--port", str(self.port), "--log-level", "warning"],
            cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT if self.log is not None else None,
        )
        deadline = time.monotonic() + READY_S
        with httpx2.Client(base_url=self.base, timeout=30) as client:
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the service did not become ready{f' (see {log})' if log else ''}")
                time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM, then a kill if it has not stopped within a minute."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.log is not None:
            self.log.close()
