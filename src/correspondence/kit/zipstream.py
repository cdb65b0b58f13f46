"""A ZIP archive written as a stream: STORE (uncompressed) entries whose sizes are known up front
and whose CRC-32 is computed while their bytes pass, so memory stays at one block whatever the
archive's size (PKWARE APPNOTE 6.3.10).

Each entry is a local header with general-purpose bit 3 set (CRC and sizes follow the data in a
data descriptor), the bytes, the descriptor; then the central directory. ZIP64 is used per entry
when its size or its header's offset reaches 4 GiB (then the local header carries a ZIP64 extra
field and the descriptor 8-byte sizes, as Python's zipfile writes a stream), and for the end
record when the archive's directory is beyond 4 GiB or it has 65,535 entries or more. Names are
UTF-8 (bit 11). Because every header is a function of names and sizes alone, `archive_size` gives
the exact length before a byte is read.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

_LIMIT32 = 0xFFFFFFFF
_LIMIT16 = 0xFFFF
ZIP64_FROM = _LIMIT32  # sizes and offsets from here on are written as ZIP64 (tests lower it)
_FLAGS = 0x0008 | 0x0800  # data descriptor follows; names are UTF-8
_STORED = 0
_VERSION = 20  # 2.0: the version a stored entry needs
_VERSION64 = 45  # 4.5: ZIP64
_MADE_BY = (3 << 8) | _VERSION64  # Unix, spec 4.5
_UNIX_FILE = 0o100644 << 16  # regular file, rw-r--r--


class SizeMismatch(Exception):
    """A source gave more or fewer bytes than its entry declared: the archive would be corrupt."""


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    size: int
    modified: datetime
    open: Callable[[], AsyncIterator[bytes]]  # the bytes, read only when the entry is written


def _dos_time(at: datetime) -> tuple[int, int]:
    year = min(max(at.year, 1980), 2107)
    date = ((year - 1980) << 9) | (at.month << 5) | at.day
    time = (at.hour << 11) | (at.minute << 5) | (at.second // 2)
    return time, date


def _local_header(entry: Entry, name: bytes, zip64: bool) -> bytes:
    time, date = _dos_time(entry.modified)
    # Bit 3: CRC and sizes are zero here and written in the descriptor after the data.
    extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0) if zip64 else b""
    size_field = _LIMIT32 if zip64 else 0
    header = struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        _VERSION64 if zip64 else _VERSION,
        _FLAGS,
        _STORED,
        time,
        date,
        0,
        size_field,
        size_field,
        len(name),
        len(extra),
    )
    return header + name + extra


def _descriptor(crc: int, size: int, zip64: bool) -> bytes:
    if zip64:
        return struct.pack("<IIQQ", 0x08074B50, crc, size, size)
    return struct.pack("<IIII", 0x08074B50, crc, size, size)


def _central_header(entry: Entry, name: bytes, offset: int, crc: int, zip64_from: int) -> bytes:
    big_size, big_offset = entry.size >= zip64_from, offset >= zip64_from
    fields: list[int] = []
    if big_size:
        fields += [entry.size, entry.size]  # uncompressed, compressed
    if big_offset:
        fields.append(offset)
    extra = struct.pack(f"<HH{len(fields)}Q", 0x0001, 8 * len(fields), *fields) if fields else b""
    zip64 = big_size or big_offset
    time, date = _dos_time(entry.modified)
    size32 = _LIMIT32 if big_size else entry.size
    header = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        _MADE_BY,
        _VERSION64 if zip64 else _VERSION,
        _FLAGS,
        _STORED,
        time,
        date,
        crc,
        size32,
        size32,
        len(name),
        len(extra),
        0,  # comment length
        0,  # disk number start
        0,  # internal attributes
        _UNIX_FILE,
        _LIMIT32 if big_offset else offset,
    )
    return header + name + extra


def _end(count: int, directory_offset: int, directory_size: int, zip64_from: int) -> bytes:
    big_offset, big_size = directory_offset >= zip64_from, directory_size >= zip64_from
    zip64 = count >= _LIMIT16 or big_offset or big_size
    out = b""
    if zip64:
        end64_offset = directory_offset + directory_size
        out += struct.pack(
            "<IQHHIIQQQQ",
            0x06064B50,
            44,  # size of the rest of this record
            _MADE_BY,
            _VERSION64,
            0,
            0,
            count,
            count,
            directory_size,
            directory_offset,
        )
        out += struct.pack("<IIQI", 0x07064B50, 0, end64_offset, 1)
    out += struct.pack(
        "<IHHHHIIH",
        0x06054B50,
        0,
        0,
        min(count, _LIMIT16),
        min(count, _LIMIT16),
        _LIMIT32 if big_size else directory_size,
        _LIMIT32 if big_offset else directory_offset,
        0,
    )
    return out


def archive_size(entries: Sequence[Entry], *, zip64_from: int = ZIP64_FROM) -> int:
    """The exact length of the archive `stream` writes for these entries."""
    offset = 0
    directory = 0
    for entry in entries:
        name = entry.name.encode()
        zip64 = entry.size >= zip64_from or offset >= zip64_from
        directory += len(_central_header(entry, name, offset, 0, zip64_from))
        offset += len(_local_header(entry, name, zip64)) + entry.size + len(_descriptor(0, 0, zip64))
    return offset + directory + len(_end(len(entries), offset, directory, zip64_from))


async def stream(entries: Sequence[Entry], *, zip64_from: int = ZIP64_FROM) -> AsyncIterator[bytes]:
    """The archive, block by block; each source is opened only when its entry is written and must
    give exactly its declared size (SizeMismatch otherwise, which ends the stream unfinished)."""
    offset = 0
    directory: list[bytes] = []
    for entry in entries:
        name = entry.name.encode()
        zip64 = entry.size >= zip64_from or offset >= zip64_from
        header = _local_header(entry, name, zip64)
        yield header
        crc = 0
        written = 0
        async for block in entry.open():
            written += len(block)
            if written > entry.size:
                raise SizeMismatch(f"{entry.name}: more than {entry.size} bytes")
            crc = zlib.crc32(block, crc)
            yield block
        if written != entry.size:
            raise SizeMismatch(f"{entry.name}: {written} bytes, {entry.size} expected")
        descriptor = _descriptor(crc, entry.size, zip64)
        yield descriptor
        directory.append(_central_header(entry, name, offset, crc, zip64_from))
        offset += len(header) + entry.size + len(descriptor)
    directory_bytes = b"".join(directory)
    yield directory_bytes + _end(len(entries), offset, len(directory_bytes), zip64_from)
