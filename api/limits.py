"""Bounded cost and memory per request: what an upload request will cost, checked before it runs, and a
memory budget that heavy work shares.

Before a ``/v1/maps`` or ``/v1/embeddings`` request decodes anything, ``plan_request`` reads the image's
declared size from its header, the model's d from its description and the profile, and works out

- the model's work, ``(views + 1) × size²`` input pixels (``LEWEL_MAX_REQUEST_PIXELS``),
- the image-frame maps, ``(views + 1) × d × rows × cols`` values (``LEWEL_MAX_FRAME_VALUES``), which the
  warps, the agreement and the answer grow with,
- the size of the answer (``LEWEL_MAX_RESPONSE_MB``),

and answers 422 ``too_costly`` naming the limit when one is passed; and an estimate of the request's peak
memory (decoding by the source's bytes per pixel, the views, the model's activations, the frame maps, the
answer). ``MemoryBudget`` lets requests run while the sum of their estimates stays within
``LEWEL_MEMORY_BUDGET_MB`` (one alone may exceed it); the others wait in order, and when
``LEWEL_MAX_QUEUED`` already wait the request is answered 503 with ``Retry-After``. The constants are
fitted to ``benchmarks/api_memory.py`` (``benchmarks/results/api_memory_cpu.json``).
"""

from __future__ import annotations

import asyncio
import io
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from PIL import Image

from lewel.drawing.render import figure_cost, thumbnail_size
from lewel.files.images import ALLOWED_FORMATS
from lewel.maps.frames import frame_grid

from .errors import ApiError

MEBIBYTE = 1024 * 1024
BASE_BYTES = 32 * MEBIBYTE  #: what any upload request holds: the upload, the parsed form, Python objects
#: bytes per source pixel of the decoded image as the file stores it (the 8-bit step adds one more)
SOURCE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
DEFAULT_SOURCE_BYTES = 4  #: RGB(A), CMYK, I, F ...
IMAGE_BYTES = 10  #: per source pixel once decoded: the RGB image, the tensor views are cut from, resize copies
MASK_BYTES = 4  #: per mask pixel: its RGB decode, the grey levels and the boolean mask
MODEL_BYTES = 320  #: per input pixel of the batch: activations, ResNet-50 with the released head, float32
FRAME_BYTES = 16  #: per frame-map value: the warped maps, their copy for the answer, float16 and JSON
STRIDE = 32  #: the ResNet backbones' output stride: maps are ceil(size / 32) cells a side
JSON_EXPANSION = 4 / 3  #: base64
STATISTICS_BYTES = 600  #: one map's statistics in JSON
FIGURE_MAX_MAPS = 16  #: a figure draws at most this many maps (the first of the selection)
FIGURE_SOURCE_SIDE = 512  #: a figure's input column shows the image downscaled to this longer side
NPZ_SOURCE_SIDE = 384  #: the NPZ answer's ``source_image``: the decoded upload downscaled to this longer side
#: per map in an NPZ answer, its orderings (``api.routes.maps._orders``): ten lists and up to 100 categories, int64
NPZ_ORDER_BYTES = 8 * (10 + 100)
FEATURE_CHANNELS = 2048  #: D assumed for an embeddings answer (ResNet-50's; ResNet-18 has 512)


@dataclass(frozen=True)
class Plan:
    """What a request will cost: ``memory`` (bytes, the estimate reserved from the budget), the model's
    input pixels, the frame-map values and the answer's estimated bytes; for a figure, ``drawing``: the part of
    ``memory`` its drawing holds (reserved while it is drawn, ``api.drawing_pool``), 0 otherwise."""

    memory: int
    pixels: int
    frame_values: int
    response_bytes: int
    drawing: int = 0


def declared_image(data: bytes) -> tuple[int, int, str] | None:
    """``(width, height, mode)`` from the image's header, without decoding; ``None`` when the header cannot
    be read (decoding then says why)."""
    try:
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            width, height = image.size
            return int(width), int(height), str(image.mode)
    except Exception:  # any unreadable header: decode_image reports it with its own message
        return None


def decode_bytes(declared: tuple[int, int, str] | None, *, mask: bool = False) -> int:
    """Peak bytes of decoding an image (or a mask) with this declared size and mode and, for an image,
    cutting views from it: the larger of the file's own decode and the RGB stage."""
    if declared is None:
        return 0
    width, height, mode = declared
    if mask:
        return width * height * MASK_BYTES
    return width * height * max(SOURCE_BYTES.get(mode, DEFAULT_SOURCE_BYTES) + 1, IMAGE_BYTES)


def too_costly(what: str, value: int, limit: int, setting: str, advice: str) -> ApiError:
    return ApiError(
        422,
        "too_costly",
        f"this request needs {what} = {value:,}, over the limit of {limit:,} ({setting}); {advice}",
        limit=setting,
    )


def answer_hint(kind: str, output: str) -> str:
    """What to lower when the answer of a ``kind`` request in format ``output`` is too large: only what the
    request can still change (an NPZ request is not told to ask for NPZ)."""
    lower = ["fewer views"] + (["maps=top or maps=object"] if kind == "maps" else [])
    if kind == "maps" and output in ("json", "npz"):  # a figure draws no frame maps
        lower.append("a smaller frame_cells")
    if output == "json":
        lower.append("format=npz (binary arrays, about a third of JSON)")
    elif output in ("npz", "pdf", "svg"):  # a vector figure embeds its pictures whatever the dpi
        lower.append("a smaller size")
    else:
        lower.append("a lower dpi")
    return "ask for " + ", ".join(lower[:-1]) + " or " + lower[-1]


def answer_too_large(what: str, limit: int, kind: str, output: str) -> ApiError:
    """422 ``too_costly`` for an answer (``what``: its size, estimated or measured) over ``limit`` bytes
    (``LEWEL_MAX_RESPONSE_MB``), with ``answer_hint``."""
    return ApiError(
        422, "too_costly",
        f"{what}, over the limit of {limit / MEBIBYTE:,.1f} MiB (LEWEL_MAX_RESPONSE_MB); {answer_hint(kind, output)}",
        limit="LEWEL_MAX_RESPONSE_MB",
    )


def plan_request(
    *,
    kind: str,
    declared: tuple[int, int, str] | None,
    mask: tuple[int, int, str] | None,
    views: int,
    size: int,
    d: int | None,
    num_aligned: int | None,
    maps: int | None,
    frame_cells: int,
    output: str,
    max_request_pixels: int,
    max_frame_values: int,
    max_response_bytes: int,
    dpi: int = 100,
) -> Plan:
    """The cost of a request (``kind`` ``maps`` or ``embeddings``) with ``views`` augmented views at ``size``
    of an image declaring ``declared``, on a model with ``d`` maps of which ``maps`` are returned, answered
    as ``output`` (json, npz or a figure format); raises ``ApiError`` 422 ``too_costly`` over a limit."""
    count = views + 1
    pixels = count * size * size
    if pixels > max_request_pixels:
        raise too_costly(
            "(views + 1) × size² input pixels", pixels, max_request_pixels, "LEWEL_MAX_REQUEST_PIXELS",
            f"ask for fewer views or a smaller size (views={views}, size={size})",
        )
    cells = math.ceil(size / STRIDE) ** 2
    frame_values, answer, drawing = 0, 0, 0
    if kind == "maps" and d:
        rows, cols = frame_grid((declared[0], declared[1]), frame_cells) if declared else (frame_cells, frame_cells)
        frame_values = count * d * rows * cols
        if frame_values > max_frame_values:
            raise too_costly(
                "(views + 1) × d × frame rows × cols map values", frame_values, max_frame_values,
                "LEWEL_MAX_FRAME_VALUES",
                f"lower frame_cells (now {frame_cells}: a {rows}×{cols} frame grid) or ask for fewer views",
            )
        shown = d if maps is None else min(maps, d)
        if output == "json":
            per_view = size * size * 3 + shown * (cells + rows * cols) * 2 + rows * cols * 2
            answer = int(count * (per_view * JSON_EXPANSION + shown * STATISTICS_BYTES))
        elif output == "npz":
            # per view: the view, its maps, frame maps and frame densities (float32), 40 statistics per map
            per_view = size * size * 3 + shown * (cells + 2 * rows * cols) * 4 + shown * 40 * 8
            answer = count * per_view + NPZ_SOURCE_SIDE**2 * 3 + d * NPZ_ORDER_BYTES
        else:  # a figure (lewel.drawing.render.figure_cost): at most FIGURE_MAX_MAPS maps, the input as a thumbnail
            source = thumbnail_size(declared, FIGURE_SOURCE_SIDE)
            cost = figure_cost(
                output, dpi, rows=count, maps=min(shown, FIGURE_MAX_MAPS), view_side=size, source_size=source
            )
            answer, drawing = cost.output, cost.memory
    elif kind == "embeddings":
        aligned = num_aligned or 0
        per_view = size * size * 3 + 4 * (FEATURE_CHANNELS + (d or 0) + aligned * ((d or 0) + FEATURE_CHANNELS))
        answer = int(count * per_view * (JSON_EXPANSION if output == "json" else 1))
    if answer > max_response_bytes:
        estimate = f"the answer would be about {answer / MEBIBYTE:,.1f} MiB"
        raise answer_too_large(estimate, max_response_bytes, kind, output)
    memory = (
        BASE_BYTES
        + decode_bytes(declared)
        + decode_bytes(mask, mask=True)
        + pixels * MODEL_BYTES
        + frame_values * FRAME_BYTES
        + (drawing if drawing else 2 * answer)
    )
    return Plan(memory=memory, pixels=pixels, frame_values=frame_values, response_bytes=answer, drawing=drawing)


class MemoryBudget:
    """A weighted semaphore over ``budget`` bytes: ``reserve(n)`` waits, first come first served, until
    ``n`` bytes are free (a request larger than the whole budget runs when nothing else does); with
    ``max_queued`` requests already waiting it raises ``ApiError`` 503 with ``Retry-After`` at once.
    Used from one event loop (the service's)."""

    def __init__(self, budget: int, *, max_queued: int, retry_after_s: int) -> None:
        self.budget, self.max_queued, self.retry_after_s = budget, max_queued, retry_after_s
        self.used = 0
        self.running = 0
        self._waiting: deque[tuple[int, asyncio.Future]] = deque()

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def _fits(self, need: int) -> bool:
        return self.running == 0 or self.used + need <= self.budget

    def _take(self, need: int) -> None:
        self.used += need
        self.running += 1

    def _release(self, need: int) -> None:
        self.used -= need
        self.running -= 1
        while self._waiting and self._fits(self._waiting[0][0]):
            waiting_need, future = self._waiting.popleft()
            if not future.done():
                self._take(waiting_need)
                future.set_result(None)

    @asynccontextmanager
    async def reserve(self, need: int) -> AsyncIterator[None]:
        """Hold ``need`` bytes of the budget for the duration of the ``async with`` block."""
        need = max(0, min(need, self.budget))
        if not self._waiting and self._fits(need):
            self._take(need)
        else:
            if len(self._waiting) >= self.max_queued:
                raise ApiError(
                    503,
                    "busy",
                    f"the service is busy: {self.running} request(s) running within the memory budget of "
                    f"{self.budget / MEBIBYTE:,.0f} MiB (LEWEL_MEMORY_BUDGET_MB) and {len(self._waiting)} waiting "
                    f"(LEWEL_MAX_QUEUED); retry in {self.retry_after_s} s",
                    headers={"Retry-After": str(self.retry_after_s)},
                )
            future: asyncio.Future = asyncio.get_running_loop().create_future()
            entry = (need, future)
            self._waiting.append(entry)
            try:
                await future
            except BaseException:
                if future.done() and not future.cancelled():
                    self._release(need)  # granted just as the wait was cancelled: hand it on
                else:
                    self._waiting.remove(entry)
                raise
        try:
            yield
        finally:
            self._release(need)
