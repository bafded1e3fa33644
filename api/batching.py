"""Micro-batching: concurrent requests' images run through the model as one batch.

On a GPU one forward pass of 32 images costs little more than one of a single image, so when many
clients call at once, gathering their views for a few milliseconds raises throughput. Off by default
(``LEWEL_MICROBATCH``): for one interactive user the wait only adds latency. The models are in eval mode
(BatchNorm uses running statistics), so an image's outputs do not depend on its batch companions.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import torch

from lewel.inference import Extraction

_STOP = object()


@dataclass
class _Job:
    images: torch.Tensor
    options: dict[str, Any]
    future: Future

    def fits(self, other: _Job) -> bool:
        """Whether ``other`` can run in the same call: same image shape, same extract options."""
        return other.images.shape[1:] == self.images.shape[1:] and other.options == self.options


class MicroBatcher:
    """Gathers ``submit``ted batches (``B×3×S×S``) with the same shape and options for up to ``wait_s`` or
    until ``max_size`` images, runs ``run(images, **options)`` once on their concatenation in a worker thread,
    and hands each caller its own slice. ``on_batch(images)`` is told the size of every batch run."""

    def __init__(
        self,
        run: Callable[..., Extraction],
        *,
        max_size: int = 32,
        wait_s: float = 0.005,
        on_batch: Callable[[int], None] | None = None,
        name: str = "microbatch",
    ) -> None:
        self._run, self._max_size, self._wait_s = run, max_size, wait_s
        self._on_batch = on_batch
        self._queue: queue.Queue = queue.Queue()
        self._pending: list[_Job] = []
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, images: torch.Tensor, **options: Any) -> Extraction:
        """Run ``images`` (``B×3×S×S``) in the next batch and wait for their extraction (blocking)."""
        if not self._thread.is_alive():
            raise RuntimeError("the micro-batcher is closed")
        job = _Job(images, options, Future())
        self._queue.put(job)
        return job.future.result()

    def close(self) -> None:
        """Stop the worker after the jobs already queued."""
        self._queue.put(_STOP)

    def _take(self, timeout: float | None) -> object | None:
        try:
            return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _loop(self) -> None:
        while True:
            first = self._pending.pop(0) if self._pending else self._take(None)
            if first is _STOP:
                self._fail_waiting()
                return
            batch, total, stop = [first], first.images.shape[0], False
            deadline = time.monotonic() + self._wait_s
            while total < self._max_size:
                item = self._take(deadline - time.monotonic())
                if item is None:
                    break
                if item is _STOP:
                    stop = True
                    break
                if not first.fits(item) or total + item.images.shape[0] > self._max_size:
                    self._pending.append(item)
                    break
                batch.append(item)
                total += item.images.shape[0]
            self._execute(batch, total)
            if stop:
                self._fail_waiting()
                return

    def _fail_waiting(self) -> None:
        waiting = self._pending
        while (item := self._take(0)) is not None:
            if item is not _STOP:
                waiting.append(item)
        for job in waiting:
            job.future.set_exception(RuntimeError("the micro-batcher was closed"))
        self._pending = []

    def _execute(self, batch: list[_Job], total: int) -> None:
        try:
            extraction = self._run(torch.cat([job.images for job in batch]), **batch[0].options)
        except BaseException as error:  # every waiting request learns about the failure
            for job in batch:
                job.future.set_exception(error)
            return
        if self._on_batch is not None:
            self._on_batch(total)
        start = 0
        for job in batch:
            size = job.images.shape[0]
            job.future.set_result(extraction.select(slice(start, start + size)))
            start += size
