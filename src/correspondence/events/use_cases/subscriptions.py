"""Read and delete the caller's own subscriptions, and read a subscription's delivery log."""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from correspondence.adapters.webhooks import CONNECTION_FAILED, REASONS
from correspondence.auth.caller import Caller
from correspondence.events import errors
from correspondence.events import repository as repo
from correspondence.events.use_cases.deliver import SUBSCRIPTION_DELETED
from correspondence.events.use_cases.subscribe import consumer_of, role_of, subscription_body
from correspondence.kit import clock

_STATUS = {repo.PENDING: "Pending", repo.DELIVERED: "Delivered", repo.FAILED: "Failed"}
_SHOWN = REASONS | {SUBSCRIPTION_DELETED}
_HTTP_STATUS = re.compile(r"HTTP [0-9]{3}")


def _public_error(text: str | None) -> str | None:
    """Only the generic reasons are shown; anything else stored (exception texts written before
    the sender said less) reads as a failed connection."""
    if text is None or text in _SHOWN or _HTTP_STATUS.fullmatch(text):
        return text
    return CONNECTION_FAILED


def _covers(caller: Caller, row: asyncpg.Record) -> bool:
    """The caller holds every role the subscription was made with: one that hears the owner's
    events is the sender's business (sender policy), whoever else the organisation's tokens are."""
    return row["consumer"] == consumer_of(caller) and int(row["role"]) & ~role_of(caller) == 0


async def _own(pool: asyncpg.Pool, caller: Caller, sid: int) -> asyncpg.Record:
    row = await repo.get_subscription(pool, sid)
    if row is None:
        raise errors.subscription_not_found()
    if not _covers(caller, row):
        raise errors.not_your_subscription()
    return row


async def list_subscriptions(pool: asyncpg.Pool, *, caller: Caller) -> dict[str, Any]:
    rows = [r for r in await repo.list_subscriptions(pool, consumer_of(caller)) if _covers(caller, r)]
    return {"count": len(rows), "subscriptions": [subscription_body(r) for r in rows]}


async def get_subscription(pool: asyncpg.Pool, *, caller: Caller, sid: int) -> dict[str, Any]:
    return subscription_body(await _own(pool, caller, sid))


async def delete_subscription(pool: asyncpg.Pool, *, caller: Caller, sid: int) -> None:
    await _own(pool, caller, sid)
    async with pool.acquire() as conn, conn.transaction():
        await repo.delete_subscription(conn, sid, clock.now())


async def delivery_log(
    pool: asyncpg.Pool, *, caller: Caller, sid: int, before: int | None, limit: int
) -> dict[str, Any]:
    """Newest first; `before` (a delivery id) pages further back."""
    await _own(pool, caller, sid)
    rows = await repo.deliveries_of(pool, sid, before=before, limit=limit)
    items = [
        {
            "id": r["id"],
            "eventId": str(r["event_id"]),
            "type": r["type"],
            "resourceinstance": r["resourceinstance"],
            "subject": r["subject"],
            "time": r["time"],
            "status": _STATUS[r["status"]],
            "attempts": r["attempts"],
            "nextAttempt": r["next_attempt"] if r["status"] == repo.PENDING else None,
            "lastStatusCode": r["last_status_code"],
            "lastError": _public_error(r["last_error"]),
            "delivered": r["delivered"],
        }
        for r in rows
    ]
    return {"deliveries": items, "next": items[-1]["id"] if len(items) == limit else None}
