"""Counts read from PostgreSQL at scrape time: true for every API and worker process at once."""

from __future__ import annotations

import asyncpg

JOB_STATES = {0: "queued", 1: "running", 3: "failed"}
DELIVERY_STATES = {0: "pending", 1: "delivered", 2: "failed"}


async def job_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT task, status, count(*) AS n FROM jobs WHERE status IN (0, 1, 3) GROUP BY task, status"
    )
    return rows


async def notification_order_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT processing_status AS status, count(*) AS n FROM notification_orders GROUP BY 1"
    )
    return rows


async def notification_delivery_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Per channel and send status (Email_Succeeded, SMS_Failed, …)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT channel, status, count(*) AS n FROM notification_deliveries GROUP BY 1, 2"
    )
    return rows


async def event_counts(conn: asyncpg.Connection) -> asyncpg.Record:
    row: asyncpg.Record = await conn.fetchrow(
        """SELECT (SELECT count(*) FROM event_outbox WHERE dispatched IS NULL) AS outbox_pending,
                  (SELECT count(*) FROM events) AS events,
                  (SELECT count(*) FROM event_subscriptions WHERE deleted IS NULL) AS subscriptions"""
    )
    return row


async def event_delivery_counts(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        """SELECT status, count(*) AS n, coalesce(sum(attempts), 0) AS attempts
           FROM event_deliveries GROUP BY status"""
    )
    return rows
