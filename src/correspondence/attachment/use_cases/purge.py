"""Purge an attachment its sender no longer needs (api.md §3.16): status Purged, bytes deleted.

An attachment whose upload or malware scan is in progress (UploadProcessing) is refused with 2005
"File has already been or is being uploaded": the reference lists no error for this (it would
purge and let the upload bring the file back); 2005 is its error for exactly this state."""

from __future__ import annotations

import logging
import uuid

import asyncpg

from correspondence.adapters.blobs import BlobError, BlobStore
from correspondence.attachment import errors
from correspondence.attachment import repository as repo
from correspondence.attachment.use_cases.lifecycle import PURGED_TEXT, forget_blobs
from correspondence.attachment.use_cases.view import load_for_sender
from correspondence.auth.caller import Caller
from correspondence.correspondence.use_cases.access import caller_party
from correspondence.kit import clock

log = logging.getLogger("correspondence.attachment")


async def purge_attachment(
    *, pool: asyncpg.Pool, blobs: BlobStore, caller: Caller, attachment_id: uuid.UUID
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await load_for_sender(conn, caller, attachment_id, lock=True)
        if row["status"] == repo.PURGED:
            raise errors.ALREADY_PURGED()
        if row["status"] == repo.EXPIRED:
            raise errors.EXPIRED_PURGE()
        if row["status"] == repo.UPLOAD_PROCESSING:
            raise errors.ALREADY_UPLOADED()
        if await repo.correspondence_ids(conn, attachment_id):
            raise errors.PURGE_LINKED()
        await repo.append_status(
            conn, [attachment_id], repo.PURGED, PURGED_TEXT, clock.now(), caller_party(caller)
        )
        await forget_blobs(conn, [row])  # a job deletes the bytes if deleting them now fails
    if row["blob_key"]:
        try:
            await blobs.delete(row["blob_key"])
        except BlobError as exc:
            log.warning("deleting the bytes of attachment %s failed (a job retries): %s", attachment_id, exc)
