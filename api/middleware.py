"""ASGI middleware that answers before a request body is read: the upload cap and the bearer token."""

from __future__ import annotations

import secrets

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, error_response, shown_name

PROTECTED_PREFIXES = ("/v1/", "/metrics")


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (compared in constant time); an empty
    token matches nothing."""
    if not authorization or not token:
        return False
    scheme, _, given = authorization.partition(" ")
    given = given.strip()
    return scheme.lower() == "bearer" and bool(given) and secrets.compare_digest(given.encode(), token.encode())


def unauthorized(path: str) -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        f"{path} needs the header 'Authorization: Bearer <token>' with the service's token (LEWEL_API_TOKEN)",
        headers={"WWW-Authenticate": "Bearer"},
    )


class TokenMiddleware:
    """With a token configured, ``/v1/*`` and ``/metrics`` answer 401 unless the request carries it;
    ``/healthz``, ``/readyz`` and the docs stay open."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token.strip():
            raise ValueError("the API token is empty: set LEWEL_API_TOKEN to a secret, or unset it")
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PROTECTED_PREFIXES) and scope["method"] != "OPTIONS":
            if not token_matches(Headers(scope=scope).get("authorization"), self.token):
                error = unauthorized(scope["path"])
                await error_response(error.status, error.code, error.message, error.headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """Raised from ``receive``: an ``HTTPException`` so that FastAPI's body parsing passes it on as is."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"the request body exceeds the upload limit of {limit:,} bytes "
            "(LEWEL_MAX_UPLOAD_MB plus 64 KiB for the form)",
        )


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with 413: at once when ``Content-Length`` says so, otherwise as
    soon as the bytes received pass the limit (chunked uploads), without reading the rest."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await error_response(400, "bad_request", f"invalid Content-Length header {shown_name(declared)}")(
                    scope, receive, send
                )
                return
            if int(declared) > self.max_bytes:
                error = BodyTooLarge(self.max_bytes)
                await error_response(413, "too_large", error.detail)(scope, receive, send)
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as error:
            if started:
                raise
            await error_response(413, "too_large", error.detail)(scope, receive, send)
