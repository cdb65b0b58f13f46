"""Send the stored addresses of notification orders, each at most once, retrying transient
failures with exponential backoff, and complete the orders (with their events) when every
address has an outcome.

The job's own transaction is not where sending is recorded: a claim (`*_Sending`) is committed
before a message leaves and the outcome right after, each on its own, so a job that is run again
after an error, or taken over from a dead worker, finds nothing to send twice."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from correspondence.adapters.email import Email, EmailSender
from correspondence.adapters.outbound import DeliveryError
from correspondence.adapters.sms import Sms, SmsGateway
from correspondence.events import outbox
from correspondence.kit import clock
from correspondence.notification import repository as repo
from correspondence.notification import statuses as st
from correspondence.notification.window import next_sms_time

log = logging.getLogger("correspondence.notification")


@dataclass(frozen=True, slots=True)
class SmsWindow:
    start: time
    end: time
    zone: ZoneInfo

    def next(self, at: datetime) -> datetime:
        return next_sms_time(at, self.start, self.end, self.zone)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    first_delay_seconds: float
    claim_seconds: float  # longer than any one send can take (the adapters' time-outs)

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(3600.0, self.first_delay_seconds * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class Channels:
    email: EmailSender
    sms: SmsGateway


async def _send(row: asyncpg.Record, channels: Channels) -> tuple[DeliveryError | None, datetime]:
    """The outcome, and when it came (an address's `sent` time)."""
    try:
        if row["channel"] == st.EMAIL:
            await channels.email.send(
                Email(row["address"], row["subject"] or "", row["body"], row["html"], attempt=row["attempts"])
            )
        else:
            await channels.sms.send(Sms(row["address"], row["body"], attempt=row["attempts"]))
    except DeliveryError as exc:
        return exc, clock.now()
    except Exception as exc:  # an adapter's bug must not lose the outcomes of the others
        log.exception("notification adapter failed")
        return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False), clock.now()
    return None, clock.now()


# Claimed and sent a slice at a time: each slice's claim must outlive its sending, and a batch of
# jobs can name 10,000 addresses, which a slow mail server could take minutes to accept.
CLAIM_SLICE = 256


async def deliver(
    conn: asyncpg.Connection,
    *,
    pool: asyncpg.Pool,
    ids: list[uuid.UUID],
    channels: Channels,
    retry: RetryPolicy,
    window: SmsWindow,
) -> None:
    for start in range(0, len(ids), CLAIM_SLICE):
        await _deliver_slice(pool, ids[start : start + CLAIM_SLICE], channels, retry, window)
    await _follow_up(conn, ids, clock.now())


async def _deliver_slice(
    pool: asyncpg.Pool, ids: list[uuid.UUID], channels: Channels, retry: RetryPolicy, window: SmsWindow
) -> None:
    now = clock.now()
    claimed = await repo.claim_deliveries(pool, ids, now, now + timedelta(seconds=retry.claim_seconds))
    if not claimed:
        return  # sent already, or another worker has them
    outcomes = await asyncio.gather(*(_send(row, channels) for row in claimed))
    statuses: list[str] = []
    errors: list[str | None] = []
    next_attempts: list[datetime] = []
    sent: list[datetime | None] = []
    for row, (failure, done) in zip(claimed, outcomes, strict=True):
        kind = row["channel"]
        retry_at = done
        if failure is None:
            status = st.ACCEPTED[kind]
        elif failure.permanent or row["attempts"] >= retry.max_attempts:
            status = st.FAILED[kind]
        else:
            status = st.RETRYING[kind]
            retry_at = done + retry.delay(row["attempts"])
            if kind == st.SMS:
                retry_at = window.next(retry_at)
        statuses.append(status)
        errors.append(None if failure is None else str(failure)[:2000])
        next_attempts.append(retry_at)
        sent.append(done if failure is None else None)
    claimed_ids = [r["id"] for r in claimed]
    await repo.record_outcomes(pool, claimed_ids, statuses, errors, next_attempts, sent, clock.now())


async def _follow_up(conn: asyncpg.Connection, ids: list[uuid.UUID], now: datetime) -> None:
    """Derived from the stored state only, so a re-run does exactly what a first run would."""
    await repo.give_up_stale(conn, ids, now)
    waiting, due = await repo.unfinished(conn, ids)
    if waiting and due is not None:
        await repo.enqueue_delivery_job(conn, waiting, max(due, now + timedelta(seconds=1)), now)
    await finish_orders(conn, await repo.orders_of(conn, ids), now)


async def finish_orders(conn: asyncpg.Connection, order_ids: list[uuid.UUID], now: datetime) -> None:
    """Complete the orders that have an outcome for every address, and tell subscribers how they
    went (behaviour.md §5.7): delivered when someone got it; all-failed when nobody got the main
    notification; failed when some address failed."""
    events: dict[str, list[uuid.UUID]] = {}
    for row in await repo.complete_orders(conn, order_ids, now):
        cid = row["correspondence_id"]
        if row["succeeded"]:
            kind = (
                "correspondencenotificationreminderdelivered"
                if row["is_reminder"]
                else ("correspondencenotificationdelivered")
            )
            events.setdefault(kind, []).append(cid)
        if row["failed"]:
            all_failed = not row["succeeded"] and not row["is_reminder"]
            kind = "correspondencenotificationallfailed" if all_failed else "correspondencenotificationfailed"
            events.setdefault(kind, []).append(cid)
    for kind, cids in events.items():
        await outbox.record(conn, kind, cids)
