"""Attachments of a correspondence being initialized (api.md §3.1 steps 19–25 and 29, §3.2):
reuse of existing attachments, files uploaded with a multipart Initialize, per-link expiry, and
whether publishing has to wait for a malware scan.

The Initialize use case calls `plan_attachments` where the reference checks attachments, then
`AttachmentPlan.verify_checksums` where it uploads, and writes through `write_initialize`, which
adds the new attachment rows to the same transaction as the correspondences."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from correspondence.attachment import errors as attachment_errors
from correspondence.attachment import repository as repo
from correspondence.attachment.files import check_file_name
from correspondence.attachment.use_cases.initialize import check_expiration
from correspondence.attachment.use_cases.lifecycle import BYPASSED_SCAN
from correspondence.correspondence import errors
from correspondence.correspondence.schemas import (
    InitializeAttachmentDataLocationTypeExt,
    InitializeCorrespondenceAttachmentExt,
    InitializeCorrespondencesExt,
)
from correspondence.kit.text import ORG_URN

MAX_ATTACHMENTS = 100
FORWARDING_LIMIT = 10_000_000
EXPIRING_WINDOW = timedelta(hours=6)
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part of a multipart Initialize, already stored (as a pending blob) under `blob_key`."""

    attachment_id: uuid.UUID
    file_name: str
    size: int
    md5: str
    blob_key: str


@dataclass
class AttachmentPlan:
    ids: list[uuid.UUID] = field(default_factory=list)  # every attachment to link, in order
    expirations: list[datetime | None] = field(default_factory=list)  # per link
    new_rows: list[dict[str, Any]] = field(default_factory=list)
    checks: list[tuple[str | None, str]] = field(default_factory=list)  # (supplied, computed) MD5s
    scan: bool = False

    @property
    def pending(self) -> bool:
        """New files wait for their scan, and the correspondences for them (status Initialized)."""
        return self.scan and bool(self.new_rows)

    def verify_checksums(self) -> None:
        for supplied, computed in self.checks:
            if supplied and supplied.lower() != computed:
                raise attachment_errors.CHECKSUM_MISMATCH()


def add_days(start: datetime, days: int) -> datetime:
    """start + days, capped at the end of representable time (a huge expirationInDays is no 500)."""
    if days >= (_END_OF_TIME - start).days:
        return _END_OF_TIME
    return start + timedelta(days=days)


def _entry_name(entry: InitializeCorrespondenceAttachmentExt) -> str | None:
    return entry.fileName if entry.fileName is not None else entry.name


def _match(
    entries: list[InitializeCorrespondenceAttachmentExt], uploads: list[UploadedFile]
) -> list[UploadedFile]:
    """Entry i takes file part i when the names match, else the only part with its name (1005)."""
    if len(entries) != len(uploads):
        raise errors.ATTACHMENT_MISMATCH()
    counts = Counter(u.file_name for u in uploads)
    taken: set[int] = set()
    matched: list[UploadedFile] = []
    for i, entry in enumerate(entries):
        name = _entry_name(entry)
        if uploads[i].file_name == name and i not in taken:
            j = i
        elif name is not None and counts[name] == 1:
            j = next(k for k, u in enumerate(uploads) if u.file_name == name)
        else:
            raise errors.ATTACHMENT_MISMATCH()
        if j in taken:
            raise errors.ATTACHMENT_MISMATCH()
        taken.add(j)
        matched.append(uploads[j])
    return matched


async def plan_attachments(
    conn: asyncpg.Connection | asyncpg.Pool,
    request: InitializeCorrespondencesExt,
    *,
    owner_org: str,
    resource_id: str,
    uploads: list[UploadedFile] | None,
    publish_time: datetime,
    now: datetime,
    min_expiration_days: int,
    max_file_bytes: int,
    scan: bool,
) -> AttachmentPlan:
    """Steps 19–25 of the reference's Initialize. `uploads` is None on the JSON endpoint, where no
    file can come, so any `content.attachments` entry is a mismatch (1005)."""
    corr = request.correspondence
    entries = corr.content.attachments
    wanted = list(dict.fromkeys(request.existingAttachments))
    existing = await repo.get_many(conn, wanted) if wanted else []
    if any(row["service_owner_id"] != owner_org for row in existing):
        raise errors.ATTACHMENT_SENDER_MISMATCH()
    if len(existing) != len(wanted):
        raise errors.EXISTING_ATTACHMENT_NOT_FOUND()
    if len(existing) + len(entries) > MAX_ATTACHMENTS:
        raise errors.TOO_MANY_ATTACHMENTS()
    if any(row["status"] != repo.PUBLISHED for row in existing):
        raise errors.ATTACHMENT_NOT_PUBLISHED()
    upload_list = uploads or []
    if corr.allowForwarding:
        total = sum(row["size"] or 0 for row in existing) + sum(u.size for u in upload_list)
        if total > FORWARDING_LIMIT:
            raise errors.FORWARDING_ATTACHMENTS_TOO_LARGE()
    if uploads is None:
        if entries:
            raise errors.ATTACHMENT_MISMATCH()
        matched: list[UploadedFile] = []
    else:
        matched = _match(entries, uploads)
    for entry, upload in zip(entries, matched, strict=True):
        problem = check_file_name(_entry_name(entry))
        if problem is not None:
            raise problem
        if upload.size <= 0 or upload.size > max_file_bytes:
            raise attachment_errors.FILE_SIZE(limit=attachment_errors.size_text(max_file_bytes))
    for entry in entries:
        check_expiration(entry.expirationInDays, min_expiration_days)
    if any(
        row["max_expiration"] is not None and row["max_expiration"] <= now + EXPIRING_WINDOW
        for row in existing
    ):
        raise errors.ATTACHMENT_EXPIRING()

    base = max(publish_time, now)
    plan = AttachmentPlan(scan=scan)
    by_id = {row["id"]: row for row in existing}
    for entry, upload in zip(entries, matched, strict=True):
        external = entry.dataLocationType is InitializeAttachmentDataLocationTypeExt.ExistingExternalStorage
        plan.new_rows.append(
            {
                "id": upload.attachment_id,
                "resource_id": resource_id,
                "sender": ORG_URN + owner_org,
                "service_owner_id": owner_org,
                "file_name": _entry_name(entry),
                "display_name": entry.displayName if entry.displayName is not None else entry.name,
                "is_encrypted": entry.isEncrypted,
                "checksum": entry.checksum or upload.md5,
                "senders_reference": entry.sendersReference,
                "expiration_in_days": entry.expirationInDays,
                "data_location_type": 1 if external else 0,
                "blob_key": upload.blob_key,
                "size": upload.size,
            }
        )
        plan.checks.append((entry.checksum, upload.md5))
        plan.ids.append(upload.attachment_id)
        days = entry.expirationInDays
        plan.expirations.append(add_days(base, days) if days is not None else None)
    for attachment_id in wanted:
        days = by_id[attachment_id]["expiration_in_days"]
        plan.ids.append(attachment_id)
        plan.expirations.append(add_days(base, days) if days is not None else None)
    return plan


async def write_initialize(
    pool: asyncpg.Pool,
    plan: AttachmentPlan,
    *,
    now: datetime,
    party: str | None,
    write: Callable[[asyncpg.Connection | asyncpg.Pool], Awaitable[list[asyncpg.Record]]],
) -> list[asyncpg.Record]:
    """Run the Initialize statement; with new files, in one transaction with their rows (a file
    to scan waits UploadProcessing for the scan poller), rolled back when the statement wrote
    nothing (reserved recipient, idempotency key).
    The files' pending records are cleared with it; if the sweeper took one (this request was
    silent so long it was thought dead), its bytes are gone and nothing is written (2002)."""
    if not plan.new_rows:
        return await write(pool)
    statuses = [(repo.INITIALIZED, "Initialized"), (repo.UPLOAD_PROCESSING, "UploadProcessing")]
    if not plan.scan:
        statuses.append((repo.PUBLISHED, BYPASSED_SCAN))
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await repo.insert_attachments(conn, plan.new_rows, statuses, now, party)
            keys = [row["blob_key"] for row in plan.new_rows]
            if await repo.clear_pending(conn, keys) != len(keys):
                raise attachment_errors.UPLOAD_FAILED()
            rows = await write(conn)
            if not rows or not rows[0]["written"]:
                await transaction.rollback()
                return rows
        except BaseException:
            await transaction.rollback()
            raise
        await transaction.commit()
        return rows
