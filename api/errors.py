"""Errors: every failure is answered as JSON ``{"error": code, "message": text}`` naming the problem."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger("api")

ECHO_LIMIT = 40  #: most characters of a client's value (an id, a name, a path) an answer repeats


def echo_prefix(value: str, limit: int = ECHO_LIMIT) -> str:
    """``value`` as an answer may repeat it: whole when short, else its first ``limit`` characters and "…" (a
    4,000-character id must not come back in full, twice)."""
    return value if len(value) <= limit else value[:limit] + "…"


def shown_name(value: str, limit: int = ECHO_LIMIT) -> str:
    """``value`` for a message: quoted, and cut to ``limit`` characters with its length when longer."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value):,} characters)"


STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_parameters",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An answer other than 200: HTTP ``status``, a short machine-readable ``code`` and a ``message``
    for people; ``headers`` go with the response (e.g. Retry-After), ``extra`` into the JSON body."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [echo_prefix(str(p)) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "request"


def describe_validation(errors: list[dict[str, Any]]) -> str:
    """One sentence naming every invalid parameter and why."""
    return "; ".join(f"{_location(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in errors)


def _redact(request: Request, message: str) -> str:
    """``message`` without the server's paths (``api.redaction``), when the app has a service."""
    service = getattr(request.app.state, "service", None)
    return service.redactor.text(message) if service is not None else message


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: dict[str, Any]) -> list[str]:
    """Every method some route of ``app`` answers at the path of ``scope`` (Starlette's 405 names only the
    first route it matched). Asked of the routes as they are (included routers too), one method at a time."""
    return [
        method for method in HTTP_METHODS
        if any(route.matches({**scope, "method": method})[0] == Match.FULL for route in app.router.routes)
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON handlers for ``ApiError``, HTTP errors, validation errors and anything unexpected."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        extra = {k: _redact(request, v) if isinstance(v, str) else v for k, v in error.extra.items()}
        return error_response(error.status, error.code, _redact(request, error.message), error.headers, **extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(error.status_code, "error")
        message = str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {echo_prefix(request.url.path)} (see /docs)"
        headers = {k.lower(): v for k, v in (error.headers or {}).items()}
        if error.status_code == 405:
            allowed = allowed_methods(app, request.scope) or headers.get("allow", "").split(", ")
            headers["allow"] = ", ".join(allowed)
            path = echo_prefix(request.url.path)
            message = f"method {request.method} is not allowed on {path} (allowed: {headers['allow']})"
        return error_response(error.status_code, code, message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": [echo_prefix(str(p)) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in error.errors()
        ]
        return error_response(
            422, "invalid_parameters", "invalid request: " + describe_validation(details), details=details
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", _redact(request, f"internal error: {type(error).__name__}: {error}"))
