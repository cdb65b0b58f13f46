"""Jobs in PostgreSQL: enqueued in the caller's transaction, claimed with SKIP LOCKED under a
lease, run in batches, retried with backoff. A worker that dies leaves its jobs leased; when the
lease runs out another worker takes them again, so no job is lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from correspondence.kit import clock
from correspondence.kit.outage import Outage, is_database_unavailable

log = logging.getLogger("correspondence.jobs")

QUEUED, RUNNING, DONE, FAILED = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    task: str
    ref_id: uuid.UUID | None
    payload: dict[str, Any] | None
    attempts: int

    def refs(self) -> list[uuid.UUID]:
        """The entities a job is about: its ref_id, and any ids listed in its payload."""
        out = [self.ref_id] if self.ref_id is not None else []
        ids = self.payload.get("ids") if self.payload else None
        if isinstance(ids, list):
            out.extend(uuid.UUID(str(i)) for i in ids)
        return out


Handler = Callable[[asyncpg.Connection, list[Job]], Awaitable[None]]
# A poller drains a queue of its own (the events outbox, webhook deliveries) and says how many
# items it handled; the worker calls it every round, after the jobs.
Poller = Callable[[], Awaitable[int]]


def every(seconds: float, poller: Poller) -> Poller:
    """`poller` at most once per `seconds` of monotonic time (so moving the service clock in tests
    does not make it run every round), never reported as work: the worker must not spin on it."""
    last = float("-inf")

    async def run() -> int:
        nonlocal last
        if time.monotonic() - last < seconds:
            return 0
        last = time.monotonic()
        await poller()
        return 0

    return run


async def enqueue(
    conn: asyncpg.Connection,
    task: str,
    *,
    ref_id: uuid.UUID | None = None,
    run_at: datetime | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO jobs (task, ref_id, payload, run_at, created) VALUES ($1, $2, $3::jsonb, $4, $5)",
        task,
        ref_id,
        orjson.dumps(payload).decode() if payload is not None else None,
        run_at or clock.now(),
        clock.now(),
    )


_CLAIM = """
WITH due AS (
  SELECT id FROM jobs WHERE status = 0 AND run_at <= $1 ORDER BY run_at LIMIT $3 FOR UPDATE SKIP LOCKED),
expired AS (
  SELECT id FROM jobs WHERE status = 1 AND locked_until < $1 LIMIT $3 FOR UPDATE SKIP LOCKED)
UPDATE jobs SET status = 1, attempts = attempts + 1, locked_until = $2
WHERE id IN (SELECT id FROM due UNION ALL SELECT id FROM expired)
RETURNING id, task, ref_id, payload::text AS payload, attempts
"""


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 2 ** min(attempts, 12)))


class Worker:
    """Runs registered handlers for due jobs until stopped."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        poll_seconds: float = 0.5,
        batch_size: int = 500,
        lease_seconds: float = 60.0,
        max_attempts: int = 10,
    ) -> None:
        self._pool = pool
        self._handlers: dict[str, Handler] = {}
        self._pollers: list[tuple[str, Poller]] = []
        self._poll = poll_seconds
        self._batch = batch_size
        self._lease = timedelta(seconds=lease_seconds)
        self._max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._stopping = False

    def register(self, task: str, handler: Handler) -> None:
        self._handlers[task] = handler

    def add_poller(self, name: str, poller: Poller) -> None:
        self._pollers.append((name, poller))

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        outage = Outage("worker", log)
        while not self._stopping:
            pause = self._poll
            try:
                worked = await self.run_once()
                outage.succeeded()
            except Exception as exc:  # nothing may end the loop: the jobs would wait for a restart
                if is_database_unavailable(exc):  # one warning per outage, a growing pause
                    pause = outage.failed(exc)
                else:
                    log.exception("job poll failed")
                worked = 0
            if worked == 0 and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)

    async def claim(self) -> list[Job]:
        now = clock.now()
        rows = await self._pool.fetch(_CLAIM, now, now + self._lease, self._batch)
        return [
            Job(
                r["id"],
                r["task"],
                r["ref_id"],
                orjson.loads(r["payload"]) if r["payload"] else None,
                r["attempts"],
            )
            for r in rows
        ]

    async def run_once(self) -> int:
        """Claim one batch of due jobs and run it; returns how many jobs were claimed."""
        jobs = await self.claim()
        by_task: dict[str, list[Job]] = {}
        for job in jobs:
            by_task.setdefault(job.task, []).append(job)
        for task, batch in by_task.items():
            await self._run_batch(task, batch)
        worked = len(jobs)
        for name, poller in self._pollers:
            try:
                worked += await poller()
            except Exception as exc:  # one queue's failure must not stop the others
                if is_database_unavailable(exc):
                    raise  # nor can the others run: run() waits for the database
                log.exception("poller %s failed", name)
        return worked

    async def _run_batch(self, task: str, batch: list[Job]) -> None:
        handler = self._handlers.get(task)
        if handler is None:
            await self._fail(batch, f"no handler for task {task}")
            return
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await handler(conn, batch)
                await self._done(conn, batch)
            return
        except Exception as exc:  # a job's failure must never stop the worker
            if is_database_unavailable(exc):
                raise  # not the jobs' fault: they stay leased and run again when the lease runs out
            if len(batch) > 1:
                log.warning("batch of %s %s jobs failed (%s); running them one by one", len(batch), task, exc)
                for job in batch:
                    await self._run_batch(task, [job])
                return
            log.exception("job %s (%s) failed", batch[0].id, task)
            await self._fail(batch, f"{type(exc).__name__}: {exc}")

    async def _done(self, conn: asyncpg.Connection, batch: list[Job]) -> None:
        await conn.execute(
            "UPDATE jobs SET status = 2, finished = $2, locked_until = NULL WHERE id = ANY($1::bigint[])",
            [j.id for j in batch],
            clock.now(),
        )

    async def _fail(self, batch: list[Job], error: str) -> None:
        now = clock.now()
        for job in batch:
            final = job.attempts >= self._max_attempts
            await self._pool.execute(
                """UPDATE jobs SET status = $2::smallint, run_at = $3, last_error = $4, locked_until = NULL,
                          finished = CASE WHEN $2::smallint = 3 THEN $5::timestamptz ELSE NULL END
                   WHERE id = $1""",
                job.id,
                FAILED if final else QUEUED,
                now + backoff(job.attempts),
                error[:2000],
                now,
            )
