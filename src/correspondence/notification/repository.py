"""Every SQL statement of the notification slice."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from correspondence.notification import statuses as st
from correspondence.notification.condition import SendState

ORDER_TASK = "notification.order"
DELIVER_TASK = "notification.deliver"
ORDERS_PER_JOB = 500
DELIVERIES_PER_JOB = 100  # a job's messages must go out well within the job's lease

# At publish: one job per chunk of orders due at the same time (the main orders now, each
# request's reminders at their send time), written by one statement for the whole publish batch.
ENQUEUE_ORDERS = f"""
INSERT INTO jobs (task, ref_id, payload, run_at, created)
SELECT '{ORDER_TASK}', NULL::uuid, jsonb_build_object('ids', jsonb_agg(id)), run_at, $2
FROM (SELECT o.id, GREATEST(o.requested_send_time, $2) AS run_at,
             (row_number() OVER (PARTITION BY GREATEST(o.requested_send_time, $2) ORDER BY o.id) - 1)
               / {ORDERS_PER_JOB} AS chunk
      FROM notification_orders o
      WHERE o.correspondence_id = ANY($1::uuid[]) AND o.processing_status = '{st.REGISTERED}') x
GROUP BY run_at, chunk
"""


async def enqueue_orders(
    conn: asyncpg.Connection, correspondence_ids: list[uuid.UUID], now: datetime
) -> None:
    if correspondence_ids:
        await conn.execute(ENQUEUE_ORDERS, correspondence_ids, now)


# What the send condition (condition.py) reads, for a correspondence `c`: whether its history ever
# had Published (2), Read (4), PurgedByRecipient/PurgedByAltinn (7, 8) or Failed (11) (api.md §7.1).
# The worker's order query and the condition endpoints both select exactly these columns.
SEND_STATE = """
  EXISTS (SELECT 1 FROM correspondence_statuses h WHERE h.correspondence_id = c.id AND h.status = 2)
    AS ever_published,
  EXISTS (SELECT 1 FROM correspondence_statuses h WHERE h.correspondence_id = c.id AND h.status = 4)
    AS ever_read,
  EXISTS (SELECT 1 FROM correspondence_statuses h WHERE h.correspondence_id = c.id AND h.status IN (7, 8))
    AS ever_purged,
  EXISTS (SELECT 1 FROM correspondence_statuses h WHERE h.correspondence_id = c.id AND h.status = 11)
    AS ever_failed"""


def send_state_of(row: asyncpg.Record) -> SendState:
    return SendState(
        published=row["ever_published"],
        read=row["ever_read"],
        purged=row["ever_purged"],
        failed=row["ever_failed"],
    )


async def send_state(
    conn: asyncpg.Connection | asyncpg.Pool, correspondence_id: uuid.UUID
) -> SendState | None:
    """None when there is no such correspondence."""
    row = await conn.fetchrow(
        f"SELECT {SEND_STATE} FROM correspondences c WHERE c.id = $1", correspondence_id
    )
    return send_state_of(row) if row is not None else None


async def lock_orders(conn: asyncpg.Connection, ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    """The orders still to process, with what their texts and send condition need."""
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""SELECT o.id, o.correspondence_id, o.is_reminder, o.template, o.channel, o.recipient,
                  c.message_sender, c.sender,
                  c.resource_id, c.ignore_reservation, ct.language, ct.message_title,
                  ct.notification::text AS request, r.title AS resource_title,
                  (SELECT p.name FROM parties p WHERE p.party = c.sender) AS sender_name,
                  (SELECT p.name FROM parties p WHERE p.party = c.recipient) AS recipient_name,
                  EXISTS (SELECT 1 FROM resource_pauses rp WHERE rp.resource_id = c.resource_id) AS paused,
                  {SEND_STATE}
           FROM notification_orders o
           JOIN correspondences c ON c.id = o.correspondence_id
           JOIN correspondence_contents ct ON ct.id = c.content_id
           LEFT JOIN resources r ON r.resource_id = c.resource_id
           WHERE o.id = ANY($1::uuid[]) AND o.processing_status = '{st.REGISTERED}'
           ORDER BY o.id
           FOR UPDATE OF o""",
        ids,
    )
    return rows


async def contacts(conn: asyncpg.Connection, parties: list[str]) -> dict[str, asyncpg.Record]:
    # Row by row (LATERAL … OFFSET 0), not a hash of the whole registry per batch.
    rows = await conn.fetch(
        """SELECT u.party, ct.email, ct.mobile, COALESCE(ct.reserved, false) AS reserved, p.name
           FROM unnest($1::text[]) u(party)
           LEFT JOIN LATERAL (SELECT ct.party, ct.email, ct.mobile, ct.reserved FROM contacts ct
                              WHERE ct.party = u.party OFFSET 0) ct ON true
           LEFT JOIN LATERAL (SELECT p.party, p.name FROM parties p
                              WHERE p.party = u.party OFFSET 0) p ON true
           WHERE ct.party IS NOT NULL OR p.party IS NOT NULL""",
        parties,
    )
    return {r["party"]: r for r in rows}


async def set_order_status(conn: asyncpg.Connection, ids: list[uuid.UUID], status: str, at: datetime) -> None:
    if ids:
        await conn.execute(
            """UPDATE notification_orders SET processing_status = $2, status_changed = $3
               WHERE id = ANY($1::uuid[])""",
            ids,
            status,
            at,
        )


async def insert_deliveries(conn: asyncpg.Connection, rows: list[tuple[Any, ...]], at: datetime) -> None:
    """Rows of (id, order, correspondence, channel, address, recipient json, subject, body, html,
    status, next attempt, last error). An address an order already has is not added again."""
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    await conn.execute(
        """INSERT INTO notification_deliveries (id, order_id, correspondence_id, channel, address, recipient,
             subject, body, html, status, next_attempt, last_error, created, updated)
           SELECT u.id, u.order_id, u.cid, u.channel, u.address, u.recipient::jsonb, u.subject, u.body,
                  u.html, u.status, u.next_attempt, u.last_error, $13, $13
           FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[],
                       $8::text[], $9::bool[], $10::text[], $11::timestamptz[], $12::text[])
                  AS u(id, order_id, cid, channel, address, recipient, subject, body, html, status,
                       next_attempt, last_error)
           ON CONFLICT (order_id, channel, address) DO NOTHING""",
        *[list(c) for c in columns],
        at,
    )


async def enqueue_deliveries(conn: asyncpg.Connection, order_ids: list[uuid.UUID], at: datetime) -> None:
    """Deliver jobs for the orders' addresses still to send, grouped by when they may go."""
    await conn.execute(
        f"""INSERT INTO jobs (task, ref_id, payload, run_at, created)
            SELECT '{DELIVER_TASK}', NULL::uuid, jsonb_build_object('ids', jsonb_agg(id)), next_attempt, $2
            FROM (SELECT d.id, d.next_attempt,
                         (row_number() OVER (PARTITION BY d.next_attempt ORDER BY d.id) - 1)
                           / {DELIVERIES_PER_JOB} AS chunk
                  FROM notification_deliveries d
                  WHERE d.order_id = ANY($1::uuid[]) AND d.status = ANY($3::text[])) x
            GROUP BY next_attempt, chunk""",
        order_ids,
        at,
        list(st.CLAIMABLE),
    )


async def enqueue_delivery_job(
    conn: asyncpg.Connection, ids: list[uuid.UUID], run_at: datetime, at: datetime
) -> None:
    await conn.execute(
        f"""INSERT INTO jobs (task, ref_id, payload, run_at, created)
            VALUES ('{DELIVER_TASK}', NULL, jsonb_build_object('ids', $1::uuid[]), $2, $3)""",
        ids,
        run_at,
        at,
    )


# A delivery whose correspondence's resource is paused waits: it is neither claimed nor followed
# up (no job polls it meanwhile); resuming the resource enqueues its sending again (recall/).
HELD = """EXISTS (SELECT 1 FROM correspondences hc JOIN resource_pauses hp ON hp.resource_id = hc.resource_id
                 WHERE hc.id = {d}.correspondence_id)"""


async def claim_deliveries(
    pool: asyncpg.Pool, ids: list[uuid.UUID], now: datetime, until: datetime
) -> list[asyncpg.Record]:
    """Mark due addresses `*_Sending` and commit that before anything is sent: from then on no
    job, re-run or other worker takes them again."""
    rows: list[asyncpg.Record] = await pool.fetch(
        f"""UPDATE notification_deliveries
           SET status = CASE channel WHEN 'Email' THEN $4 ELSE $5 END, attempts = attempts + 1,
               claimed_until = $3, updated = $2
           WHERE id = ANY($1::uuid[]) AND status = ANY($6::text[]) AND next_attempt <= $2
             AND NOT {HELD.format(d="notification_deliveries")}
           RETURNING id, channel, address, subject, body, html, attempts""",
        ids,
        now,
        until,
        st.EMAIL_SENDING,
        st.SMS_SENDING,
        list(st.CLAIMABLE),
    )
    return rows


async def record_outcomes(
    pool: asyncpg.Pool,
    ids: list[uuid.UUID],
    statuses: list[str],
    errors: list[str | None],
    next_attempts: list[datetime],
    sent: list[datetime | None],
    at: datetime,
) -> None:
    """Committed on its own, right after sending, whatever happens to the job's transaction."""
    if not ids:
        return
    await pool.execute(
        """UPDATE notification_deliveries d
           SET status = u.status, last_error = u.error, next_attempt = u.next_attempt, sent = u.sent,
               claimed_until = NULL, updated = $6
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
                AS u(id, status, error, next_attempt, sent)
           WHERE d.id = u.id""",
        ids,
        statuses,
        errors,
        next_attempts,
        sent,
        at,
    )


UNKNOWN_OUTCOME = (
    "The worker stopped while sending, so whether it was accepted is unknown; it is not sent again."
)


async def give_up_stale(conn: asyncpg.Connection, ids: list[uuid.UUID], now: datetime) -> None:
    """Addresses left `*_Sending` by a worker that died mid-send: never sent again (at most once)."""
    await conn.execute(
        """UPDATE notification_deliveries
           SET status = CASE channel WHEN 'Email' THEN $3 ELSE $4 END, last_error = $5,
               claimed_until = NULL, updated = $2
           WHERE id = ANY($1::uuid[]) AND status = ANY($6::text[]) AND claimed_until < $2""",
        ids,
        now,
        st.EMAIL_FAILED,
        st.SMS_FAILED,
        UNKNOWN_OUTCOME,
        list(st.IN_FLIGHT),
    )


async def unfinished(
    conn: asyncpg.Connection, ids: list[uuid.UUID]
) -> tuple[list[uuid.UUID], datetime | None]:
    """Addresses of these still waiting (for a retry or a sender), and when to look again."""
    rows = await conn.fetch(
        f"""SELECT id, CASE WHEN status = ANY($2::text[]) THEN next_attempt ELSE claimed_until END AS due
           FROM notification_deliveries d
           WHERE id = ANY($1::uuid[]) AND (status = ANY($2::text[]) OR status = ANY($3::text[]))
             AND NOT (status = ANY($2::text[]) AND {HELD.format(d="d")})""",
        ids,
        list(st.CLAIMABLE),
        list(st.IN_FLIGHT),
    )
    if not rows:
        return [], None
    return [r["id"] for r in rows], min(r["due"] for r in rows)


async def orders_of(conn: asyncpg.Connection, delivery_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    rows = await conn.fetch(
        "SELECT DISTINCT order_id FROM notification_deliveries WHERE id = ANY($1::uuid[])", delivery_ids
    )
    return [r["order_id"] for r in rows]


async def complete_orders(
    conn: asyncpg.Connection, order_ids: list[uuid.UUID], at: datetime
) -> list[asyncpg.Record]:
    """Orders whose every address has an outcome become `Order_Completed` (once: the status is
    re-checked under the row lock), with how many addresses succeeded and failed.

    Every reading of an order's addresses is a subquery keyed by `order_id` alone, with no status
    in its WHERE, so its cost follows the batch whatever the statistics say. The statement before
    joined an aggregate of the addresses with the Processing orders, and ran for 20+ s in
    bench (d) (its plan was not caught); a `status = ANY(waiting)` probe per order, tried instead,
    read the whole partial `notification_deliveries_waiting` index for each order under stale
    statistics (18 s for 5,000 orders beside 50,000 waiting addresses)."""
    of_order = "FROM notification_deliveries d WHERE d.order_id = n.id"
    rows: list[asyncpg.Record] = await conn.fetch(
        f"""UPDATE notification_orders n
            SET processing_status = '{st.COMPLETED}', status_changed = $2,
                sent = (SELECT min(d.sent) {of_order})
            WHERE n.id = ANY($1::uuid[]) AND n.processing_status = '{st.PROCESSING}'
              AND NOT coalesce((SELECT bool_or(d.status = ANY($4::text[])) {of_order}), false)
            RETURNING n.id, n.correspondence_id, n.is_reminder,
              (SELECT count(*) FILTER (WHERE d.status = ANY($3::text[])) {of_order}) AS succeeded,
              (SELECT count(*) FILTER (WHERE NOT d.status = ANY($3::text[])) {of_order}) AS failed""",
        order_ids,
        at,
        list(st.SUCCEEDED),
        list(st.CLAIMABLE) + list(st.IN_FLIGHT),
    )
    return rows


async def orders_with_deliveries(
    conn: asyncpg.Connection | asyncpg.Pool, correspondence_id: uuid.UUID
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    orders = await conn.fetch(
        """SELECT id, is_reminder, template, channel, requested_send_time, recipient, email_address,
                  mobile_number, status, processing_status, status_changed, created
           FROM notification_orders WHERE correspondence_id = $1 ORDER BY is_reminder, created, id""",
        correspondence_id,
    )
    deliveries = await conn.fetch(
        """SELECT id, order_id, channel, address, recipient::text AS recipient, status, last_error, updated
           FROM notification_deliveries WHERE correspondence_id = $1 ORDER BY updated DESC, id DESC""",
        correspondence_id,
    )
    return list(orders), list(deliveries)
