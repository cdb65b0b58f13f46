"""Commit a batch: from now on the worker creates and publishes its correspondences."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg

from correspondence.auth.caller import Caller
from correspondence.batch import errors
from correspondence.batch import repository as repo
from correspondence.batch.schemas import COMMITTED, OPEN, STATUS_NAMES
from correspondence.batch.use_cases.view import owned_batch, to_wire
from correspondence.kit import clock
from correspondence.kit.jobs import enqueue

PROGRESS_EVERY = timedelta(seconds=1)


async def commit_batch(*, pool: asyncpg.Pool, caller: Caller, batch_id: uuid.UUID) -> dict[str, Any]:
    now = clock.now()
    async with pool.acquire() as conn, conn.transaction():
        batch = await owned_batch(conn, caller, batch_id, lock=True)
        if batch["status"] != OPEN:
            raise errors.NOT_OPEN(status=STATUS_NAMES[batch["status"]])
        if batch["recipients"] == 0:
            raise errors.EMPTY()
        await repo.set_status(conn, batch_id, COMMITTED, now)
        await enqueue(conn, repo.CREATE_TASK, ref_id=batch_id, run_at=now)
        await enqueue(conn, repo.PROGRESS_TASK, ref_id=batch_id, run_at=now + PROGRESS_EVERY)
        row = await repo.get_batch(conn, batch_id)
    assert row is not None
    return to_wire(row)
