"""Background jobs of the notification slice: process orders at their send time, deliver the
addresses they produced."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

import asyncpg

from correspondence.kit import clock
from correspondence.kit.jobs import Job, Worker
from correspondence.notification.repository import DELIVER_TASK, ORDER_TASK
from correspondence.notification.use_cases.deliver import Channels, RetryPolicy, SmsWindow, deliver
from correspondence.notification.use_cases.process import process_orders
from correspondence.services import Services


def _ids(batch: list[Job]) -> list[uuid.UUID]:
    return list(dict.fromkeys(ref for job in batch for ref in job.refs()))


def register(worker: Worker, services: Services) -> None:
    s = services.settings
    window = SmsWindow(s.sms_window_start, s.sms_window_end, ZoneInfo(s.sms_timezone))
    retry = RetryPolicy(
        max_attempts=s.notification_max_attempts,
        first_delay_seconds=s.notification_retry_seconds,
        claim_seconds=s.job_lease_seconds + max(s.smtp_timeout_seconds, s.sms_timeout_seconds) * 2,
    )

    async def order(conn: asyncpg.Connection, batch: list[Job]) -> None:
        await process_orders(conn, _ids(batch), now=clock.now(), window=window)

    async def send(conn: asyncpg.Connection, batch: list[Job]) -> None:
        channels = Channels(services.email_sender(), services.sms_gateway())
        # The claims and outcomes are committed apart from the job, on the worker's connections:
        # in `serve` the API's pool plans statements generically, and the claim's generic plan over
        # a batch of ids ran into the 60 s command timeout under load (bench/RESULTS.md, (d)).
        await deliver(conn, pool=worker.pool, ids=_ids(batch), channels=channels, retry=retry, window=window)

    worker.register(ORDER_TASK, order)
    worker.register(DELIVER_TASK, send)
