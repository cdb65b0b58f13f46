"""Background jobs of the attachment slice: malware scan, expiry, deleting bytes, failing uploads
that a crashed server left behind, and deleting bytes whose writer died before its rows committed."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from correspondence.attachment import tasks
from correspondence.attachment.use_cases.lifecycle import expire_attachments
from correspondence.attachment.use_cases.pending_blobs import sweep_pending_blobs
from correspondence.attachment.use_cases.scan import Scanning
from correspondence.attachment.use_cases.upload import fail_stalled_uploads
from correspondence.kit import clock
from correspondence.kit.jobs import Job, Worker, every
from correspondence.services import Services


def register(worker: Worker, services: Services) -> None:
    async def scan(conn: asyncpg.Connection, batch: list[Job]) -> None:
        """Scan jobs enqueued before migration 0014 just finish: the scan poller below finds
        their files by their status."""

    async def expire(conn: asyncpg.Connection, batch: list[Job]) -> None:
        await expire_attachments(conn, [j.ref_id for j in batch if j.ref_id is not None], clock.now())

    async def delete_blob(conn: asyncpg.Connection, batch: list[Job]) -> None:
        blobs = services.blob_store()
        for job in batch:
            key = (job.payload or {}).get("key")
            if isinstance(key, str) and key:
                await blobs.delete(key)

    worker.register(tasks.SCAN, scan)
    worker.register(tasks.EXPIRE, expire)
    worker.register(tasks.DELETE_BLOB, delete_blob)

    # Files awaiting their malware scan are the scan's queue (use_cases/scan.py), every round.
    scanning = Scanning(
        services.pool,
        blobs=services.blob_store,
        scanner=lambda: services.scanner,
        give_up=timedelta(hours=services.settings.scan_give_up_hours),
    )
    worker.add_poller("attachment.scan", scanning.run_once)

    async def stalled() -> int:
        return await fail_stalled_uploads(services.pool, now=clock.now())

    worker.add_poller("attachment.stalled_uploads", every(60, stalled))

    async def orphans() -> int:
        return await sweep_pending_blobs(services.pool, services.blob_store(), now=clock.now())

    worker.add_poller("attachment.pending_blobs", every(60, orphans))
