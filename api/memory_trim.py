"""Giving freed memory back to the system, on glibc: fewer malloc arenas, and a trim after large requests.

A request's arrays are freed when it is answered, but glibc's allocator keeps what it freed in its arenas for
the next allocation instead of returning it to the system, and it opens up to eight arenas per core for the
threads that allocate at once (the service's worker threads): under a mixed load the resident memory of the
service climbed round after round and stayed there (issue 44, item 3; ``benchmarks/mixed_load.py --rounds``).
Two bounds, both through ``ctypes`` because no library of the field wraps glibc's ``mallopt`` and ``malloc_trim``:

- ``limit_arenas``: ``mallopt(M_ARENA_MAX, n)`` at the service's start (``LEWEL_MALLOC_ARENA_MAX``, default 2),
  what the environment variable ``MALLOC_ARENA_MAX`` does for a process started with it (it wins when set);
- ``MemoryTrimmer``: ``malloc_trim(0)`` once a request whose memory estimate is at least ``LEWEL_MALLOC_TRIM_MB``
  has been answered, in a worker thread, one trim at a time (it takes milliseconds).

Elsewhere than glibc (musl, macOS) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from functools import lru_cache

import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

M_ARENA_MAX = -8  #: glibc's mallopt parameter number for the most arenas (malloc.h)


@lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``malloc_trim``), else ``None``."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_arenas(count: int | None) -> bool:
    """Open at most ``count`` malloc arenas from now on (``None`` or 0: glibc's default; ``MALLOC_ARENA_MAX`` in
    the environment wins); whether the limit was set."""
    libc = _glibc()
    if not count or libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, int(count)))


def trim() -> bool:
    """``malloc_trim(0)``: return the free memory at the top of the heap and in every arena's free pages to the
    system; whether glibc gave any back."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


class MemoryTrimmer:
    """Trims (``trim``) after a request marked ``large`` has been answered: ``note(memory)`` marks one whose
    estimate is at least ``threshold`` bytes (0: never), ``MemoryTrimMiddleware`` trims once it is answered."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.pending = False
        self.trims = 0
        self._lock = threading.Lock()

    def note(self, memory: int) -> None:
        """A request that holds an estimated ``memory`` bytes is running."""
        if self.threshold and memory >= self.threshold:
            self.pending = True

    def run(self) -> None:
        """Trim if a large request was answered since the last trim (and no other trim runs)."""
        if not self.pending or not self._lock.acquire(blocking=False):
            return
        try:
            self.pending = False
            trim()
            self.trims += 1
        finally:
            self._lock.release()


class MemoryTrimMiddleware:
    """After each HTTP request, ``trimmer.run`` in a worker thread when a large request has been answered."""

    def __init__(self, app: ASGIApp, trimmer: MemoryTrimmer) -> None:
        self.app, self.trimmer = app, trimmer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and self.trimmer.pending:
                await anyio.to_thread.run_sync(self.trimmer.run)
