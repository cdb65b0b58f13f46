"""Upload an attachment's bytes (api.md §3.13): streamed to the blob store with the MD5 computed on
the way, never held whole in memory.

The attachment is claimed (UploadProcessing) in its own short transaction before the first byte
is read, so a second upload of the same attachment (and a purge) is refused (2005) while this one
runs. Each upload writes a fresh blob key, recorded as pending until the bytes are recorded on the
row, so nothing is left if the process dies in between. A failed upload — checksum mismatch,
client gone, too slow, storage error — leaves no object in the store and the attachment Failed
with the reason; it may then be uploaded again. An upload that finishes after it lost the
attachment (purged, or failed by the stalled-upload poller) changes nothing and deletes its bytes."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterable
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from correspondence.adapters.blobs import BlobError, BlobLocationError, BlobStore
from correspondence.attachment import errors, tasks
from correspondence.attachment import repository as repo
from correspondence.attachment.streams import (
    ChecksumMismatch,
    FileTooLarge,
    Hashed,
    UploadInterrupted,
    UploadProblem,
    UploadTooSlow,
    read_ahead,
    with_idle_timeout,
)
from correspondence.attachment.use_cases.lifecycle import BYPASSED_SCAN, publish_attachments
from correspondence.attachment.use_cases.pending_blobs import forget_pending
from correspondence.attachment.use_cases.view import load_for_sender, overview
from correspondence.auth.caller import Caller
from correspondence.correspondence.use_cases.access import caller_party
from correspondence.kit import clock, jobs
from correspondence.kit.errors import ApiError

log = logging.getLogger("correspondence.attachment")

_UPLOADABLE = frozenset({repo.INITIALIZED, repo.FAILED})  # Failed: a retry after a failed upload
# A streaming upload says it is alive this often; one silent for STALLED_AFTER was cut off by a
# server that died mid-upload (nothing else could record its end) and is failed, so it may be
# uploaded again instead of answering 2005 for ever.
HEARTBEAT_SECONDS = 30.0
STALLED_AFTER = timedelta(minutes=5)


def upload_error(exc: Exception, limit: int) -> tuple[str, ApiError]:
    """The status text an attachment records, and the error the caller gets, for a failed upload."""
    if isinstance(exc, ChecksumMismatch):
        return exc.status_text, errors.CHECKSUM_MISMATCH()
    if isinstance(exc, FileTooLarge):
        return exc.status_text, errors.FILE_SIZE(limit=errors.size_text(limit))
    if isinstance(exc, UploadTooSlow):
        return exc.status_text, errors.TOO_SLOW()
    if isinstance(exc, UploadInterrupted):
        return exc.status_text, errors.UPLOAD_FAILED()
    if isinstance(exc, BlobLocationError):
        return "Could not get data location url", errors.NO_LOCATION()
    return UploadProblem.status_text, errors.UPLOAD_FAILED()


async def upload_attachment(
    *,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    scan: bool,
    caller: Caller,
    attachment_id: uuid.UUID,
    chunks: AsyncIterable[bytes],
    declared_length: int | None,
    max_bytes: int,
    idle_seconds: float,
) -> dict[str, Any]:
    party = caller_party(caller)
    key = tasks.new_blob_key(attachment_id)
    row = await _claim(pool, caller, attachment_id, key, declared_length, max_bytes, party)
    body = read_ahead(with_idle_timeout(chunks, idle_seconds))
    hashed = Hashed(body, limit=max_bytes, expected=row["checksum"])
    alive = asyncio.create_task(keep_alive(pool, attachment_id, HEARTBEAT_SECONDS, key=key))
    try:
        size = await blobs.put(key, hashed)
    except (UploadProblem, BlobError) as exc:
        text, error = upload_error(exc, max_bytes)
        log.info("upload of attachment %s failed: %s", attachment_id, text)
        await _fail(pool, blobs, attachment_id, key, text, party)
        raise error from exc
    except asyncio.CancelledError:
        # The server is stopping: record why, without delaying the cancellation.
        _background(_fail(pool, blobs, attachment_id, key, UploadInterrupted.status_text, party))
        raise
    finally:
        alive.cancel()
    return await _commit(pool, blobs, caller, attachment_id, key, size, hashed.md5, scan)


async def _claim(
    pool: asyncpg.Pool,
    caller: Caller,
    attachment_id: uuid.UUID,
    key: str,
    declared_length: int | None,
    max_bytes: int,
    party: str | None,
) -> asyncpg.Record:
    """UploadProcessing, in its own short transaction before the first byte is read; the upload's
    key is recorded on the row and as a pending blob (swept if this process dies)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await load_for_sender(conn, caller, attachment_id, lock=True)
        if declared_length is not None and (declared_length <= 0 or declared_length > max_bytes):
            raise errors.FILE_SIZE(limit=errors.size_text(max_bytes))
        if row["status"] not in _UPLOADABLE:
            raise errors.ALREADY_UPLOADED()
        if await repo.correspondence_ids(conn, attachment_id):
            raise errors.ALREADY_LINKED()
        now = clock.now()
        processing = repo.UPLOAD_PROCESSING
        await repo.append_status(conn, [attachment_id], processing, "UploadProcessing", now, party)
        await repo.set_upload_key(conn, attachment_id, key)
        await repo.record_pending(conn, [key], now)
    return row


async def _commit(
    pool: asyncpg.Pool,
    blobs: BlobStore,
    caller: Caller,
    attachment_id: uuid.UUID,
    key: str,
    size: int,
    md5: str | None,
    scan: bool,
) -> dict[str, Any]:
    """Record the stored bytes, under the attachment's row lock, only if this upload still owns
    the attachment: not purged, failed (by the stalled-upload poller) or re-uploaded meanwhile,
    and its bytes not swept. An upload that lost deletes its bytes (a job, in the same transaction,
    in case deleting them now fails) and answers with the reason."""
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.get(conn, attachment_id, lock=True)
        owner = (
            row is not None
            and row["status"] == repo.UPLOAD_PROCESSING
            and row["upload_key"] == key
            and row["blob_key"] is None
        )
        kept = await repo.clear_pending(conn, [key]) == 1  # else the sweeper took (and deletes) them
        if owner and kept:
            await repo.set_stored(conn, attachment_id, key, size, md5)
            if not scan:  # else it awaits its scan (UploadProcessing with bytes: use_cases/scan.py)
                await publish_attachments(conn, [attachment_id], BYPASSED_SCAN, clock.now())
            row = await load_for_sender(conn, caller, attachment_id)
            linked = await repo.correspondence_ids(conn, attachment_id)
            return overview(row, linked)
        if owner:  # its bytes were swept: it may be uploaded again
            text, party = UploadProblem.status_text, caller_party(caller)
            await repo.append_status(conn, [attachment_id], repo.FAILED, text, clock.now(), party)
        await jobs.enqueue(conn, tasks.DELETE_BLOB, ref_id=attachment_id, payload={"key": key})
    log.info("upload of attachment %s finished after it lost the attachment; its bytes go", attachment_id)
    try:
        await blobs.delete(key)
    except BlobError as exc:
        log.warning("deleting the bytes of a lost upload of %s failed (a job does): %s", attachment_id, exc)
    if row is not None and row["status"] == repo.PURGED:
        raise errors.ALREADY_PURGED()
    raise errors.UPLOAD_FAILED()


async def keep_alive(
    pool: asyncpg.Pool, attachment_id: uuid.UUID, every_seconds: float, *, key: str | None = None
) -> None:
    """The upload's heartbeat (and its pending blob's), until cancelled when the bytes are stored
    (or the upload failed)."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            now = clock.now()
            await repo.mark_upload_alive(pool, attachment_id, now)
            if key is not None:
                await repo.touch_pending(pool, [key], now)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("upload heartbeat of attachment %s failed: %s", attachment_id, exc)


async def fail_stalled_uploads(pool: asyncpg.Pool, *, now: datetime) -> int:
    """Fail the uploads whose heartbeat stopped (see STALLED_AFTER); returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        ids = await repo.stalled_uploads(conn, now - STALLED_AFTER)
        await repo.append_status(conn, ids, repo.FAILED, UploadInterrupted.status_text, now)
    if ids:
        log.info("failed %s uploads cut off by a stopped server: %s", len(ids), ids)
    return len(ids)


async def _fail(
    pool: asyncpg.Pool, blobs: BlobStore, attachment_id: uuid.UUID, key: str, text: str, party: str | None
) -> None:
    """Failed with `text`, unless it is no longer this upload's (purged or re-claimed meanwhile);
    whatever the store kept of the bytes is deleted (a write cut off while committing may have
    landed)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.get(conn, attachment_id, lock=True)
        if row is not None and row["status"] == repo.UPLOAD_PROCESSING and row["upload_key"] == key:
            await repo.append_status(conn, [attachment_id], repo.FAILED, text, clock.now(), party)
    await forget_pending(pool, blobs, [key])


_tasks: set[asyncio.Task[None]] = set()


def _background(coro: Any) -> None:
    task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
