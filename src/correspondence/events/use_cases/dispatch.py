"""Turn committed outbox rows into CloudEvents and one delivery per matching subscription."""

from __future__ import annotations

import asyncpg

from correspondence.events import repository as repo
from correspondence.events.outbox import RECIPIENT_SUBJECT
from correspondence.kit import clock

_RECIPIENT_SUBJECT = sorted(RECIPIENT_SUBJECT)


async def dispatch_outbox(
    pool: asyncpg.Pool, *, base_url: str, batch_size: int, max_batches: int = 20
) -> int:
    """Drain up to `max_batches` batches, each in its own transaction; returns the events made."""
    made = 0
    for _ in range(max_batches):
        async with pool.acquire() as conn, conn.transaction():
            row = await repo.dispatch(
                conn,
                limit=batch_size,
                now=clock.now(),
                base_url=base_url.rstrip("/"),
                recipient_subject=_RECIPIENT_SUBJECT,
            )
        made += row["events"]
        if row["rows"] < batch_size:
            break
    return made
