"""Deletes what only the queues needed: jobs finished long ago and outbox rows already expanded
into events. Without it both tables grow by several rows per Initialize forever.

Failed jobs are kept (they are what an operator looks at), and so are events and their deliveries
(the delivery log and the sender's views read them)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from correspondence.kit import clock

BATCH = 10_000

_DELETE_JOBS = """
DELETE FROM jobs WHERE id IN (
  SELECT id FROM jobs WHERE status = 2 AND finished < $1 ORDER BY finished LIMIT $2)"""
_DELETE_OUTBOX = """
DELETE FROM event_outbox WHERE id IN (
  SELECT id FROM event_outbox WHERE dispatched < $1 ORDER BY id LIMIT $2)"""


class Housekeeping:
    """Run as a worker poller through `kit.jobs.every` (once a minute)."""

    def __init__(self, pool: asyncpg.Pool, *, keep_jobs: timedelta, keep_outbox: timedelta) -> None:
        self._pool = pool
        self._keep_jobs = keep_jobs
        self._keep_outbox = keep_outbox

    async def run_now(self) -> int:
        """Delete in batches of BATCH until nothing old is left; returns how many rows went."""
        now = clock.now()
        deleted = 0
        for sql, cutoff in ((_DELETE_JOBS, now - self._keep_jobs), (_DELETE_OUTBOX, now - self._keep_outbox)):
            while True:
                status: str = await self._pool.execute(sql, cutoff, BATCH)
                count = int(status.rsplit(" ", 1)[-1])
                deleted += count
                if count < BATCH:
                    break
        return deleted
