"""Bytes written before the rows that refer to them commit (an upload, the files of a multipart
Initialize) are recorded as pending first, in their own small transaction; the record is cleared
in the transaction that commits the rows. A writer keeps its records alive while it works; one
silent for SILENT_AFTER died (its process was killed, its server crashed) and the sweeper deletes
its bytes. A writer whose records the sweeper took has lost: clearing them finds fewer than it
wrote, and it must not commit rows referring to those bytes.

A writer killed mid-write also leaves what never became an object: a temporary file of the file
store, an incomplete S3 multipart upload. The sweeper removes those too (`sweep_incomplete`): a
temporary file untouched for SILENT_AFTER (a live writer touches it every minute), a multipart
upload begun more than SILENT_AFTER ago whose key is no longer pending — its writer died and its
record was swept, or its writer lost. Never by age alone: a 50 GB upload may take hours."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from correspondence.adapters.blobs import BlobError, BlobStore
from correspondence.attachment import repository as repo
from correspondence.attachment import tasks
from correspondence.kit import clock

log = logging.getLogger("correspondence.attachment")

HEARTBEAT_SECONDS = 30.0
# Far above the heartbeat, so only a writer that is gone is swept.
SILENT_AFTER = timedelta(minutes=10)
_SWEEP_BATCH = 200


async def record_pending(pool: asyncpg.Pool, keys: list[str]) -> None:
    """Committed before the first byte of these blobs is written."""
    async with pool.acquire() as conn, conn.transaction():
        await repo.record_pending(conn, keys, clock.now())


async def keep_pending_alive(
    pool: asyncpg.Pool, keys: Callable[[], list[str]], every_seconds: float = HEARTBEAT_SECONDS
) -> None:
    """The writer's heartbeat, until cancelled when its rows commit (or it gave up)."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await repo.touch_pending(pool, keys(), clock.now())
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("heartbeat of pending blobs failed: %s", exc)


async def forget_pending(pool: asyncpg.Pool, blobs: BlobStore, keys: list[str]) -> None:
    """A writer gives up: delete its bytes, then its records (a failed delete leaves the record
    for the sweeper)."""
    deleted: list[str] = []
    for key in keys:
        try:
            await blobs.delete(key)
        except BlobError as exc:
            log.warning("could not delete unused blob %s (the sweeper retries): %s", key, exc)
        else:
            deleted.append(key)
    try:
        await repo.clear_pending(pool, deleted)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("could not clear pending blobs %s (the sweeper does): %s", deleted, exc)


async def sweep_pending_blobs(pool: asyncpg.Pool, blobs: BlobStore, *, now: datetime) -> int:
    """Delete the bytes of writers silent since `now - SILENT_AFTER` and their records, then what
    such writers left outside any object; returns how many."""
    swept = await _sweep_records(pool, blobs, now=now)

    async def in_use(keys: list[str]) -> set[str]:
        async with pool.acquire() as conn:
            return await repo.pending_among(conn, keys)

    try:
        swept += await blobs.sweep_incomplete(
            older_than=now - SILENT_AFTER, under=tasks.BLOB_PREFIX, in_use=in_use
        )
    except BlobError as exc:
        log.warning("could not sweep incomplete uploads (retried next round): %s", exc)
    return swept


async def _sweep_records(pool: asyncpg.Pool, blobs: BlobStore, *, now: datetime) -> int:
    """The records stay locked until the bytes are gone, so a writer committing meanwhile waits
    and then finds it lost; a failed delete rolls back and is retried next round."""
    swept = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            keys = await repo.stale_pending(conn, now - SILENT_AFTER, _SWEEP_BATCH)
            for key in keys:
                await blobs.delete(key)
            await repo.clear_pending(conn, keys)
        swept += len(keys)
        if keys:
            log.info("deleted %s blobs whose writer died before its rows committed", len(keys))
        if len(keys) < _SWEEP_BATCH:
            return swept
