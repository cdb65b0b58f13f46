"""Background jobs of the correspondence slice."""

from __future__ import annotations

import asyncpg

from correspondence.correspondence.use_cases.publish import publish_correspondences
from correspondence.kit.jobs import Job, Worker

PUBLISH = "correspondence.publish"


async def _publish(conn: asyncpg.Connection, jobs: list[Job]) -> None:
    await publish_correspondences(conn, [j.ref_id for j in jobs if j.ref_id is not None])


def register(worker: Worker) -> None:
    worker.register(PUBLISH, _publish)
