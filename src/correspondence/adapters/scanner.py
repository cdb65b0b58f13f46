"""Malware scanning: a port with ClamAV's `clamd` (INSTREAM over a Unix or TCP socket) as the real
adapter. With no scanner configured the service has none (uploads publish without a scan).

INSTREAM: send `zINSTREAM\\0`, then chunks as <u32 big-endian length><bytes>, then a zero
length; clamd answers one line ending in NUL: `stream: OK`, `stream: <signature> FOUND`, or
`<reason> ERROR` (for example `INSTREAM size limit exceeded. ERROR` past StreamMaxLength).
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterable
from dataclasses import dataclass
from typing import Protocol

from correspondence.kit.numbers import parse_int

_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class ScanVerdict:
    infected: bool
    detail: str  # "OK", or the name of what was found


class ScanError(Exception):
    """The scan could not be completed. `permanent` errors will fail again on retry (the file
    is larger than the scanner accepts); others (scanner unreachable) may pass later."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class MalwareScanner(Protocol):
    async def scan(self, chunks: AsyncIterable[bytes]) -> ScanVerdict: ...


def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    """`/path.sock` or `unix:///path.sock` → ("unix", path); `tcp://host:port` or `host:port` →
    ("tcp", (host, port))."""
    value = address.strip()
    if value.startswith("unix://"):
        return "unix", value[len("unix://") :]
    if value.startswith("unix:"):
        return "unix", value[len("unix:") :]
    if value.startswith("/"):
        return "unix", value
    if value.startswith("tcp://"):
        value = value[len("tcp://") :]
    host, sep, port = value.rpartition(":")
    number = parse_int(port, 1, 65535, signed=False)
    if not sep or not host or number is None:
        raise ValueError(f"clamd address must be a socket path or host:port, not {address!r}")
    return "tcp", (host.strip("[]"), number)


def parse_reply(reply: str) -> ScanVerdict:
    text = reply.strip().rstrip("\x00").strip()
    body = text.split(":", 1)[1].strip() if text.startswith("stream:") else text
    if body == "OK":
        return ScanVerdict(False, "OK")
    if body.endswith(" FOUND"):
        return ScanVerdict(True, body[: -len(" FOUND")].strip())
    permanent = "size limit" in body.lower()
    raise ScanError(f"clamd: {body}", permanent=permanent)


class ClamdScanner:
    """Plain non-blocking sockets rather than asyncio streams: when clamd refuses a stream that
    is too long it answers and hangs up, and its answer must still be readable after our next
    write fails (a stream transport drops unread data when a write fails)."""

    def __init__(self, address: str, *, timeout: float = 300.0) -> None:
        self.kind, self.target = parse_address(address)
        self.timeout = timeout

    async def _connect(self) -> socket.socket:
        family = socket.AF_UNIX if self.kind == "unix" else socket.AF_INET
        if self.kind == "tcp":
            assert isinstance(self.target, tuple)
            infos = await asyncio.get_running_loop().getaddrinfo(*self.target, type=socket.SOCK_STREAM)
            if not infos:
                raise ScanError(f"clamd address {self.target} does not resolve")
            family, _, _, _, address = infos[0]
            target: tuple[str, int] | str = (str(address[0]), int(address[1]))
        else:
            assert isinstance(self.target, str)
            target = self.target
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, target), self.timeout)
        except (OSError, TimeoutError) as exc:
            sock.close()
            raise ScanError(f"clamd unreachable at {self.target}: {exc}") from exc
        return sock

    async def _send(self, sock: socket.socket, data: bytes | memoryview) -> None:
        await asyncio.wait_for(asyncio.get_running_loop().sock_sendall(sock, data), self.timeout)

    async def _reply(self, sock: socket.socket, timeout: float) -> str:
        loop = asyncio.get_running_loop()
        raw = b""
        while not raw.endswith(b"\0"):
            piece = await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout)
            if not piece:
                break
            raw += piece
        return raw.decode("utf-8", "replace")

    async def ping(self) -> bool:
        sock = await self._connect()
        with sock:
            await self._send(sock, b"zPING\0")
            return (await self._reply(sock, self.timeout)).rstrip("\0") == "PONG"

    async def scan(self, chunks: AsyncIterable[bytes]) -> ScanVerdict:
        sock = await self._connect()
        with sock:
            try:
                await self._send(sock, b"zINSTREAM\0")
                async for chunk in chunks:
                    view = memoryview(chunk)
                    for offset in range(0, len(view), _CHUNK):
                        piece = view[offset : offset + _CHUNK]
                        await self._send(sock, struct.pack(">I", len(piece)) + bytes(piece))
                await self._send(sock, b"\0\0\0\0")
            except (ConnectionError, TimeoutError) as exc:
                # clamd hangs up when a stream passes StreamMaxLength; its reason may be waiting.
                try:
                    reply = await self._reply(sock, 5)
                except (OSError, TimeoutError):
                    reply = ""
                if reply:
                    return parse_reply(reply)
                raise ScanError(f"clamd connection failed: {exc}") from exc
            try:
                reply = await self._reply(sock, self.timeout)
            except (OSError, TimeoutError) as exc:
                raise ScanError(f"clamd gave no answer: {exc}") from exc
            if not reply:
                raise ScanError("clamd closed the connection without an answer")
            return parse_reply(reply)
