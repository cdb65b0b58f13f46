"""Recall: stop what is still pending for a set of correspondences (one, a batch, a resource).

Not yet published → purged as a sender's purge before publication is (PurgedByAltinn, event
`correspondencepurged`, attachments no live correspondence uses are purged too; api.md §3.8).
Notification orders not yet sent → Order_Cancelled, and addresses still waiting → failed with the
reason (their order cancelled). Published ones stay as they are; only what they still had pending
(a reminder, usually) is cancelled. Each correspondence something was done to gets the event
`correspondencerecalled`. Recalling again finds nothing left to do: harmless."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from correspondence.attachment.use_cases.lifecycle import purge_unused
from correspondence.auth.caller import Caller
from correspondence.correspondence import repository as correspondence_repo
from correspondence.correspondence.use_cases.access import caller_party, resolve
from correspondence.events import outbox
from correspondence.kit import clock
from correspondence.recall import repository as repo
from correspondence.recall.use_cases.resources import owned_resource
from correspondence.registry.cache import ResourceCache

RECALLED_TEXT = "Recalled by the sender before publication"


@dataclass(frozen=True, slots=True)
class RecallOutcome:
    correspondences: int
    purged: int
    already_purged: int
    published: int
    notifications_cancelled: int
    reminders_cancelled: int

    def wire(self) -> dict[str, Any]:
        """As RecallResultExt."""
        return {
            "correspondences": self.correspondences,
            "purged": self.purged,
            "alreadyPurged": self.already_purged,
            "published": self.published,
            "notificationsCancelled": self.notifications_cancelled,
            "remindersCancelled": self.reminders_cancelled,
        }


async def recall_correspondences(
    conn: asyncpg.Connection, ids: list[uuid.UUID], *, party: str | None, now: datetime
) -> RecallOutcome:
    """The core, set-based, in the caller's transaction; the caller has checked that these are
    the recalling owner's. Ids that do not exist are left out of the counts."""
    known = await repo.statuses_of(conn, list(dict.fromkeys(ids)))
    ids = [r["id"] for r in known]
    already = sum(1 for r in known if r["status"] in repo.PURGED)
    purged = await repo.lock_unpublished(conn, [r["id"] for r in known if r["status"] in repo.UNPUBLISHED])
    await _purge(conn, purged, party=party, now=now)
    cancelled = await repo.cancel_registered_orders(conn, ids, now)
    cancelled += await repo.cancel_waiting_deliveries(conn, ids, now)
    touched = set(purged) | {r["correspondence_id"] for r in cancelled}
    await outbox.record(conn, "correspondencerecalled", [i for i in ids if i in touched])
    reminders = sum(1 for r in cancelled if r["is_reminder"])
    return RecallOutcome(
        correspondences=len(ids),
        purged=len(purged),
        already_purged=already,
        published=len(ids) - already - len(purged),
        notifications_cancelled=len(cancelled) - reminders,
        reminders_cancelled=reminders,
    )


async def _purge(conn: asyncpg.Connection, ids: list[uuid.UUID], *, party: str | None, now: datetime) -> None:
    n = len(ids)
    purged = [correspondence_repo.PURGED_BY_ALTINN] * n
    await correspondence_repo.append_statuses(conn, ids, purged, [RECALLED_TEXT] * n, now, party)
    await outbox.record(conn, "correspondencepurged", ids)
    await purge_unused(conn, ids, now)


async def recall_correspondence(
    *, pool: asyncpg.Pool, caller: Caller, correspondence_id: uuid.UUID
) -> RecallOutcome:
    """One correspondence, by the owner of its resource acting as sender (404 unknown, 403 anyone
    else)."""
    async with pool.acquire() as conn, conn.transaction():
        access = await resolve(conn, caller, correspondence_id, allow=("sender",))
        return await recall_correspondences(conn, [correspondence_id], party=access.party, now=clock.now())


@dataclass(frozen=True, slots=True)
class ResourceFilter:
    from_time: datetime | None = None  # requestedPublishTime after this (exclusive), as search
    to_time: datetime | None = None  # and before this
    senders_reference: str | None = None


async def recall_resource_correspondences(
    conn: asyncpg.Connection,
    *,
    owner_org: str,
    resource_id: str,
    where: ResourceFilter,
    party: str | None,
    now: datetime,
) -> RecallOutcome:
    """Every correspondence of the owner's resource (within the filter), in the caller's transaction."""
    ids = await repo.resource_correspondences(
        conn,
        owner_org,
        resource_id,
        from_time=where.from_time,
        to_time=where.to_time,
        senders_reference=where.senders_reference,
    )
    return await recall_correspondences(conn, ids, party=party, now=now)


async def recall_resource(
    *,
    pool: asyncpg.Pool,
    resources: ResourceCache,
    caller: Caller,
    resource_id: str,
    where: ResourceFilter,
) -> RecallOutcome:
    resource = await owned_resource(pool, resources, caller, resource_id)
    async with pool.acquire() as conn, conn.transaction():
        return await recall_resource_correspondences(
            conn,
            owner_org=resource.owner_org,
            resource_id=resource.resource_id,
            where=where,
            party=caller_party(caller),
            now=clock.now(),
        )


BATCH_RECALLED = "Recalled by the sender before it was created"


async def recall_batch(*, pool: asyncpg.Pool, caller: Caller, batch_id: uuid.UUID) -> RecallOutcome:
    """A whole batch (404 unknown, 403 another owner's): an open one is cancelled (nothing of it
    exists yet); of a committed one, recipients not created yet will not be, and the
    correspondences created so far are recalled as above, in one transaction."""
    from correspondence.batch import repository as batch_repo
    from correspondence.batch.schemas import CANCELLED, OPEN
    from correspondence.batch.use_cases.view import owned_batch

    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        batch = await owned_batch(conn, caller, batch_id, lock=True)
        if batch["status"] == OPEN:
            await batch_repo.set_status(conn, batch_id, CANCELLED, now)
        elif batch["status"] != CANCELLED:
            await batch_repo.stop_creating(conn, batch_id, BATCH_RECALLED)
        ids = [i async for chunk in batch_repo.correspondence_ids(conn, batch_id) for i in chunk]
        return await recall_correspondences(conn, ids, party=caller_party(caller), now=now)
