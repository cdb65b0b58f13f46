"""HTTP range requests (RFC 9110 §14): one byte range per request; anything this does not
understand (several ranges, other units, a stale If-Range) is answered with the whole file."""

from __future__ import annotations

import re
from dataclasses import dataclass

from correspondence.kit.numbers import parse_int

_SINGLE = re.compile(r"^[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*\Z", re.IGNORECASE)
_HUGE = 10**18  # beyond any file: a position with more digits than int64 holds means "past the end"


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
        length = _position(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(0, size - length), size)
    start = _position(first)
    end_at = _position(last) if last else None
    if end_at is not None and end_at < start:
        return None  # invalid range: ignore it (RFC 9110 §14.1.1)
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = min(size, end_at + 1) if end_at is not None else size
    return ByteRange(start, end)


def _position(digits: str) -> int:
    """ASCII digits (the pattern allows no others) as a byte position; thousands of them are
    simply past the end of any file, not a ValueError from int()."""
    value = parse_int(digits.lstrip("0") or "0", 0, _HUGE, signed=False)
    return _HUGE if value is None else value
