"""Publish: Initialized → ReadyForPublish → Published, or Failed with the reason (behaviour.md §2)."""

from __future__ import annotations

import uuid

import asyncpg

from correspondence.correspondence import repository as repo
from correspondence.events import outbox
from correspondence.kit import clock
from correspondence.notification.use_cases.schedule import schedule_notifications


async def publish_correspondences(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> None:
    """Set-based: one lock query and one insert for the whole batch; already settled ones are skipped."""
    if not ids:
        return
    rows = await repo.lock_for_publish(conn, ids)
    now = clock.now()
    status_ids: list[uuid.UUID] = []
    statuses: list[int] = []
    texts: list[str] = []
    published: list[uuid.UUID] = []
    failed: list[uuid.UUID] = []
    for row in rows:
        if row["settled"]:
            continue  # published, purged or failed already: publishing runs once
        if row["paused"]:
            continue  # its resource is paused: resuming it enqueues this job again (recall/)
        if not row["attachments_ready"]:
            continue  # an attachment awaits its scan; publishing it enqueues this job again
        cid = row["id"]
        person = row["recipient"].startswith("urn:altinn:person:identifier-no:")
        if person and row["reserved"] and not row["ignore_reservation"]:
            status_ids.append(cid)
            statuses.append(repo.FAILED)
            texts.append(
                f"Recipient of {cid} has been set to reserved in kontakt- og reserverasjonsregisteret ('KRR')"
            )
            failed.append(cid)
            continue
        if not row["ready"]:
            status_ids.append(cid)
            statuses.append(repo.READY_FOR_PUBLISH)
            texts.append("ReadyForPublish")
        status_ids.append(cid)
        statuses.append(repo.PUBLISHED)
        texts.append("Published")
        published.append(cid)
    await repo.record_publish(conn, status_ids, statuses, texts, now)
    await schedule_notifications(conn, published, now)
    await outbox.record(conn, "correspondencepublished", published)
    await outbox.record(conn, "correspondencepublishfailed", failed)
