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
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from lewel.inference import Extraction

_STOP = object()


class Batcher(Protocol):
    """What a loaded model hands its extractions to (``api.registry.LoadedModel.batcher``): this module's
    ``MicroBatcher``, or a serving engine's batcher (``api.ray_batching``)."""

    def submit(self, images: torch.Tensor, **options: Any) -> Extraction: ...

    def close(self) -> None: ...


@dataclass
class Job:
    """One caller's ``B×3×S×S`` images and extract options; ``run`` names the model (``LewelModel.extract``)
    where one batcher serves several, ``future`` receives the result where the caller waits on one."""

    images: torch.Tensor
    options: dict[str, Any]
    future: Future = field(default_factory=Future)
    run: Callable[..., Extraction] | None = None

    def fits(self, other: Job) -> bool:
        """Whether ``other`` can run in the same call: same model, same image shape, same extract options."""
        return (
            other.run == self.run and other.images.shape[1:] == self.images.shape[1:] and other.options == self.options
        )


def fitting_groups(jobs: Sequence[Job]) -> list[list[Job]]:
    """``jobs`` split into groups that can each run as one call (``Job.fits``), in order of first arrival."""
    groups: list[list[Job]] = []
    for job in jobs:
        for group in groups:
            if group[0].fits(job):
                group.append(job)
                break
        else:
            groups.append([job])
    return groups


def run_together(run: Callable[..., Extraction], jobs: Sequence[Job]) -> list[Extraction]:
    """``run`` once on the concatenation of ``jobs``' images (which must fit together), each job's slice."""
    extraction = run(torch.cat([job.images for job in jobs]), **jobs[0].options)
    slices, start = [], 0
    for job in jobs:
        size = job.images.shape[0]
        slices.append(extraction.select(slice(start, start + size)))
        start += size
    return slices


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
        self._pending: list[Job] = []
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, images: torch.Tensor, **options: Any) -> Extraction:
        """Run ``images`` (``B×3×S×S``) in the next batch and wait for their extraction (blocking)."""
        if not self._thread.is_alive():
            raise RuntimeError("the micro-batcher is closed")
        job = Job(images, options)
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

    def _execute(self, batch: list[Job], total: int) -> None:
        try:
            results = run_together(self._run, batch)
        except BaseException as error:  # every waiting request learns about the failure
            for job in batch:
                job.future.set_exception(error)
            return
        if self._on_batch is not None:
            self._on_batch(total)
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)


def run_groups(jobs: Sequence[Job]) -> list[Extraction | Exception]:
    """Each job's extraction, or the exception its group's call raised: ``jobs`` (each naming its model in
    ``run``) split into ``fitting_groups``, one call per group; what an engine's batch method runs
    (``api.ray_serve``, where one ``@serve.batch`` queue gathers every model's requests)."""
    outcomes: dict[int, Extraction | Exception] = {}
    for group in fitting_groups(jobs):
        run = group[0].run
        if run is None:
            raise ValueError("a job without run (the model's extract) cannot be run in a group")
        try:
            results: list[Extraction | Exception] = list(run_together(run, group))
        except Exception as error:  # noqa: BLE001 - the group's requests learn about it, the others go on
            results = [error] * len(group)
        outcomes.update((id(job), result) for job, result in zip(group, results, strict=True))
    return [outcomes[id(job)] for job in jobs]


def images_in(jobs: Sequence[Job]) -> int:
    """How many images ``jobs`` hold: the size of a batch, counted in images rather than requests."""
    return sum(job.images.shape[0] for job in jobs)
