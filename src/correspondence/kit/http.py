"""Reading request bodies: media type check, size limit while streaming, no empty bodies."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response

from correspondence.kit.errors import PlainError
from correspondence.kit.numbers import is_ascii_digits

JSON = "application/json; charset=utf-8"
_QVALUE = re.compile(r"(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)\Z")  # RFC 9110 §12.4.2; no 'nan', '1e9'


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
                q = float(param[2:]) if _QVALUE.match(param[2:]) else 0.0
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
    body = await read_capped(content_length, chunks, limit)
    if not body:
        raise PlainError(400, "A non-empty request body is required.")
    return body


async def read_capped(content_length: str | None, chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit`: by its declared length,
    else while reading (a missing or lying Content-Length does not get around the limit)."""
    if content_length is not None and _declared(content_length) > limit:
        raise PlainError(413, f"The request body is larger than {limit} bytes.")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PlainError(413, f"The request body is larger than {limit} bytes.")
        parts.append(chunk)
    return b"".join(parts)


def _declared(content_length: str) -> int:
    """A Content-Length header's value; 0 when it is not one (the read itself is still capped)."""
    value = content_length.strip()
    if not is_ascii_digits(value, len(value)):
        return 0
    digits = value.lstrip("0")
    return 10**18 if len(digits) > 18 else int(digits or "0")  # 10**18: more than any limit


FORM = "application/x-www-form-urlencoded"


async def read_form(request: Request, limit: int) -> list[tuple[str, str]]:
    """An HTML form's fields, in order. Only `application/x-www-form-urlencoded` (415 otherwise:
    no multipart, whose parser would buffer files), at most `limit` bytes (413, enforced while
    reading); read before anything else looks at the request."""
    headers = request.headers
    if media_type(request) != FORM:
        raise PlainError(415, f"The request body must be {FORM}.")
    body = await read_capped(headers.get("content-length"), request.stream(), limit)
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
