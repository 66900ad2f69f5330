"""Reading an HTTP request body with a byte limit, for the extender's and the webhook's routes.

A body over the limit is refused before it is read: by its ``Content-Length`` when it declares one,
else (``Transfer-Encoding: chunked``) as soon as the bytes received pass the limit. Reading awaits
each chunk as uvicorn receives it, so other requests (``/healthz``) are served meanwhile, and a
refused body is never held in memory beyond the limit.

The refusal (``refusal``) is sent before the rest of a streamed body is read. Closing a connection
while the client's bytes keep arriving makes the kernel answer them with a reset, and a reset may
discard the reply before the client reads it (RFC 9112 9.6): so the connection lingers, reading and
dropping what keeps coming for a bounded time and size, and is closed after (nginx's lingering
close, bounded more tightly). Over TLS, asyncio's shutdown already waits for the peer; over plain
HTTP, uvicorn closed at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

# How long a refused connection keeps reading before it closes: the client has its answer; 1 s
# gives a loaded client time to read it (nginx lingers up to 30 s, lingering_time, for slow links).
LINGER_SECONDS: Final = 1.0

# Longest Content-Length value read: 20 digits hold any 64-bit size; longer is garbage, not a size.
_MAX_LENGTH_DIGITS: Final = 20


class BodyTooLargeError(ValueError):
    """The body is (or declares itself) larger than the limit; answered with HTTP 413."""

    def __init__(self, limit: int, declared: int | None) -> None:
        self.limit = limit
        self.declared = declared
        size = f"Content-Length {declared}" if declared is not None else "a chunked body"
        super().__init__(f"request body too large: {size} is over the limit of {limit} bytes")


class BodyIncompleteError(ValueError):
    """The client went away before sending the whole body: there is nobody to answer."""


def declared_length(request: Request) -> int | None:
    """The request's Content-Length, or None when it has none (or it is not a number: the HTTP
    parser refuses such a request before the app sees it)."""
    raw = request.headers.get("content-length")
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > _MAX_LENGTH_DIGITS:
        return None
    return int(raw)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes; BodyTooLargeError before reading past the limit,
    BodyIncompleteError when the client disconnects first."""
    declared = declared_length(request)
    if declared is not None and declared > limit:
        raise BodyTooLargeError(limit, declared)
    chunks: list[bytes] = []
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise BodyTooLargeError(limit, declared)
            chunks.append(chunk)
    except ClientDisconnect:
        raise BodyIncompleteError("the client disconnected before sending the whole body") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _LingeringResponse(Response):
    """A response sent in full, then the rest of the request body read and dropped (at most
    ``linger_bytes`` or ``LINGER_SECONDS``) before the connection closes (``Connection: close``)."""

    def __init__(self, content: bytes, status_code: int, linger_bytes: int) -> None:
        super().__init__(content, status_code=status_code, media_type="application/json",
                         headers={"Connection": "close"})
        self.linger_bytes = linger_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body, "more_body": True})
        deadline = time.monotonic() + LINGER_SECONDS
        dropped = 0
        while dropped <= self.linger_bytes and (left := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(receive(), left)
            except TimeoutError:
                break
            if message["type"] != "http.request":
                break  # the client went away
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.body", "body": b"", "more_body": False})  # then uvicorn closes


def refusal(content: bytes, error: BodyTooLargeError) -> Response:
    """HTTP 413 with ``content`` (JSON), the connection closed after it (see the module's docstring)
    once it has taken at most one more body limit (what a legitimate request would cost) or 1 s."""
    return _LingeringResponse(content, 413, error.limit)
