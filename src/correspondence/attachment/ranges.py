"""HTTP range requests (RFC 9110 §14): one byte range per request; anything this does not
understand (several ranges, other units, a stale If-Range) is answered with the whole file."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ByteRange:
    start: int
    end: int  # exclusive

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{size}"


class RangeNotSatisfiable(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(f"bytes */{size}")
        self.size = size


def select_range(
    header: str | None, size: int, *, if_range: str | None, etag: str | None
) -> ByteRange | None:
    """The requested range of a `size`-byte file, None for the whole file; raises
    RangeNotSatisfiable when the range lies beyond the file."""
    if header is None:
        return None
    if if_range is not None and (etag is None or if_range.strip() != etag):
        return None
    match = _SINGLE.match(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - length), size)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid range: ignore it (RFC 9110 §14.1.1)
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = min(size, int(last) + 1) if last else size
    return ByteRange(start, end)
