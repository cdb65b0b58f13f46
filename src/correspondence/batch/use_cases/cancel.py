"""Cancel an open batch: nothing of it was created, and nothing will be."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from correspondence.auth.caller import Caller
from correspondence.batch import errors
from correspondence.batch import repository as repo
from correspondence.batch.schemas import CANCELLED, OPEN, STATUS_NAMES
from correspondence.batch.use_cases.view import owned_batch, to_wire
from correspondence.kit import clock


async def cancel_open_batch(conn: asyncpg.Connection, batch_id: uuid.UUID) -> asyncpg.Record:
    """In the caller's transaction, with the batch row locked by the caller. Once committed, a batch
    is stopped by recall (its correspondences exist), not by cancel."""
    batch = await repo.get_batch(conn, batch_id, lock=True)
    if batch is None:
        raise errors.NOT_FOUND()
    if batch["status"] != OPEN:
        raise errors.NOT_OPEN(status=STATUS_NAMES[batch["status"]])
    await repo.set_status(conn, batch_id, CANCELLED, clock.now())
    row = await repo.get_batch(conn, batch_id)
    assert row is not None
    return row


async def cancel_batch(*, pool: asyncpg.Pool, caller: Caller, batch_id: uuid.UUID) -> dict[str, Any]:
    async with pool.acquire() as conn, conn.transaction():
        await owned_batch(conn, caller, batch_id, lock=True)
        row = await cancel_open_batch(conn, batch_id)
    return to_wire(row)
