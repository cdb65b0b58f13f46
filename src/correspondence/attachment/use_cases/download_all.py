"""Download all: the recipient gets every attachment of a correspondence in one zip (api.md §3.10,
behaviour.md §8.5), recorded as one AttachmentsDownloaded row ("All attachments downloaded") and an
`attachmentdownloaded` event per attachment, as the single download records its one.

This decides what goes in the zip and records it; kit/zipstream writes the archive while the
endpoint streams it, reading each file through the blob store, so memory does not grow with it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import asyncpg

from correspondence.adapters.blobs import BlobStore
from correspondence.attachment import errors
from correspondence.attachment import repository as repo
from correspondence.attachment.files import zip_entry_names, zip_file_name
from correspondence.auth.caller import Caller
from correspondence.correspondence import errors as correspondence_errors
from correspondence.correspondence import repository as correspondence_repo
from correspondence.correspondence.use_cases.access import Access, resolve
from correspondence.events import outbox
from correspondence.kit import clock, zipstream
from correspondence.registry import repository as registry

ALL_DOWNLOADED = "All attachments downloaded"


@dataclass(frozen=True, slots=True)
class ZipDownload:
    file_name: str
    entries: list[zipstream.Entry]

    @property
    def size(self) -> int:
        return zipstream.archive_size(self.entries)

    def stream(self) -> AsyncIterator[bytes]:
        return zipstream.stream(self.entries)


def _reader(blobs: BlobStore, key: str) -> Callable[[], AsyncIterator[bytes]]:
    return lambda: blobs.get(key)


async def _check_other_resources(
    pool: asyncpg.Pool, caller: Caller, access: Access, rows: list[asyncpg.Record]
) -> None:
    """An attachment shared from another resource needs the recipient's access to that resource
    too: here, its minimum authentication level (the reference asks its PDP per attachment)."""
    for resource_id in {r["resource_id"] for r in rows} - {access.row["resource_id"]}:
        resource = await registry.get_resource(pool, resource_id)
        if resource is not None and caller.auth_level < resource.min_auth_level:
            raise errors.NO_ACCESS()


def _check_downloadable(rows: list[asyncpg.Record], max_bytes: int) -> None:
    now = clock.now()
    for row in rows:
        if row["status"] == repo.PURGED:
            raise errors.PURGED_DOWNLOAD()
        if row["status"] == repo.EXPIRED or (
            row["expiration_time"] is not None and row["expiration_time"] <= now
        ):
            raise errors.EXPIRED_DOWNLOAD()
        if row["blob_key"] is None or row["size"] is None:
            raise errors.NOT_FOUND()  # never uploaded, or its bytes are gone
    if sum(int(r["size"]) for r in rows) > max_bytes:
        raise errors.ZIP_TOO_LARGE()


async def recipient_download_all(
    *,
    pool: asyncpg.Pool,
    blobs: BlobStore,
    caller: Caller,
    correspondence_id: uuid.UUID,
    max_bytes: int,
) -> ZipDownload:
    """Checks in the reference's order: 1001, 4001, 2001 (no attachments), 1001 (not available to
    the recipient, or purged), 4001 per attachment of another resource, 2019/2020, 2023."""
    access = await resolve(pool, caller, correspondence_id, allow=("recipient",))
    rows = await repo.of_correspondence(pool, correspondence_id)
    if not rows:
        raise errors.NOT_FOUND()
    if access.purged or not access.available_to_recipient:
        raise correspondence_errors.NOT_FOUND()
    await _check_other_resources(pool, caller, access, rows)
    _check_downloadable(rows, max_bytes)
    names = zip_entry_names([r["file_name"] for r in rows])
    entries = [
        zipstream.Entry(name, int(r["size"]), r["created"], _reader(blobs, r["blob_key"]))
        for name, r in zip(names, rows, strict=True)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await correspondence_repo.append_statuses(
            conn,
            [correspondence_id],
            [correspondence_repo.ATTACHMENTS_DOWNLOADED],
            [ALL_DOWNLOADED],
            clock.now(),
            access.party,
        )
        await outbox.record(conn, "attachmentdownloaded", [r["id"] for r in rows])
    return ZipDownload(zip_file_name(access.row["message_title"]), entries)
