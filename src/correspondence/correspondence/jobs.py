"""Background jobs of the correspondence slice."""

from __future__ import annotations

import asyncpg

from correspondence.correspondence.repository import record_due_dates
from correspondence.correspondence.use_cases.publish import publish_correspondences
from correspondence.events import outbox
from correspondence.kit import clock
from correspondence.kit.jobs import Job, Worker

PUBLISH = "correspondence.publish"
DUE = "correspondence.due"


async def _publish(conn: asyncpg.Connection, jobs: list[Job]) -> None:
    await publish_correspondences(conn, [ref for j in jobs for ref in j.refs()])


async def _due(conn: asyncpg.Connection, jobs: list[Job]) -> None:
    rows = await record_due_dates(conn, [ref for j in jobs for ref in j.refs()], clock.now())
    await outbox.record(conn, "correspondencereceiverneverread", [r["id"] for r in rows if r["never_read"]])
    await outbox.record(
        conn, "correspondencereceiverneverconfirmed", [r["id"] for r in rows if r["never_confirmed"]]
    )


def register(worker: Worker) -> None:
    worker.register(PUBLISH, _publish)
    worker.register(DUE, _due)
