"""Background jobs of the correspondence slice."""

from __future__ import annotations

import asyncpg

from correspondence.correspondence.repository import FORWARD_TASK, record_due_dates
from correspondence.correspondence.use_cases.publish import publish_correspondences
from correspondence.correspondence.use_cases.send_forward import send_forwards
from correspondence.events import outbox
from correspondence.kit import clock
from correspondence.kit.jobs import Job, Worker
from correspondence.notification.use_cases.deliver import RetryPolicy
from correspondence.services import Services

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


def register(worker: Worker, services: Services) -> None:
    worker.register(PUBLISH, _publish)
    worker.register(DUE, _due)
    s = services.settings
    retry = RetryPolicy(
        max_attempts=s.notification_max_attempts,
        first_delay_seconds=s.notification_retry_seconds,
        claim_seconds=s.job_lease_seconds + s.smtp_timeout_seconds * 2,
    )

    async def forward(conn: asyncpg.Connection, jobs: list[Job]) -> None:
        await send_forwards(
            conn,
            pool=services.pool,
            ids=list(dict.fromkeys(ref for j in jobs for ref in j.refs())),
            sender=services.email_sender(),
            blobs=services.blob_store(),
            retry=retry,
            attachment_limit=s.forward_attachments_max_bytes,
        )

    worker.register(FORWARD_TASK, forward)
