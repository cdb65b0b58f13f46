"""Streaming multipart/form-data: fields are collected (within a byte limit), file parts are handed
to sinks piece by piece as they arrive, so a file is never held whole in memory or spooled to disk
(Starlette's `request.form()` spools). Built on python-multipart's push parser."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Protocol

from python_multipart.multipart import MultipartParser, parse_options_header


class MultipartError(Exception):
    """The body is not well-formed multipart/form-data."""


class FieldsTooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    content_type: str | None


class FileSink(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None:
        """The part ended normally."""
        ...

    async def abort(self) -> None:
        """The body failed before the part ended."""
        ...


def boundary_of(content_type: str | None) -> bytes | None:
    """The boundary of a multipart/form-data Content-Type, None for anything else."""
    if not content_type:
        return None
    media, params = parse_options_header(content_type)
    if media.lower() != b"multipart/form-data":
        return None
    boundary = params.get(b"boundary")
    return boundary or None


def _disposition(raw: bytes) -> tuple[str | None, str | None]:
    """name and filename of a Content-Disposition (RFC 7578; `filename*` of RFC 5987 preferred)."""
    message = Message()
    message["content-disposition"] = raw.decode("utf-8", "replace")
    name: str | None = None
    plain: str | None = None
    extended: str | None = None
    for key, value in message.get_params(header="content-disposition") or []:
        if key == "name" and isinstance(value, str):
            name = value
        elif key == "filename":
            if isinstance(value, tuple):
                extended = collapse_rfc2231_value(value)
            else:
                plain = value
    return name, extended if extended is not None else plain


@dataclass
class _State:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)


async def parse_form(
    chunks: AsyncIterable[bytes],
    boundary: bytes,
    *,
    open_file: Callable[[Part], FileSink],
    max_field_bytes: int,
    max_fields: int = 10_000,
) -> list[tuple[str, str]]:
    """Read the whole body; returns the fields in order. File parts go to `open_file(part)`'s sink.
    On failure the open sink is aborted; sinks closed earlier are the caller's to clean up."""
    events: list[tuple[str, bytes]] = []
    state = _State()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        state.headers[bytes(state.header_field).strip().lower()] = bytes(state.header_value).strip()
        state.header_field.clear()
        state.header_value.clear()

    # Headers are parsed synchronously inside write(); keep a copy for when the event is handled.
    headers_seen: list[dict[bytes, bytes]] = []

    def on_headers_finished() -> None:
        headers_seen.append(dict(state.headers))
        state.headers.clear()
        events.append(("headers", b""))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(("data", data[start:end]))

    def on_part_end() -> None:
        events.append(("end", b""))

    def on_end() -> None:
        events.append(("done", b""))

    parser = MultipartParser(
        boundary,
        {
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
        max_header_count=16,
    )
    fields: list[tuple[str, str]] = []
    field_bytes = 0
    sink: FileSink | None = None
    current: Part | None = None
    value = bytearray()
    finished = False
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart's parse errors
                raise MultipartError(str(exc)) from exc
            for kind, data in events:
                if kind == "headers":
                    raw = headers_seen.pop(0)
                    name, filename = _disposition(raw.get(b"content-disposition", b""))
                    content_type = raw.get(b"content-type")
                    current = Part(
                        name or "", filename, content_type.decode("latin-1") if content_type else None
                    )
                    value.clear()
                    if filename is not None:
                        sink = open_file(current)
                    else:
                        if len(fields) >= max_fields:
                            raise FieldsTooLarge()
                elif kind == "data":
                    if sink is not None:
                        await sink.write(data)
                    elif current is not None:
                        field_bytes += len(data)
                        if field_bytes > max_field_bytes:
                            raise FieldsTooLarge()
                        value += data
                elif kind == "end":
                    if sink is not None:
                        done, sink = sink, None
                        await done.close()
                    elif current is not None:
                        fields.append((current.name, value.decode("utf-8", "replace")))
                    current = None
                elif kind == "done":
                    finished = True
            events.clear()
        if not finished:
            raise MultipartError("the multipart body ended before its closing boundary")
    except BaseException:
        if sink is not None:
            await sink.abort()
        raise
    return fields
