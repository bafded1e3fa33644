"""What the routes of the background builds share (atlases, ``routes/atlas.py``; profiles, ``routes/profiles.py``):
the errors they answer, the cost caps a start is checked against, the refusal of a body of another media type, and
the answer itself: a status computed in a worker thread (a start or a poll), with the server's paths redacted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..errors import ApiError, echo_prefix
from ..service import Service
from .dependencies import ERROR_RESPONSES

#: the errors the build routes answer besides their own (no uploads here: no 413)
RESPONSES = {status: ERROR_RESPONSES[status] for status in (401, 404, 422, 500)}


def check_caps(*caps: tuple[str, int, int, str]) -> None:
    """``(name, value, limit, variable)`` each: 422 naming the first value over its limit and the variable that
    sets it."""
    for name, value, limit, variable in caps:
        if value > limit:
            raise ApiError(422, "invalid_parameters", f"{name}={value} is over the limit of {limit} ({variable})")


async def refuse_other_media(request: Request, accepted: tuple[str, ...], wanted: str) -> None:
    """415 for a body whose content type is not one of ``accepted`` (no body and no type is fine); the message
    says to ``send {wanted}``."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in accepted and (kind or await request.body()):
        raise ApiError(
            415, "unsupported_media_type", f"send {wanted}, not {echo_prefix(kind) or 'an untyped body'}"
        )


async def build_answer(
    service: Service, function: Callable[..., dict[str, Any]], *args: Any, status_code: int = 200
) -> JSONResponse:
    """``function(service, *args)`` (a build's start or status) in a worker thread, answered as JSON with the
    server's paths redacted."""
    body = await run_in_threadpool(function, service, *args)
    return JSONResponse(service.redactor.value(body), status_code=status_code)
