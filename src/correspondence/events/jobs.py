"""The events slice's background work: expand the outbox, deliver to subscribers."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from correspondence.events.use_cases.deliver import DeliveryPolicy, deliver_due
from correspondence.events.use_cases.dispatch import dispatch_outbox
from correspondence.kit.jobs import Worker

if TYPE_CHECKING:
    from correspondence.services import Services


def policy(services: Services) -> DeliveryPolicy:
    s = services.settings
    return DeliveryPolicy(
        batch_size=s.webhook_batch_size,
        concurrency=s.webhook_concurrency,
        lease=timedelta(seconds=s.webhook_timeout_seconds * 3 + 30),
        max_attempts=s.webhook_max_attempts,
        backoff_seconds=s.webhook_backoff_seconds,
    )


def register(worker: Worker, services: Services) -> None:
    settings = services.settings
    delivery = policy(services)

    async def dispatch() -> int:
        return await dispatch_outbox(
            services.pool, base_url=settings.public_base_url, batch_size=settings.events_batch_size
        )

    async def deliver() -> int:
        return await deliver_due(services.pool, services.webhook_sender(), delivery)

    worker.add_poller("events.dispatch", dispatch)
    worker.add_poller("events.deliver", deliver)
