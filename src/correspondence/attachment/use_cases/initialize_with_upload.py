"""Initialize with files (api.md §3.2): a multipart body read as a stream. Each file part goes
straight to the blob store under a fresh attachment id (MD5 and size computed on the way); the
fields become the same request model as the JSON endpoint's, and the Initialize use case checks
and writes everything, the new attachments included. When anything fails, or the request replays
an earlier one, the stored files are deleted again: no attachment row refers to them. Each file is
recorded as a pending blob before its bytes are written, and the record is cleared when the rows
commit; if the process dies in between, the worker's sweeper deletes the bytes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta

import asyncpg
from pydantic import ValidationError

from correspondence.adapters.blobs import BlobError, BlobStore
from correspondence.attachment import tasks
from correspondence.attachment.streams import (
    Hashed,
    UploadInterrupted,
    UploadProblem,
    read_ahead,
    with_idle_timeout,
)
from correspondence.attachment.use_cases.attach import MAX_ATTACHMENTS, UploadedFile
from correspondence.attachment.use_cases.pending_blobs import (
    forget_pending,
    keep_pending_alive,
    record_pending,
)
from correspondence.attachment.use_cases.upload import upload_error
from correspondence.auth.caller import Caller
from correspondence.correspondence import errors as correspondence_errors
from correspondence.correspondence.schemas import InitializeCorrespondencesExt
from correspondence.correspondence.use_cases.initialize import InitializeResult, initialize_correspondences
from correspondence.kit.errors import PlainError
from correspondence.kit.form import bind
from correspondence.kit.ids import new_id
from correspondence.kit.multipart import FieldsTooLarge, FileSink, MultipartError, Part, parse_form
from correspondence.kit.wire import reject_nul, to_validation_problem
from correspondence.limits.use_cases.notification_cap import NotificationCap
from correspondence.registry.cache import ResourceCache

log = logging.getLogger("correspondence.attachment")

FILE_FIELD = "attachments"
PARAMETER = "request"  # the reference's name of the bound model: `request.Recipients[0]` is a name too
_LISTS = frozenset({"recipients", "existingattachments"})
_DICTS = frozenset({"correspondence.propertylist"})
_QUEUE_DEPTH = 16  # network chunks waiting for the store, per file


class _StoredFile:
    """A file part streamed into the blob store by a task fed through a small queue."""

    def __init__(self, pool: asyncpg.Pool, blobs: BlobStore, part: Part, limit: int) -> None:
        self.attachment_id = new_id()
        self.key = tasks.new_blob_key(self.attachment_id)
        self.file_name = part.filename or ""
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(_QUEUE_DEPTH)
        self.hashed = Hashed(self._chunks(), limit=limit, require_content=False)
        self.size = 0
        self.task = asyncio.get_running_loop().create_task(self._store(pool, blobs))

    async def _store(self, pool: asyncpg.Pool, blobs: BlobStore) -> int:
        """Recorded as pending (committed) before the first byte is written."""
        try:
            await record_pending(pool, [self.key])
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise UploadProblem() from exc
        return await blobs.put(self.key, self.hashed)

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def _put(self, item: bytes | BaseException | None) -> None:
        try:
            self._queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            pass
        put = asyncio.ensure_future(self._queue.put(item))
        await asyncio.wait({put, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            await self.task  # it failed: raise why
            raise UploadProblem()

    async def write(self, data: bytes) -> None:
        if self.task.done():
            await self.task
            raise UploadProblem()
        await self._put(data)

    async def close(self) -> None:
        await self._put(None)
        self.size = await self.task

    async def abort(self) -> None:
        if self.task.done():
            return
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(UploadInterrupted())  # the store aborts its atomic write
        with contextlib.suppress(BaseException):
            await self.task


class _Discard:
    """A file part under another name than `attachments`: read and dropped, as .NET ignores it."""

    async def write(self, data: bytes) -> None:
        return None

    async def close(self) -> None:
        return None

    async def abort(self) -> None:
        return None


async def initialize_with_upload(
    *,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    resources: ResourceCache,
    caller: Caller,
    chunks: AsyncIterable[bytes],
    boundary: bytes,
    reminder_delay: timedelta,
    scan: bool,
    max_field_bytes: int,
    max_file_bytes: int,
    min_expiration_days: int,
    idle_seconds: float,
    notification_cap: NotificationCap | None = None,
) -> InitializeResult:
    stored: list[_StoredFile] = []

    def open_file(part: Part) -> FileSink:
        if part.name.lower() != FILE_FIELD:
            return _Discard()
        if len(stored) >= MAX_ATTACHMENTS:
            raise correspondence_errors.TOO_MANY_ATTACHMENTS()
        file = _StoredFile(pool, blobs, part, max_file_bytes)
        stored.append(file)
        return file

    alive = asyncio.create_task(keep_pending_alive(pool, lambda: [f.key for f in stored]))
    try:
        try:
            fields = await parse_form(
                read_ahead(with_idle_timeout(chunks, idle_seconds)),
                boundary,
                open_file=open_file,
                max_field_bytes=max_field_bytes,
            )
        except (UploadProblem, BlobError) as exc:
            raise upload_error(exc, max_file_bytes)[1] from exc
        except MultipartError as exc:
            raise PlainError(400, f"The request body is not valid multipart/form-data: {exc}") from exc
        except FieldsTooLarge:
            raise PlainError(413, f"The form fields are larger than {max_field_bytes} bytes.") from None
        try:
            bound = bind(fields, lists=_LISTS, dicts=_DICTS, prefix=PARAMETER)
            request = InitializeCorrespondencesExt.model_validate(bound)
        except ValidationError as exc:
            raise to_validation_problem(exc) from None
        reject_nul(request)
        uploads = [
            UploadedFile(f.attachment_id, f.file_name, f.size, f.hashed.md5 or "", f.key) for f in stored
        ]
        result = await initialize_correspondences(
            pool=pool,
            resources=resources,
            caller=caller,
            request=request,
            reminder_delay=reminder_delay,
            uploads=uploads,
            scan=scan,
            min_expiration_days=min_expiration_days,
            max_file_bytes=max_file_bytes,
            notification_cap=notification_cap,
        )
    except BaseException:
        await _forget(pool, blobs, stored)
        raise
    finally:
        alive.cancel()
    if result.replayed:
        await _forget(pool, blobs, stored)  # the first request's attachments stand
    return result


async def _forget(pool: asyncpg.Pool, blobs: BlobStore, files: list[_StoredFile]) -> None:
    """No row refers to these files: delete them (what cannot be deleted now, the sweeper does)."""
    for file in files:
        if not file.task.done():
            await file.abort()
    await forget_pending(pool, blobs, [f.key for f in files])
