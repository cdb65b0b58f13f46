"""Attachment state changes shared by several flows: published (publish the correspondences that
waited for it), failed (fail them), purged or expired (delete the bytes). Blob deletion is a job
enqueued in the same transaction, so a rollback never loses bytes that are still referenced and a
commit never leaves unreferenced bytes behind."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from correspondence.attachment import repository as repo
from correspondence.attachment import tasks
from correspondence.correspondence import repository as correspondence_repo
from correspondence.events import outbox
from correspondence.kit import jobs

BYPASSED_SCAN = "Bypassed malware scan"
PURGED_TEXT = "Attachment has been purged"
EXPIRED_TEXT = "The attachment has expired"


async def publish_attachments(conn: asyncpg.Connection, ids: list[uuid.UUID], text: str, at: datetime) -> int:
    """Published; correspondences whose attachments are now all published get a publish job."""
    await repo.append_status(conn, ids, repo.PUBLISHED, text, at)
    return await repo.enqueue_waiting_publishes(conn, ids, at)


async def fail_attachments(
    conn: asyncpg.Connection, rows: list[asyncpg.Record], text: str, at: datetime
) -> list[uuid.UUID]:
    """Failed with `text`; every unsettled correspondence using them fails too (behaviour.md §3.4)
    and the bytes are deleted. Returns the failed correspondences."""
    ids = [r["id"] for r in rows]
    await repo.append_status(conn, ids, repo.FAILED, text, at)
    await forget_blobs(conn, rows)
    users = await repo.unsettled_users(conn, ids)
    reasons = [f"Attachment failed: {text}"] * len(users)
    await correspondence_repo.append_statuses(
        conn, users, [correspondence_repo.FAILED] * len(users), reasons, at
    )
    await outbox.record(conn, "correspondencepublishfailed", users)
    return users


async def forget_blobs(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> None:
    """Drop the references and enqueue the deletion of the bytes."""
    stored = [r for r in rows if r["blob_key"]]
    await repo.clear_blob(conn, [r["id"] for r in stored])
    for row in stored:
        await jobs.enqueue(conn, tasks.DELETE_BLOB, ref_id=row["id"], payload={"key": row["blob_key"]})


async def purge_unused(conn: asyncpg.Connection, correspondence_ids: list[uuid.UUID], at: datetime) -> int:
    """After correspondences are purged: their attachments that no live correspondence uses are
    purged and their bytes deleted (api.md §3.8)."""
    rows = await repo.no_longer_used(conn, correspondence_ids)
    if rows:
        await repo.append_status(conn, [r["id"] for r in rows], repo.PURGED, "Purged", at)
        await forget_blobs(conn, rows)
    return len(rows)


async def expire_attachments(conn: asyncpg.Connection, ids: list[uuid.UUID], at: datetime) -> int:
    """At a link's expiry: expire the attachment unless a live correspondence still needs it
    (a link without expiry, or a later one), behaviour.md §3.6. Idempotent."""
    due = [
        f
        for f in await repo.expiry_facts(conn, ids)
        if f["status"] not in (repo.PURGED, repo.EXPIRED)
        and not f["never"]
        and (f["latest"] is None or f["latest"] <= at)
    ]
    if due:
        await repo.append_status(conn, [f["id"] for f in due], repo.EXPIRED, EXPIRED_TEXT, at)
        await forget_blobs(conn, due)
    return len(due)
