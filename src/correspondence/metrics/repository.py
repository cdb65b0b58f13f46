"""What /metrics reads from PostgreSQL, none of it growing with history (migration *_add_metric_totals):

- backlogs (jobs queued/running/failed, orders not yet completed, notifications waiting, outbox
  rows not yet expanded, webhook deliveries pending, files awaiting their malware scan) through
  partial indexes that hold only them;
- totals over history (events, finished notifications and orders, webhook deliveries done, attempts)
  from `metric_totals`, which triggers keep per statement in the transaction of the change."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from correspondence.kit.jobs import FIRST_LANE_SQL

JOB_STATES = {0: "queued", 1: "running", 3: "failed"}
DELIVERY_STATES = {0: "pending", 1: "delivered", 2: "failed"}
# The partial indexes' predicates (migration *_add_metric_totals): a query must repeat them exactly.
WAITING_NOTIFICATIONS = (
    "Email_New",
    "Email_Failed_TransientError",
    "SMS_New",
    "Email_Sending",
    "SMS_Sending",
)
OPEN_ORDERS = ("Registered", "Processing")

# One statement per partial index (jobs_due_first and jobs_due_rest, migration 0021; jobs_leased,
# jobs_failed), each repeating its index's predicate: a single `status IN (…)` would not be proved
# to fit any of them and would scan the table.
_JOB_PREDICATES = [
    (0, f"status = 0 AND task IN ({FIRST_LANE_SQL})"),
    (0, f"status = 0 AND task NOT IN ({FIRST_LANE_SQL})"),
    *((status, f"status = {status}") for status in JOB_STATES if status != 0),
]
_JOBS = " UNION ALL ".join(
    f"SELECT task, {status} AS status, count(*) AS n FROM jobs WHERE {where} GROUP BY task"
    for status, where in _JOB_PREDICATES
)
_OPEN_ORDERS = f"""SELECT processing_status AS status, count(*) AS n FROM notification_orders
WHERE processing_status IN ({", ".join(f"'{s}'" for s in OPEN_ORDERS)}) GROUP BY 1"""
_WAITING = f"""SELECT channel, status, count(*) AS n FROM notification_deliveries
WHERE status IN ({", ".join(f"'{s}'" for s in WAITING_NOTIFICATIONS)}) GROUP BY 1, 2"""
_EVENT_BACKLOG = """SELECT (SELECT count(*) FROM event_outbox WHERE dispatched IS NULL) AS outbox_pending,
       (SELECT count(*) FROM event_deliveries WHERE status = 0) AS deliveries_pending,
       (SELECT count(*) FROM event_subscriptions WHERE deleted IS NULL) AS subscriptions"""


# Files awaiting their malware scan, through the partial index attachments_awaiting_scan (its
# predicate repeated): being scanned (a live claim), waiting after a failed try, or not yet tried.
_SCANS = """SELECT count(*) FILTER (WHERE scan_token IS NOT NULL AND scan_due > $1) AS scanning,
       count(*) FILTER (WHERE scan_tries > 0 AND (scan_token IS NULL OR scan_due <= $1)) AS retrying,
       count(*) AS awaiting
FROM attachments WHERE status = 1 AND blob_key IS NOT NULL"""


async def scan_backlog(conn: asyncpg.Connection, now: datetime) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(_SCANS, now)
    return row


async def job_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(_JOBS)
    return rows


async def open_order_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(_OPEN_ORDERS)
    return rows


async def waiting_notification_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Per channel and status, the addresses not yet sent or finally failed."""
    rows: list[asyncpg.Record] = await conn.fetch(_WAITING)
    return rows


async def event_backlog(conn: asyncpg.Connection) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(_EVENT_BACKLOG)
    return row


async def totals(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """(metric, a, b, value): see migration *_add_metric_totals for what each metric's labels a and b are."""
    rows: list[asyncpg.Record] = await conn.fetch("SELECT metric, a, b, value FROM metric_totals")
    return rows
