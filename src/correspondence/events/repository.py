"""Every SQL statement of the events slice."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

# Subscription roles (a bit set): events of the resources the consumer owns, and events of the
# correspondences the consumer received.
OWNER, RECIPIENT = 1, 2
PENDING, DELIVERED, FAILED = 0, 1, 2

# What a recipient may hear about a correspondence once it was published to them; everything else
# (initialized, publish failed, notification outcomes, attachments) is the sender's business.
RECIPIENT_TYPES = [
    "no.altinn.correspondence." + t
    for t in (
        "correspondencepublished",
        "correspondencereceiverread",
        "correspondencereceiverconfirmed",
        "correspondencearchived",
        "correspondencepurged",
        "correspondencereceiverneverread",
        "correspondencereceiverneverconfirmed",
    )
]

# Expands claimed outbox rows into one CloudEvent per item and one delivery per matching
# subscription, in one statement. An event's time (and its UUIDv7 id) is when its change was
# committed, not when it was expanded. $1 batch size, $2 now, $3 source base URL, $4 recipient types,
# $5 the event types whose subject is the recipient.
DISPATCH = """
WITH claimed AS MATERIALIZED (
  SELECT id, type, ids, created FROM event_outbox WHERE dispatched IS NULL ORDER BY id LIMIT $1
  FOR UPDATE SKIP LOCKED),
done AS (UPDATE event_outbox o SET dispatched = $2 FROM claimed c WHERE o.id = c.id),
items AS (
  SELECT c.id AS outbox_id, u.ord, c.type, u.item, c.created,
         CASE WHEN c.type LIKE 'attachment%' THEN 'attachment'
              WHEN c.type = 'notificationcreated' THEN 'notification'
              WHEN c.type LIKE 'resource%' THEN 'resource'
              WHEN c.type LIKE 'batch%' THEN 'batch'
              ELSE 'correspondence' END AS kind
  FROM claimed c CROSS JOIN LATERAL unnest(c.ids) WITH ORDINALITY u(item, ord)),
facts AS (
  SELECT i.outbox_id, i.ord, i.type, i.kind, i.item, i.created, x.resource_id, x.sender, x.owner_org,
         x.recipient, x.correspondence_id, x.published
  FROM items i
  CROSS JOIN LATERAL (
    SELECT c.resource_id, c.sender, c.service_owner_id AS owner_org, c.recipient,
           c.id AS correspondence_id, c.published
    FROM correspondences c WHERE i.kind = 'correspondence' AND c.id = i.item
    UNION ALL
    SELECT a.resource_id, a.sender, a.service_owner_id, NULL, NULL, NULL
    FROM attachments a WHERE i.kind = 'attachment' AND a.id = i.item
    UNION ALL
    SELECT c.resource_id, c.sender, c.service_owner_id, c.recipient, c.id, c.published
    FROM notification_orders o JOIN correspondences c ON c.id = o.correspondence_id
    WHERE i.kind = 'notification' AND o.id = i.item
    UNION ALL
    SELECT l.resource_id, 'urn:altinn:organization:identifier-no:' || l.owner_org, l.owner_org,
           NULL, NULL, NULL
    FROM resource_pause_log l WHERE i.kind = 'resource' AND l.id = i.item
    UNION ALL
    SELECT b.resource_id, 'urn:altinn:organization:identifier-no:' || b.owner_org, b.owner_org, NULL, NULL,
           NULL
    FROM batches b WHERE i.kind = 'batch' AND b.id = i.item) x),
ev AS MATERIALIZED (
  SELECT uuid7(f.created) AS id, 'no.altinn.correspondence.' || f.type AS type,
         $3 || CASE WHEN f.kind = 'resource' THEN '/ext/api/v1/resources'
                    WHEN f.kind = 'batch' THEN '/ext/api/v1/batches'
                    ELSE '/correspondence/api/v1/' || f.kind END AS source,
         'urn:altinn:resource:' || f.resource_id AS resource, f.item::text AS resourceinstance,
         CASE WHEN f.type = ANY($5::text[]) THEN f.recipient ELSE f.sender END AS subject,
         f.owner_org, f.recipient, f.correspondence_id, f.published, f.outbox_id, f.ord, f.created
  FROM facts f),
ins_events AS (
  INSERT INTO events (id, type, source, resource, resourceinstance, subject, alternativesubject, time,
                      owner_org, recipient, correspondence_id)
  SELECT e.id, e.type, e.source, e.resource, e.resourceinstance, e.subject,
         CASE WHEN e.subject ~ '^urn:altinn:organization:identifier-no:[0-9]{9}$'
                THEN '/organisation/' || substring(e.subject FROM '[0-9]{9}$')
              WHEN e.subject ~ '^urn:altinn:person:identifier-no:[0-9]{11}$'
                THEN '/person/' || substring(e.subject FROM '[0-9]{11}$') END,
         e.created, e.owner_org, e.recipient, e.correspondence_id
  FROM ev e ORDER BY e.outbox_id, e.ord),
ins_deliveries AS (
  INSERT INTO event_deliveries (event_id, subscription_id, next_attempt, created)
  SELECT e.id, s.id, $2, $2
  FROM ev e JOIN event_subscriptions s ON s.deleted IS NULL
   AND ((s.role & 1 <> 0 AND s.consumer = 'urn:altinn:organization:identifier-no:' || e.owner_org)
     OR (s.role & 2 <> 0 AND s.consumer = e.recipient AND e.published IS NOT NULL
         AND e.type = ANY($4::text[])))
   AND (s.resource_filter IS NULL OR s.resource_filter = e.resource)
   AND (s.type_filter IS NULL OR s.type_filter = e.type)
   AND (s.subject_filter IS NULL OR s.subject_filter = e.subject)
  ORDER BY e.outbox_id, e.ord, s.id
  RETURNING 1)
SELECT (SELECT count(*) FROM claimed) AS rows, (SELECT count(*) FROM ev) AS events,
       (SELECT count(*) FROM ins_deliveries) AS deliveries
"""


async def dispatch(
    conn: asyncpg.Connection, *, limit: int, now: datetime, base_url: str, recipient_subject: list[str]
) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        DISPATCH, limit, now, base_url, RECIPIENT_TYPES, recipient_subject
    )
    return row


# Leases due deliveries and returns what sending them needs; a lease that runs out (a worker that
# died mid-batch) makes them due again. $1 now, $2 lease end, $3 batch size.
CLAIM = """
WITH due AS (
  SELECT id FROM event_deliveries
  WHERE status = 0 AND next_attempt <= $1 AND (locked_until IS NULL OR locked_until < $1)
  ORDER BY next_attempt, id LIMIT $3 FOR UPDATE SKIP LOCKED),
leased AS (
  UPDATE event_deliveries d SET locked_until = $2, attempts = d.attempts + 1
  FROM due WHERE d.id = due.id
  RETURNING d.id, d.event_id, d.subscription_id, d.attempts)
SELECT l.id, l.attempts, s.end_point, s.secret, s.deleted IS NOT NULL AS cancelled,
       e.id AS event_id, e.type, e.source, e.resource, e.resourceinstance, e.subject,
       e.alternativesubject, e.time
FROM leased l JOIN events e ON e.id = l.event_id JOIN event_subscriptions s ON s.id = l.subscription_id
ORDER BY l.id
"""


async def claim_deliveries(
    pool: asyncpg.Pool, *, now: datetime, lease_until: datetime, limit: int
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(CLAIM, now, lease_until, limit)
    return rows


async def finish_deliveries(
    pool: asyncpg.Pool,
    *,
    ids: list[int],
    statuses: list[int],
    codes: list[int | None],
    errors: list[str | None],
    next_attempts: list[datetime],
    now: datetime,
) -> None:
    await pool.execute(
        """UPDATE event_deliveries d SET status = u.status, last_status_code = u.code,
                  last_error = u.error, next_attempt = u.next, locked_until = NULL,
                  delivered = CASE WHEN u.status = 1 THEN $6::timestamptz END
           FROM unnest($1::bigint[], $2::smallint[], $3::int[], $4::text[], $5::timestamptz[])
                AS u(id, status, code, error, next)
           WHERE d.id = u.id""",
        ids,
        statuses,
        codes,
        errors,
        next_attempts,
        now,
    )


_SUBSCRIPTION_COLUMNS = """id, consumer, role, end_point, resource_filter, type_filter, subject_filter,
    created_by, created"""


async def insert_subscription(conn: asyncpg.Connection | asyncpg.Pool, **values: Any) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        f"""INSERT INTO event_subscriptions (consumer, role, end_point, resource_filter, type_filter,
                subject_filter, secret, created_by, created)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_SUBSCRIPTION_COLUMNS}""",
        values["consumer"],
        values["role"],
        values["end_point"],
        values["resource_filter"],
        values["type_filter"],
        values["subject_filter"],
        values["secret"],
        values["created_by"],
        values["created"],
    )
    return row


async def get_subscription(conn: asyncpg.Connection | asyncpg.Pool, sid: int) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT {_SUBSCRIPTION_COLUMNS} FROM event_subscriptions WHERE id = $1 AND deleted IS NULL", sid
    )
    return row


async def list_subscriptions(conn: asyncpg.Connection | asyncpg.Pool, consumer: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT {_SUBSCRIPTION_COLUMNS} FROM event_subscriptions
            WHERE consumer = $1 AND deleted IS NULL ORDER BY id""",
        consumer,
    )
    return rows


async def delete_subscription(conn: asyncpg.Connection | asyncpg.Pool, sid: int, now: datetime) -> None:
    """Soft delete: the delivery log stays readable; pending deliveries are cancelled."""
    await conn.execute("UPDATE event_subscriptions SET deleted = $2 WHERE id = $1", sid, now)
    await conn.execute(
        """UPDATE event_deliveries SET status = 2, last_error = 'subscription deleted', locked_until = NULL
           WHERE subscription_id = $1 AND status = 0""",
        sid,
    )


async def deliveries_of(
    conn: asyncpg.Connection | asyncpg.Pool, sid: int, *, before: int | None, limit: int
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT d.id, d.status, d.attempts, d.next_attempt, d.last_status_code, d.last_error, d.created,
                  d.delivered, e.id AS event_id, e.type, e.resourceinstance, e.subject, e.time
           FROM event_deliveries d JOIN events e ON e.id = d.event_id
           WHERE d.subscription_id = $1 AND ($2::bigint IS NULL OR d.id < $2)
           ORDER BY d.id DESC LIMIT $3""",
        sid,
        before,
        limit,
    )
    return rows


async def events_of_correspondence(
    conn: asyncpg.Connection | asyncpg.Pool, correspondence_id: uuid.UUID
) -> list[asyncpg.Record]:
    """A correspondence's events with how their deliveries went (for the sender's views)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT e.id, e.type, e.subject, e.time,
                  count(d.id) AS deliveries,
                  count(d.id) FILTER (WHERE d.status = 1) AS delivered,
                  count(d.id) FILTER (WHERE d.status = 2) AS failed
           FROM events e LEFT JOIN event_deliveries d ON d.event_id = e.id
           WHERE e.correspondence_id = $1
           GROUP BY e.id ORDER BY e.time, e.id""",
        correspondence_id,
    )
    return rows
