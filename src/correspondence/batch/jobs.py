"""Background jobs of the batch slice: a committed batch's chunks, one job after another (so a big
batch never holds the worker for long, and other jobs run between its chunks), and the follower
that counts its progress and completes it."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from correspondence.batch import repository as repo
from correspondence.batch.use_cases.create_correspondences import create_next_chunk
from correspondence.batch.use_cases.progress import follow_batch
from correspondence.kit import clock
from correspondence.kit.jobs import Job, Worker, enqueue
from correspondence.services import Services

# The follower looks every second while things change, then ever less often, at most every 30 s
# (a batch published in the future, or waiting for its SMS window).
_FIRST, _LONGEST = 1.0, 30.0


def follow_delay(idle_rounds: int) -> timedelta:
    return timedelta(seconds=min(_LONGEST, _FIRST * 1.5 ** min(idle_rounds, 20)))


def register(worker: Worker, services: Services) -> None:
    s = services.settings
    reminder_delay = timedelta(days=s.reminder_delay_days)

    async def create(conn: asyncpg.Connection, jobs: list[Job]) -> None:
        for job in jobs:
            if job.ref_id is None:
                continue
            more = await create_next_chunk(
                conn,
                pool=services.pool,
                resources=services.resources,
                batch_id=job.ref_id,
                chunk_size=s.batch_chunk_size,
                reminder_delay=reminder_delay,
                notification_cap=services.limits.notification_cap,
            )
            if more:  # the next chunk is the next job: the worker runs others in between
                await enqueue(conn, repo.CREATE_TASK, ref_id=job.ref_id)

    async def follow(conn: asyncpg.Connection, jobs: list[Job]) -> None:
        for job in jobs:
            if job.ref_id is None:
                continue
            progress = await follow_batch(conn, job.ref_id)
            if progress.finished:
                continue
            idle = 0 if progress.changed else int((job.payload or {}).get("idle", 0)) + 1
            await enqueue(
                conn,
                repo.PROGRESS_TASK,
                ref_id=job.ref_id,
                run_at=clock.now() + follow_delay(idle),
                payload={"idle": idle},
            )

    worker.register(repo.CREATE_TASK, create)
    worker.register(repo.PROGRESS_TASK, follow)
