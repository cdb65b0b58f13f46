"""Background work of the limits slice: forget daily counts once they are a week old."""

from __future__ import annotations

from datetime import timedelta

from correspondence.kit import clock
from correspondence.kit.jobs import Worker, every
from correspondence.limits import repository as repo
from correspondence.limits.rules import day_of
from correspondence.services import Services

KEEP_DAYS = 7


def register(worker: Worker, services: Services) -> None:
    async def forget_old_days() -> int:
        zone = services.limits.zone
        await repo.forget_before(services.pool, day_of(clock.now(), zone) - timedelta(days=KEEP_DAYS))
        return 0

    worker.add_poller("limits.forget", every(3600, forget_old_days))
