"""Every SQL statement of the recall slice: set-based over any number of correspondences (a recall
of 100,000 is a handful of statements), and the pause state of resources.

The job paths of the lower slices (publish, notification orders and deliveries, due dates) ask
`resource_pauses` themselves, in their own statements; what they leave waiting is found again here
when a resource is resumed, and enqueued once more. Every one of those jobs re-checks the state it
acts on under a lock, so a job enqueued twice does its work once."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import asyncpg

from correspondence.correspondence import repository as correspondence_repo
from correspondence.correspondence.jobs import DUE, PUBLISH
from correspondence.notification import repository as notification_repo
from correspondence.notification import statuses as st

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

# Not published, so purged by a recall, as a sender's purge may (api.md §3.8: Initialized,
# ReadyForPublish, Failed), and Reserved, which publishing would only turn into Failed.
UNPUBLISHED = (
    correspondence_repo.INITIALIZED,
    correspondence_repo.READY_FOR_PUBLISH,
    correspondence_repo.RESERVED,
    correspondence_repo.FAILED,
)
PURGED = (correspondence_repo.PURGED_BY_RECIPIENT, correspondence_repo.PURGED_BY_ALTINN)
PUBLISH_PER_JOB = 500  # as an Initialize's publish job names at most its request's recipients


# --- recall ---------------------------------------------------------------------------------------


async def statuses_of(conn: Conn, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """(id, status) of those that exist."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT id, status FROM correspondences WHERE id = ANY($1::uuid[])", ids
    )
    return rows


async def lock_unpublished(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Those still unpublished, locked in id order as the publish job locks them: a publish that
    runs at the same time waits for the recall (and then finds them purged), or the recall waits
    for it (and then finds them published: the row is re-checked after the wait)."""
    rows = await conn.fetch(
        """SELECT id FROM correspondences WHERE id = ANY($1::uuid[]) AND status = ANY($2::smallint[])
           ORDER BY id FOR UPDATE""",
        ids,
        list(UNPUBLISHED),
    )
    return [r["id"] for r in rows]


async def cancel_registered_orders(
    conn: asyncpg.Connection, ids: list[uuid.UUID], at: datetime
) -> list[asyncpg.Record]:
    """Orders not processed yet (main notifications before their send time, every reminder before
    its day): Order_Cancelled. The order job then finds nothing to process."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""UPDATE notification_orders SET processing_status = '{st.CANCELLED}', status_changed = $2
            WHERE correspondence_id = ANY($1::uuid[]) AND processing_status = '{st.REGISTERED}'
            RETURNING correspondence_id, is_reminder""",
        ids,
        at,
    )
    return rows


async def cancel_waiting_deliveries(
    conn: asyncpg.Connection, ids: list[uuid.UUID], at: datetime
) -> list[asyncpg.Record]:
    """Addresses of processed orders still waiting to be sent (an SMS waiting for its window, an
    e-mail waiting for a retry) are failed with the reason, and their orders Order_Cancelled, so
    no order completion (and no delivered or failed event) follows. Addresses being sent right
    now are left to finish: they have left already."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""WITH d AS (
              UPDATE notification_deliveries
              SET status = CASE channel WHEN '{st.EMAIL}' THEN '{st.EMAIL_FAILED}' ELSE '{st.SMS_FAILED}' END,
                  last_error = $3, claimed_until = NULL, updated = $2
              WHERE correspondence_id = ANY($1::uuid[]) AND status = ANY($4::text[])
              RETURNING order_id)
            UPDATE notification_orders o SET processing_status = '{st.CANCELLED}', status_changed = $2
            WHERE o.id IN (SELECT order_id FROM d) AND o.processing_status = '{st.PROCESSING}'
            RETURNING o.correspondence_id, o.is_reminder""",
        ids,
        at,
        st.CANCELLED_DELIVERY,
        list(st.CLAIMABLE),
    )
    return rows


async def resource_correspondences(
    conn: Conn,
    owner_org: str,
    resource_id: str,
    *,
    from_time: datetime | None,
    to_time: datetime | None,
    senders_reference: str | None,
) -> list[uuid.UUID]:
    """The owner's correspondences of a resource, optionally within requestedPublishTime (from,
    to), exclusive, as search filters it, and of one sendersReference; read from the owner's list
    index."""
    rows = await conn.fetch(
        """SELECT id FROM correspondences
           WHERE service_owner_id = $1 AND resource_id = $2
             AND ($3::timestamptz IS NULL OR requested_publish_time > $3)
             AND ($4::timestamptz IS NULL OR requested_publish_time < $4)
             AND ($5::text IS NULL OR senders_reference = $5)""",
        owner_org,
        resource_id,
        from_time,
        to_time,
        senders_reference,
    )
    return [r["id"] for r in rows]


# --- pause ----------------------------------------------------------------------------------------


async def pause_state(conn: Conn, resource_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT paused, paused_by FROM resource_pauses WHERE resource_id = $1", resource_id
    )
    return row


async def pause(conn: asyncpg.Connection, resource_id: str, at: datetime, party: str | None) -> bool:
    """True when it was not paused before (pausing again changes nothing)."""
    inserted = await conn.fetchval(
        """INSERT INTO resource_pauses (resource_id, paused, paused_by) VALUES ($1, $2, $3)
           ON CONFLICT (resource_id) DO NOTHING RETURNING true""",
        resource_id,
        at,
        party,
    )
    return bool(inserted)


async def unpause(conn: asyncpg.Connection, resource_id: str) -> bool:
    """True when it was paused."""
    deleted = await conn.fetchval(
        "DELETE FROM resource_pauses WHERE resource_id = $1 RETURNING true", resource_id
    )
    return bool(deleted)


async def log_pause(
    conn: asyncpg.Connection,
    *,
    log_id: uuid.UUID,
    resource_id: str,
    owner_org: str,
    action: str,
    party: str | None,
    at: datetime,
) -> None:
    await conn.execute(
        """INSERT INTO resource_pause_log (id, resource_id, owner_org, action, party, at)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        log_id,
        resource_id,
        owner_org,
        action,
        party,
        at,
    )


async def waiting_to_publish(conn: Conn, owner_org: str, resource_id: str, now: datetime) -> int:
    """Unpublished correspondences whose publish time has come (those a pause holds back)."""
    found: int = await conn.fetchval(
        """SELECT count(*) FROM correspondences
           WHERE service_owner_id = $1 AND resource_id = $2 AND requested_publish_time <= $3
             AND status = ANY($4::smallint[]) AND published IS NULL""",
        owner_org,
        resource_id,
        now,
        [
            correspondence_repo.INITIALIZED,
            correspondence_repo.READY_FOR_PUBLISH,
            correspondence_repo.RESERVED,
        ],
    )
    return found


# On resume: what the jobs left waiting while the resource was paused, enqueued again (due now,
# in the job sizes the other paths use). $1 owner, $2 resource, $3 now.
_RELEASE_PUBLISH = f"""
INSERT INTO jobs (task, ref_id, payload, run_at, created)
SELECT '{PUBLISH}', NULL::uuid, jsonb_build_object('ids', jsonb_agg(id ORDER BY id)), $3, $3
FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / {PUBLISH_PER_JOB} AS chunk
      FROM correspondences
      WHERE service_owner_id = $1 AND resource_id = $2 AND requested_publish_time <= $3
        AND status IN (0, 1, 10) AND published IS NULL) x
GROUP BY chunk
"""
_RELEASE_ORDERS = f"""
INSERT INTO jobs (task, ref_id, payload, run_at, created)
SELECT '{notification_repo.ORDER_TASK}', NULL::uuid, jsonb_build_object('ids', jsonb_agg(id ORDER BY id)),
       $3, $3
FROM (SELECT o.id, (row_number() OVER (ORDER BY o.id) - 1) / {notification_repo.ORDERS_PER_JOB} AS chunk
      FROM correspondences c JOIN notification_orders o ON o.correspondence_id = c.id
      WHERE c.service_owner_id = $1 AND c.resource_id = $2 AND c.published IS NOT NULL
        AND o.processing_status = '{st.REGISTERED}' AND o.requested_send_time <= $3) x
GROUP BY chunk
"""
_RELEASE_DELIVERIES = f"""
INSERT INTO jobs (task, ref_id, payload, run_at, created)
SELECT '{notification_repo.DELIVER_TASK}', NULL::uuid, jsonb_build_object('ids', jsonb_agg(id ORDER BY id)),
       due, $3
FROM (SELECT d.id, GREATEST(d.next_attempt, $3) AS due,
             (row_number() OVER (PARTITION BY GREATEST(d.next_attempt, $3) ORDER BY d.id) - 1)
               / {notification_repo.DELIVERIES_PER_JOB} AS chunk
      FROM notification_deliveries d JOIN correspondences c ON c.id = d.correspondence_id
      WHERE d.status = ANY($4::text[]) AND c.service_owner_id = $1 AND c.resource_id = $2) x
GROUP BY due, chunk
"""
_RELEASE_DUE = f"""
INSERT INTO jobs (task, ref_id, payload, run_at, created)
SELECT '{DUE}', NULL::uuid, jsonb_build_object('ids', jsonb_agg(id ORDER BY id)), $3, $3
FROM (SELECT id, (row_number() OVER (ORDER BY id) - 1) / {PUBLISH_PER_JOB} AS chunk
      FROM correspondences
      WHERE service_owner_id = $1 AND resource_id = $2 AND due_date_time <= $3 AND due_checked IS NULL
        AND published IS NOT NULL AND status NOT IN (7, 8, 10, 11)) x
GROUP BY chunk
"""


def _count(tag: str) -> int:
    return int(tag.rsplit(" ", 1)[-1])


async def release_held(conn: asyncpg.Connection, owner_org: str, resource_id: str, now: datetime) -> int:
    """Enqueue the publishing, notification orders, sending and due dates a pause held back; the
    number of jobs made. Work not due yet still has its own job, which will run as usual."""
    jobs = _count(await conn.execute(_RELEASE_PUBLISH, owner_org, resource_id, now))
    jobs += _count(await conn.execute(_RELEASE_ORDERS, owner_org, resource_id, now))
    jobs += _count(await conn.execute(_RELEASE_DELIVERIES, owner_org, resource_id, now, list(st.CLAIMABLE)))
    jobs += _count(await conn.execute(_RELEASE_DUE, owner_org, resource_id, now))
    return jobs
