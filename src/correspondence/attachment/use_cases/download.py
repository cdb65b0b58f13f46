"""Downloads: the sender's, until a correspondence using the attachment is published (api.md
§3.17), and the recipient's, through a correspondence (§3.9), which is recorded in its history as
AttachmentsDownloaded (never its current status, DESIGN decision 3)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from correspondence.attachment import errors
from correspondence.attachment import repository as repo
from correspondence.attachment.ranges import ByteRange, select_range
from correspondence.attachment.use_cases.view import load_for_sender
from correspondence.auth.caller import Caller
from correspondence.correspondence import errors as correspondence_errors
from correspondence.correspondence import repository as correspondence_repo
from correspondence.correspondence.use_cases.access import resolve
from correspondence.events import outbox
from correspondence.kit import clock


@dataclass(frozen=True, slots=True)
class Download:
    key: str
    size: int
    file_name: str
    etag: str | None
    range: ByteRange | None  # None: the whole file


def _download(row: asyncpg.Record, range_header: str | None, if_range: str | None) -> Download:
    if row["blob_key"] is None or row["size"] is None:
        raise errors.NOT_FOUND()  # never uploaded, or its bytes are gone
    etag = f'"{row["checksum"]}"' if row["checksum"] else None
    size = int(row["size"])
    chosen = select_range(range_header, size, if_range=if_range, etag=etag)
    return Download(row["blob_key"], size, row["file_name"], etag, chosen)


def _check_available(row: asyncpg.Record) -> None:
    if row["status"] == repo.PURGED:
        raise errors.PURGED_DOWNLOAD()
    if row["status"] == repo.EXPIRED:
        raise errors.EXPIRED_DOWNLOAD()


async def sender_download(
    *,
    pool: asyncpg.Pool,
    caller: Caller,
    attachment_id: uuid.UUID,
    range_header: str | None = None,
    if_range: str | None = None,
) -> Download:
    row = await load_for_sender(pool, caller, attachment_id)
    _check_available(row)
    if await repo.linked_to_published(pool, attachment_id):
        raise errors.PUBLISHED_NO_SENDER_ACCESS()
    return _download(row, range_header, if_range)


async def recipient_download(
    *,
    pool: asyncpg.Pool,
    caller: Caller,
    correspondence_id: uuid.UUID,
    attachment_id: uuid.UUID,
    range_header: str | None = None,
    if_range: str | None = None,
) -> Download:
    """Checks in the reference's order: 1001, 2001, 4001, 2019, 2020 (also a passed link expiry),
    then 1001 again while the correspondence is not available to its recipient."""
    if await correspondence_repo.get_correspondence(pool, correspondence_id) is None:
        raise correspondence_errors.NOT_FOUND()
    row = await repo.link(pool, correspondence_id, attachment_id)
    if row is None:
        raise errors.NOT_FOUND()
    access = await resolve(pool, caller, correspondence_id, allow=("recipient",))
    _check_available(row)
    now = clock.now()
    if row["link_expiration"] is not None and row["link_expiration"] <= now:
        raise errors.EXPIRED_DOWNLOAD()
    if access.purged or not access.available_to_recipient:
        raise correspondence_errors.NOT_FOUND()
    download = _download(row, range_header, if_range)
    async with pool.acquire() as conn, conn.transaction():
        await correspondence_repo.append_statuses(
            conn,
            [correspondence_id],
            [correspondence_repo.ATTACHMENTS_DOWNLOADED],
            [f"Attachment {attachment_id} has been downloaded"],
            now,
            access.party,
        )
        await outbox.record(conn, "attachmentdownloaded", [attachment_id])
    return download
