"""Warnings raised while decoding an upload: one log line per request, never one per warning.

Pillow warns once per bad EXIF tag (``warnings.warn``); a PNG whose eXIf chunk holds thousands of tags would
write thousands of lines to the server log, and Python's default filter would remember every distinct message
for ever. ``install`` (once per process) routes the warnings raised inside ``collect`` (per request: the
collector is a context variable, so concurrent requests in worker threads keep theirs apart) into a count
and the first few messages, logged as one line when the block ends; warnings elsewhere go where they went.
``warnings.catch_warnings`` would do the collecting, but it swaps process-wide state and is not thread-safe.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("api.decode")
KEPT = 3  #: messages quoted in the log line
MESSAGE_CHARS = 160  #: of each quoted message


@dataclass
class Collected:
    """The warnings one request raised: how many, and the first ``KEPT`` messages."""

    count: int = 0
    first: list[str] = field(default_factory=list)


_collector: ContextVar[Collected | None] = ContextVar("lewel_decode_warnings", default=None)


def install() -> None:
    """Route warnings raised inside ``collect`` to its collector (idempotent); Pillow's warnings are not
    remembered per message (``always``: the collector counts them, nothing grows per hostile file)."""
    current = warnings.showwarning
    if getattr(current, "collects_decode_warnings", False):
        return

    def showwarning(message: Any, category: type[Warning], filename: str, lineno: int, *args: Any) -> None:
        collected = _collector.get()
        if collected is None:
            current(message, category, filename, lineno, *args)
            return
        collected.count += 1
        if len(collected.first) < KEPT:
            collected.first.append(f"{category.__name__}: {str(message)[:MESSAGE_CHARS]}")

    showwarning.collects_decode_warnings = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning
    warnings.filterwarnings("always", module=r"PIL(\.|$)")


@contextmanager
def collect(what: str) -> Iterator[Collected]:
    """Collect the warnings of the block; when there were any, log one line naming ``what`` and the count."""
    collected = Collected()
    token = _collector.set(collected)
    try:
        yield collected
    finally:
        _collector.reset(token)
        if collected.count:
            log.warning("%s: %d warning(s) while decoding, e.g. %s", what, collected.count, " | ".join(collected.first))
