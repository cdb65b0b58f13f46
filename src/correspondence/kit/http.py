"""Reading request bodies: media type check, size limit while streaming, no empty bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response

from correspondence.kit.errors import PlainError

JSON = "application/json; charset=utf-8"


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """orjson straight to bytes (datetimes as UTC with Z): no pydantic response model on the way."""
    content = orjson.dumps(body, option=orjson.OPT_UTC_Z)
    return Response(content, status_code=status, media_type=JSON, headers=headers)


def weighted(header: str) -> list[tuple[str, float]]:
    """The items of an Accept-style header with their q weights (RFC 9110 §12.4.2), in order;
    lower-cased, parameters other than q dropped, a malformed q counts as 0."""
    items: list[tuple[str, float]] = []
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";")]
        q = 1.0
        for param in parts[1:]:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        items.append((parts[0].lower(), q))
    return items


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_json_body(request: Request, limit: int) -> bytes:
    """The whole JSON body, refused with 415 for another media type and 413 above `limit`."""
    headers = request.headers
    return await read_json(
        headers.get("content-type", ""), headers.get("content-length"), request.stream(), limit
    )


async def read_json(
    content_type: str, content_length: str | None, chunks: AsyncIterator[bytes], limit: int
) -> bytes:
    """As read_json_body, from the raw header values and body chunks (also used by kit/fastpath)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise PlainError(415, "The request body must be application/json.")
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise PlainError(413, f"The request body is larger than {limit} bytes.")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PlainError(413, f"The request body is larger than {limit} bytes.")
        parts.append(chunk)
    body = b"".join(parts)
    if not body:
        raise PlainError(400, "A non-empty request body is required.")
    return body
