"""Figures are drawn in a pool of their own, so that they cannot starve the model passes.

Drawing Figure 5 (``lewel.drawing.render``: matplotlib, the pictures resampled, a PNG encoded) takes seconds of CPU
where a map request's model pass takes a fraction of one. Drawn in the threads every request shares, sixteen
clients asking for figures held the interpreter and the cores while map requests waited behind them (issue 44:
figure p50 33.7 s, ``/v1/maps`` p50 from 0.96 s to 9.1 s); a thread of its own still shares the interpreter's lock
with the model passes' Python. So a figure's model pass runs like any request's, and its drawing goes, as plain
arrays (``api.figure_jobs``), to one of ``LEWEL_DRAWING_WORKERS`` processes (spawned: no torch in them) at a lower
CPU priority (``LEWEL_DRAWING_NICE``), first come first served. At most ``LEWEL_DRAWING_MAX_QUEUED`` figures
wait (one more is answered 503 ``busy`` at once) and a figure that has waited ``LEWEL_DRAWING_QUEUE_S`` seconds is
answered 503 ``busy``, both with ``Retry-After``, rather than an answer after a minute. A figure holds its drawing's
memory estimate from the memory budget while it is drawn, and a drawing process is replaced after
``DRAWINGS_PER_PROCESS`` figures, so that what matplotlib keeps goes back to the system.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .errors import ApiError
from .figure_jobs import FigureJob, render, start_worker
from .limits import MemoryBudget

DRAWINGS_PER_PROCESS = 200  #: figures a drawing process draws before a fresh one replaces it
log = logging.getLogger("api.drawing")


class DrawingPool:
    """``workers`` drawing processes (niceness ``nice``), at most ``max_queued`` figures waiting for one, each for
    at most ``queue_s`` seconds (503 with ``Retry-After: retry_after_s`` beyond). Used from one event loop."""

    def __init__(
        self, budget: MemoryBudget, *, workers: int, max_queued: int, queue_s: float, retry_after_s: int, nice: int = 0
    ) -> None:
        self.budget, self.workers, self.max_queued, self.queue_s = budget, workers, max_queued, queue_s
        self.retry_after_s, self.nice = retry_after_s, nice
        self.running = 0
        self._waiting: deque[asyncio.Future] = deque()
        self._executor: ProcessPoolExecutor | None = None

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def _processes(self) -> ProcessPoolExecutor:
        """The drawing processes, started with the first figure (a service that draws none starts none)."""
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=start_worker,
                initargs=(self.nice, os.getpid()), max_tasks_per_child=DRAWINGS_PER_PROCESS,
            )
        return self._executor

    def _busy(self, why: str) -> ApiError:
        return ApiError(
            503, "busy",
            f"the service is busy drawing figures: {why}; retry in {self.retry_after_s} s, or ask for format=json or "
            "npz (no drawing)",
            headers={"Retry-After": str(self.retry_after_s)},
        )

    def _release(self) -> None:
        self.running -= 1
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():  # a figure that gave up waiting (timed out, client gone) is passed over
                self.running += 1
                future.set_result(None)
                return

    async def _acquire(self) -> None:
        if not self._waiting and self.running < self.workers:
            self.running += 1
            return
        if len(self._waiting) >= self.max_queued:
            raise self._busy(
                f"{self.running} being drawn (LEWEL_DRAWING_WORKERS) and {len(self._waiting)} waiting "
                "(LEWEL_DRAWING_MAX_QUEUED)"
            )
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            await asyncio.wait_for(future, self.queue_s)
        except TimeoutError:
            raise self._busy(
                f"this figure waited {self.queue_s:g} s for a drawing worker (LEWEL_DRAWING_QUEUE_S) behind "
                f"{self.running} being drawn"
            ) from None
        except BaseException:
            if future.done() and not future.cancelled():
                self._release()  # granted just as the wait was cancelled: hand the worker on
            raise
        finally:
            if future in self._waiting:
                self._waiting.remove(future)

    async def _render(self, job: FigureJob) -> bytes:
        """``job`` drawn by a drawing process; a process that died (killed, out of memory) is replaced."""
        try:
            return await asyncio.wrap_future(self._processes().submit(render, job))
        except BrokenProcessPool:
            log.error("a drawing process stopped while drawing a figure; starting new ones")
            broken, self._executor = self._executor, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            raise ApiError(
                503, "busy", f"the drawing process stopped while drawing this figure; retry in {self.retry_after_s} s",
                headers={"Retry-After": str(self.retry_after_s)},
            ) from None

    async def draw(self, job: FigureJob, *, memory: int = 0) -> bytes:
        """The file of ``job`` once a drawing process is free, holding ``memory`` bytes of the memory budget while
        it is drawn; 503 ``busy`` when the queue is full or the wait passes ``queue_s``."""
        await self._acquire()
        try:
            async with self.budget.reserve(memory):
                return await self._render(job)
        finally:
            self._release()

    def close(self) -> None:
        """Stop the drawing processes without waiting for them (they end after the figure they draw, if any)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
