"""Reading an HTTP request body with a byte limit, for the extender's and the webhook's routes.

A body over the limit is refused before it is read: by its ``Content-Length`` when it declares one,
else (``Transfer-Encoding: chunked``) as soon as the bytes received pass the limit. Reading awaits
each chunk as uvicorn receives it, so other requests (``/healthz``) are served meanwhile, and a
refused body is never held in memory beyond the limit.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import ClientDisconnect, Request

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
