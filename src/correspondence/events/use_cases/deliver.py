"""Deliver due events to subscribers: POST CloudEvents (structured mode), signed, concurrently;
retry with exponential backoff; give up after the configured number of attempts.

Delivery is at least once: a worker that dies between a subscriber's 2xx and the commit leaves the
lease to run out and the event is sent again, with the same `webhook-id` (the event id) so the
subscriber can drop the repeat."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import orjson

from correspondence.adapters.webhooks import PostResult, WebhookSender
from correspondence.events import repository as repo
from correspondence.events import signing
from correspondence.kit import clock

SUBSCRIPTION_DELETED = "subscription deleted"


@dataclass(frozen=True)
class DeliveryPolicy:
    batch_size: int = 500
    concurrency: int = 64
    lease: timedelta = timedelta(seconds=60)
    max_attempts: int = 12
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 3600.0

    def retry_at(self, now: datetime, attempts: int) -> datetime:
        delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1))
        return now + timedelta(seconds=delay)


def cloud_event(row: asyncpg.Record) -> bytes:
    """The CloudEvent 1.0 JSON of an event row (behaviour.md §6: lower-case names, data null)."""
    return orjson.dumps(
        {
            "specversion": "1.0",
            "id": str(row["event_id"]),
            "source": row["source"],
            "type": row["type"],
            "time": row["time"],
            "resource": row["resource"],
            "resourceinstance": row["resourceinstance"],
            "subject": row["subject"],
            "alternativesubject": row["alternativesubject"],
            "data": None,
        },
        option=orjson.OPT_UTC_Z,
    )


async def deliver_due(pool: asyncpg.Pool, sender: WebhookSender, policy: DeliveryPolicy) -> int:
    """One batch of due deliveries; returns how many were attempted."""
    now = clock.now()
    rows = await repo.claim_deliveries(pool, now=now, lease_until=now + policy.lease, limit=policy.batch_size)
    if not rows:
        return 0
    gate = asyncio.Semaphore(policy.concurrency)
    # Signatures carry wall-clock time: subscribers check it against their own clocks.
    stamp = int(time.time())

    async def post(row: asyncpg.Record) -> PostResult:
        if row["cancelled"]:
            return PostResult(None, SUBSCRIPTION_DELETED)
        body = cloud_event(row)
        headers = signing.headers(row["secret"], str(row["event_id"]), stamp, body)
        async with gate:
            return await sender.post(row["end_point"], body, headers)

    results = await asyncio.gather(*(post(r) for r in rows))
    done = clock.now()
    statuses: list[int] = []
    next_attempts: list[datetime] = []
    for row, result in zip(rows, results, strict=True):
        if result.ok:
            statuses.append(repo.DELIVERED)
        elif row["cancelled"] or result.status_code == 410 or row["attempts"] >= policy.max_attempts:
            statuses.append(repo.FAILED)  # 410 Gone: the subscriber asks us to stop
        else:
            statuses.append(repo.PENDING)
        next_attempts.append(policy.retry_at(done, row["attempts"]))
    await repo.finish_deliveries(
        pool,
        ids=[r["id"] for r in rows],
        statuses=statuses,
        codes=[r.status_code for r in results],
        errors=[r.error for r in results],
        next_attempts=next_attempts,
        now=done,
    )
    return len(rows)
