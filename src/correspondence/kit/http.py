"""Reading request bodies: media type check, size limit while streaming, no empty bodies."""

from __future__ import annotations

from starlette.requests import Request

from correspondence.kit.errors import PlainError


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_json_body(request: Request, limit: int) -> bytes:
    """The whole JSON body, refused with 415 for another media type and 413 above `limit`."""
    media = media_type(request)
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        raise PlainError(415, "The request body must be application/json.")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PlainError(413, f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PlainError(413, f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise PlainError(400, "A non-empty request body is required.")
    return body
