"""Upload streams: MD5 and size computed while the bytes pass, a size ceiling, an idle timeout,
and the ways a stream can end badly. Nothing here holds more than one block in memory."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

BLOCK = 1024 * 1024


class UploadProblem(Exception):
    """A stream that cannot become a stored file; `status_text` is what the attachment records."""

    status_text = "Upload failed"


class UploadInterrupted(UploadProblem):
    """The client went away before sending the whole body."""

    status_text = "Upload interrupted"


class UploadTooSlow(UploadProblem):
    status_text = "Upload request timed out due to data arriving too slowly"


class FileTooLarge(UploadProblem):
    """More bytes than the limit, or none at all."""


class ChecksumMismatch(UploadProblem):
    status_text = "Checksum mismatch"


async def with_idle_timeout(chunks: AsyncIterable[bytes], seconds: float) -> AsyncIterator[bytes]:
    """Fails with UploadTooSlow when no data arrives for `seconds`."""
    iterator = aiter(chunks)
    while True:
        try:
            async with asyncio.timeout(seconds):
                chunk = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadTooSlow() from None
        yield chunk


async def read_ahead(chunks: AsyncIterable[bytes], depth: int = 32) -> AsyncIterator[bytes]:
    """Keep reading `chunks` on a task of its own, up to `depth` chunks ahead of the consumer, so the
    network keeps flowing while a block is hashed and written (uvicorn stops reading the socket
    whenever the app is not asking for the body). Errors of the source reach the consumer."""
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(depth)

    async def produce() -> None:
        try:
            async for chunk in chunks:
                await queue.put(chunk)
        except Exception as exc:  # handed to the consumer, raised there
            await queue.put(exc)
            return
        await queue.put(None)

    task = asyncio.get_running_loop().create_task(produce())
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Hashed:
    """Passes a stream through in blocks of about 1 MiB, hashing each block on a worker thread
    while the next one is received (hashlib releases the GIL), counting bytes, and failing with
    FileTooLarge past `limit`. When `expected` is given, a different MD5 fails the stream with
    ChecksumMismatch *before* it ends, so an atomic store never commits it."""

    def __init__(
        self,
        chunks: AsyncIterable[bytes],
        *,
        limit: int,
        expected: str | None = None,
        require_content: bool = True,
    ) -> None:
        self._chunks = chunks
        self._require_content = require_content
        self._limit = limit
        self._expected = expected.lower() if expected else None
        self._md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0
        self.md5: str | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # Chunks pass through as they came (no joining: copying 1 MiB blocks cost more than the
        # hashing), and the hash of each ~1 MiB group runs on a thread while the next arrives.
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[None] | None = None
        parts: list[bytes] = []
        held = 0
        try:
            async for chunk in self._chunks:
                if not chunk:
                    continue
                self.size += len(chunk)
                if self.size > self._limit:
                    raise FileTooLarge()
                parts.append(chunk)
                held += len(chunk)
                if held < BLOCK:
                    continue
                group, parts, held = parts, [], 0
                if pending is not None:
                    await pending
                pending = loop.run_in_executor(None, _update, self._md5, group)
                for piece in group:
                    yield piece
            if pending is not None:
                await pending
                pending = None
            if self.size == 0 and self._require_content:
                raise FileTooLarge()  # a file must have content (error 2004)
            _update(self._md5, parts)
            digest = self._md5.hexdigest()
            if self._expected is not None and digest != self._expected:
                raise ChecksumMismatch()  # before the last bytes: the store never commits them
            self.md5 = digest
            for piece in parts:
                yield piece
        finally:
            if pending is not None and not pending.done():
                pending.cancel()


def _update(md5: Any, parts: list[bytes]) -> None:
    for part in parts:
        md5.update(part)
