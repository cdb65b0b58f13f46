"""A committed batch's progress: how many of its correspondences were published, failed, or were
purged first, and how many recipients were notified; the batch completes (event
`batchcompleted`) when every recipient's correspondence was published or failed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from correspondence.batch import repository as repo
from correspondence.batch.schemas import COMMITTED, COMPLETED
from correspondence.events import outbox
from correspondence.kit import clock

NOTIFICATIONS_PER_ROUND = 5000


@dataclass(frozen=True)
class Progress:
    changed: bool  # something got an outcome this round
    finished: bool  # nothing more to follow: completed and every notification settled (or cancelled)


async def follow_batch(conn: asyncpg.Connection, batch_id: uuid.UUID) -> Progress:
    batch = await repo.get_batch(conn, batch_id, lock=True)
    if batch is None or batch["status"] not in (COMMITTED, COMPLETED):
        return Progress(changed=False, finished=True)
    completed = batch["status"] == COMPLETED
    settled = 0
    if not completed:
        settled, pending = await repo.settle(conn, batch_id)
        if not pending:
            await repo.set_status(conn, batch_id, COMPLETED, clock.now())
            await outbox.record(conn, "batchcompleted", [batch_id])
            completed = True
    notified, _ = await repo.settle_notifications(conn, batch_id, NOTIFICATIONS_PER_ROUND)
    finished = completed and not await repo.notifications_pending(conn, batch_id)
    return Progress(changed=settled + notified > 0, finished=finished)
