"""Housekeeping deletes finished jobs and expanded outbox rows once they are old, nothing else."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg

from correspondence.kit import clock
from correspondence.kit.housekeeping import Housekeeping
from correspondence.kit.jobs import every
from correspondence.services import Services

DAY = timedelta(days=1)


async def test_old_finished_jobs_and_expanded_outbox_rows_go_the_rest_stays(
    services: Services, db: asyncpg.Connection
) -> None:
    now = clock.now()
    task = f"test.housekeeping.{uuid.uuid4().hex[:8]}"
    jobs = {
        name: await db.fetchval(
            """INSERT INTO jobs (task, run_at, status, finished, created)
               VALUES ($1, $2, $3, $4, $2) RETURNING id""",
            task,
            now - 30 * DAY,
            status,
            finished,
        )
        for name, status, finished in (
            ("old done", 2, now - 8 * DAY),
            ("recent done", 2, now - 6 * DAY),
            ("old failed", 3, now - 8 * DAY),
            ("queued", 0, None),
        )
    }
    outbox = {
        name: await db.fetchval(
            "INSERT INTO event_outbox (type, ids, created, dispatched) VALUES ($1, $2, $3, $4) RETURNING id",
            "correspondencepublished",
            [uuid.uuid4()],
            now - 3 * DAY,
            dispatched,
        )
        for name, dispatched in (("old", now - 2 * DAY), ("recent", now - timedelta(hours=1)))
    }
    keeper = Housekeeping(services.pool, keep_jobs=7 * DAY, keep_outbox=DAY)
    assert await keeper.run_now() >= 2

    left = {r["id"] for r in await db.fetch("SELECT id FROM jobs WHERE task = $1", task)}
    assert left == {jobs["recent done"], jobs["old failed"], jobs["queued"]}
    rows = await db.fetch("SELECT id FROM event_outbox WHERE id = ANY($1::bigint[])", list(outbox.values()))
    assert {r["id"] for r in rows} == {outbox["recent"]}
    await db.execute("DELETE FROM jobs WHERE task = $1", task)  # the queued one has no handler


async def test_as_a_poller_it_runs_at_most_once_per_period(
    services: Services, db: asyncpg.Connection
) -> None:
    keeper = Housekeeping(services.pool, keep_jobs=7 * DAY, keep_outbox=DAY)
    poller = every(3600, keeper.run_now)
    assert await poller() == 0  # runs, but never counts as work (the worker must not spin)
    task = f"test.housekeeping.{uuid.uuid4().hex[:8]}"
    await db.execute(
        "INSERT INTO jobs (task, run_at, status, finished, created) VALUES ($1, $2, 2, $2, $2)",
        task,
        clock.now() - 30 * DAY,
    )
    clock.shift(2 * DAY)  # the service clock does not make it due: the period is monotonic time
    await poller()
    assert await db.fetchval("SELECT count(*) FROM jobs WHERE task = $1", task) == 1
    await keeper.run_now()
    assert await db.fetchval("SELECT count(*) FROM jobs WHERE task = $1", task) == 0
