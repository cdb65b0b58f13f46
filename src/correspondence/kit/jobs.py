"""Jobs in PostgreSQL: enqueued in the caller's transaction, claimed with SKIP LOCKED under a
short lease, run in batches, retried with backoff.

While a worker runs a batch, a heartbeat extends the lease of every job it still holds (every
lease/3), so a handler may take as long as it needs. A worker that dies stops its heartbeat: its
jobs are taken again by another worker when the lease runs out (15 s by default), so no job is
lost. A worker asked to stop finishes the batch it is running (for at most `shutdown_seconds`,
then it is cancelled and rolled back) and releases every job it has not finished: queued again at
once, lease cleared, the attempt not counted, so another worker takes them without waiting.

A worker runs two lanes side by side, each its own loop with its own claims: the first takes only
the FIRST_LANE tasks (publishing), the other everything else. So what was accepted is published
even while the other lane works through a backlog of notifications or a batch's chunks; one loop
took them in `run_at` order, and one slow round of e-mails held up every publish behind it. Each
lane has a partial index of its own due jobs (migration 0021)."""

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


# The tasks the first lane claims; the other lane claims every other task. Migration 0021's partial
# indexes (jobs_due_first, jobs_due_rest) are written with these very names, so each lane's claim
# reads only its own due jobs: change both together.
FIRST_LANE = ("correspondence.publish",)

_CLAIM = """
WITH due AS (
  SELECT id FROM jobs WHERE status = 0 AND run_at <= $1 AND {tasks} ORDER BY run_at LIMIT $3
  FOR UPDATE SKIP LOCKED),
expired AS (
  SELECT id FROM jobs WHERE status = 1 AND locked_until < $1 AND {tasks} LIMIT $3 FOR UPDATE SKIP LOCKED)
UPDATE jobs SET status = 1, attempts = attempts + 1, locked_until = $2
WHERE id IN (SELECT id FROM due UNION ALL SELECT id FROM expired)
RETURNING id, task, ref_id, payload::text AS payload, attempts, run_at
"""


# The publish lane claims this many times the batch size a round: under an API's load every round
# trip of a round waits behind requests, so a round's fixed cost, not its rows, set the pace
# (bench/RESULTS.md, scenario (d)). A round's jobs are still written in transactions of at most
# REFS_PER_TRANSACTION correspondences, however many a bulk request's job names.
PUBLISH_ROUND_FACTOR = 5
REFS_PER_TRANSACTION = 2000


def chunks(batch: list[Job], most: int) -> list[list[Job]]:
    """`batch` in order, cut so that no part names more than `most` refs (a job naming more goes alone)."""
    parts: list[list[Job]] = []
    size = 0
    for job in batch:
        refs = max(1, len(job.refs()))
        if parts and size + refs <= most:
            parts[-1].append(job)
            size += refs
        else:
            parts.append([job])
            size = refs
    return parts


def _literals(tasks: tuple[str, ...]) -> str:
    return ", ".join("'" + task.replace("'", "''") + "'" for task in tasks)


# FIRST_LANE as SQL literals, for statements that must repeat the partial indexes' predicates.
FIRST_LANE_SQL = _literals(FIRST_LANE)


class _Lane:
    """One loop of a worker: its claim, the jobs it holds and the batch it is running."""

    def __init__(self, name: str, tasks_sql: str, *, pollers: bool, claim: int) -> None:
        self.name = name
        self.claim = claim  # jobs claimed a round
        self.claim_sql = _CLAIM.format(tasks=tasks_sql)
        self.pollers = pollers  # the outbox and other queues are drained by one lane only
        self.wake = asyncio.Event()
        self.held: set[int] = set()  # claimed by this lane, not yet finished
        self.running: asyncio.Task[None] | None = None  # the batch being run


# Held jobs, still running: the lease moves on; finished ones (status 2, or queued again by _fail)
# are left alone.
_EXTEND = "UPDATE jobs SET locked_until = $2 WHERE id = ANY($1::bigint[]) AND status = 1"
# Given back unfinished by a worker that stops: due again now, without the attempt its claim counted.
_RELEASE = """UPDATE jobs SET status = 0, locked_until = NULL, attempts = GREATEST(attempts - 1, 0)
WHERE id = ANY($1::bigint[]) AND status = 1"""


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 2 ** min(attempts, 12)))


class Worker:
    """Runs registered handlers for due jobs until stopped, in two lanes (see the module's text)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        poll_seconds: float = 0.5,
        batch_size: int = 500,
        lease_seconds: float = 15.0,
        max_attempts: int = 10,
        shutdown_seconds: float = 10.0,
    ) -> None:
        self._pool = pool
        self._handlers: dict[str, Handler] = {}
        self._pollers: list[tuple[str, Poller]] = []
        self._poll = poll_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._max_attempts = max_attempts
        self._shutdown = shutdown_seconds
        publish_round = batch_size * PUBLISH_ROUND_FACTOR
        self._lanes = (
            _Lane("publish", f"task IN ({FIRST_LANE_SQL})", pollers=False, claim=publish_round),
            _Lane("other", f"task NOT IN ({FIRST_LANE_SQL})", pollers=True, claim=batch_size),
        )
        self._stopping = False
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The connections the jobs run on: for what a handler commits apart from its job's transaction."""
        return self._pool

    def register(self, task: str, handler: Handler) -> None:
        self._handlers[task] = handler

    def add_poller(self, name: str, poller: Poller) -> None:
        self._pollers.append((name, poller))

    def wake(self) -> None:
        for lane in self._lanes:
            lane.wake.set()

    def stop(self) -> None:
        """Claim nothing more; the running batches have `shutdown_seconds` to finish, then they are
        cancelled. Unfinished jobs are released by each lane on its way out."""
        if self._stopping:
            return
        self._stopping = True
        self.wake()
        with contextlib.suppress(RuntimeError):  # no running loop: nothing can be running either
            self._deadline = asyncio.get_running_loop().call_later(self._shutdown, self._cancel_running)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def _cancel_running(self) -> None:
        for lane in self._lanes:
            if lane.running is not None and not lane.running.done():
                log.warning(
                    "stopping: the running %s batch did not finish within %s s; cancelled",
                    lane.name,
                    self._shutdown,
                )
                lane.running.cancel()

    async def run(self) -> None:
        outage = Outage("worker", log)  # shared: one warning per outage, not one per lane
        try:
            await asyncio.gather(*(self._run_lane(lane, outage) for lane in self._lanes))
        finally:
            if self._deadline is not None:
                self._deadline.cancel()

    async def _run_lane(self, lane: _Lane, outage: Outage) -> None:
        while not self._stopping:
            pause = self._poll
            try:
                worked = await self._lane_once(lane)
                outage.succeeded()
            except Exception as exc:  # nothing may end the loop: the jobs would wait for a restart
                if is_database_unavailable(exc):  # one warning per outage, a growing pause
                    pause = outage.failed(exc)
                else:
                    log.exception("job poll failed")
                worked = 0
            if worked == 0 and not self._stopping:
                lane.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lane.wake.wait(), pause)

    async def claim(self, lane: _Lane | None = None) -> list[Job]:
        """One batch of due jobs of `lane`, or of each lane."""
        if lane is None:
            return [job for each in self._lanes for job in await self.claim(each)]
        now = clock.now()
        rows = await self._pool.fetch(lane.claim_sql, now, now + self._lease, lane.claim)
        rows.sort(key=lambda r: (r["run_at"], r["id"]))  # RETURNING keeps no order: oldest first
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
        """One round of each lane: claim a batch of due jobs and run it, then (the other lane) the
        pollers; returns how many jobs and items were handled."""
        worked = 0
        for lane in self._lanes:
            worked += await self._lane_once(lane)
        return worked

    async def _lane_once(self, lane: _Lane) -> int:
        if self._stopping:
            return 0
        jobs = await self.claim(lane)
        lane.held = {job.id for job in jobs}
        heartbeat = asyncio.create_task(self._heartbeat(lane)) if jobs else None
        try:
            by_task: dict[str, list[Job]] = {}
            for job in jobs:
                by_task.setdefault(job.task, []).append(job)
            for task, batch in by_task.items():
                for part in chunks(batch, REFS_PER_TRANSACTION):
                    if self._stopping:
                        break  # the rest is released below
                    await self._run_guarded(lane, task, part)
        finally:
            lane.running = None
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
            if lane.held:
                await self._release(lane)
        worked = len(jobs)
        if self._stopping or not lane.pollers:
            return worked
        for name, poller in self._pollers:
            try:
                worked += await poller()
            except Exception as exc:  # one queue's failure must not stop the others
                if is_database_unavailable(exc):
                    raise  # nor can the others run: the lane waits for the database
                log.exception("poller %s failed", name)
        return worked

    async def _run_guarded(self, lane: _Lane, task: str, batch: list[Job]) -> None:
        """Run a batch as its own task, so stop() can cancel it without cancelling the lane; when
        the lane itself is cancelled, the batch is cancelled and awaited before its jobs are released."""
        running = lane.running = asyncio.create_task(self._run_batch(lane, task, batch))
        try:
            await asyncio.wait([running])
        except asyncio.CancelledError:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            raise
        if not running.cancelled():
            running.result()

    async def _heartbeat(self, lane: _Lane) -> None:
        """Keep the lease of the jobs still held, every lease/3, while the batch runs."""
        every_seconds = self._lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self._pool.execute(_EXTEND, list(lane.held), clock.now() + self._lease)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("job heartbeat failed (the lease runs out unless the next one works): %s", exc)

    async def _release(self, lane: _Lane) -> None:
        """Give the unfinished jobs back at once (stopping, or a batch cancelled): not counted as
        an attempt. If this fails too, their lease runs out and another worker takes them."""
        held, lane.held = list(lane.held), set()
        try:
            await self._pool.execute(_RELEASE, held)
            log.info("released %s unfinished jobs", len(held))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("could not release %s jobs (taken again after their lease): %s", len(held), exc)

    async def _run_batch(self, lane: _Lane, task: str, batch: list[Job]) -> None:
        handler = self._handlers.get(task)
        if handler is None:
            await self._fail(lane, batch, f"no handler for task {task}")
            return
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await handler(conn, batch)
                await self._done(conn, batch)
            lane.held.difference_update(j.id for j in batch)
            return
        except Exception as exc:  # a job's failure must never stop the worker
            if is_database_unavailable(exc):
                raise  # not the jobs' fault: they stay leased and run again when the lease runs out
            if len(batch) > 1:
                log.warning("batch of %s %s jobs failed (%s); running them one by one", len(batch), task, exc)
                for job in batch:
                    await self._run_batch(lane, task, [job])
                return
            log.exception("job %s (%s) failed", batch[0].id, task)
            await self._fail(lane, batch, f"{type(exc).__name__}: {exc}")

    async def _done(self, conn: asyncpg.Connection, batch: list[Job]) -> None:
        await conn.execute(
            "UPDATE jobs SET status = 2, finished = $2, locked_until = NULL WHERE id = ANY($1::bigint[])",
            [j.id for j in batch],
            clock.now(),
        )

    async def _fail(self, lane: _Lane, batch: list[Job], error: str) -> None:
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
            lane.held.discard(job.id)
