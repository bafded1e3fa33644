"""The batcher of a loaded model on a Ray Serve replica (``api.ray_serve``): requests of one model share forward
passes through the replica's ``@serve.batch`` method.

A request computes in a worker thread (``run_in_threadpool``) and calls ``LoadedModel.extract``, which blocks;
``ServeBatcher.submit`` hands the images to the batch method on the replica's event loop and waits for this
request's slice. Grouping by model, image shape and options, and slicing the batch's extraction back per request,
are ``api.batching``'s (``run_groups``), the same as the in-process ``MicroBatcher`` uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import torch

from lewel.inference import Extraction

from .batching import Job

BatchMethod = Callable[[Job], Awaitable["Extraction | Exception"]]


class ServeBatcher:
    """``submit`` runs ``images`` through ``batched`` (a ``@serve.batch`` method taking one ``Job`` per call) on
    ``loop``; ``run`` is the model's ``extract``, ``on_batch`` is told the size of every batch that ran it."""

    def __init__(
        self,
        batched: BatchMethod,
        loop: asyncio.AbstractEventLoop,
        run: Callable[..., Extraction],
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._batched, self._loop, self._model_run, self._on_batch = batched, loop, run, on_batch
        self._closed = False

    def _run(self, images: torch.Tensor, **options: Any) -> Extraction:
        """The model's extract of one batch, counted (one function per batcher: ``Job.fits`` compares it)."""
        extraction = self._model_run(images, **options)
        if self._on_batch is not None:
            self._on_batch(images.shape[0])
        return extraction

    def submit(self, images: torch.Tensor, **options: Any) -> Extraction:
        """Run ``images`` (``B×3×S×S``) in the next batch of the replica and wait for their extraction (blocking:
        from a worker thread, never from the event loop itself, which would wait on itself)."""
        if self._closed or self._loop.is_closed():
            raise RuntimeError("the replica's batcher is closed")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise RuntimeError("ServeBatcher.submit blocks: call it from a worker thread, not the replica's event loop")
        job = Job(images, options, run=self._run)
        outcome = asyncio.run_coroutine_threadsafe(self._batched(job), self._loop).result()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def close(self) -> None:
        """Refuse further jobs (the batch method belongs to the replica and stops with it)."""
        self._closed = True
