"""An owner's limits and what it has used of them today."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from correspondence.kit import clock
from correspondence.limits import repository as repo
from correspondence.limits.rules import day_of, next_day_begins

if TYPE_CHECKING:
    from correspondence.limits.setup import Limits


async def owner_limits(
    conn: asyncpg.Connection | asyncpg.Pool, *, owner: str, limits: Limits
) -> dict[str, Any]:
    now = clock.now()
    day = day_of(now, limits.zone)
    per_minute = limits.rate.for_owner(owner)
    daily = limits.cap.for_owner(owner)
    available = limits.limiter.tokens(owner) if limits.limiter is not None else None
    return {
        "organization": owner,
        "requestsPerMinute": per_minute if per_minute > 0 else None,
        "requestsAvailableNow": None if available is None else round(available, 3),
        "dailyNotificationCap": daily if daily > 0 else None,
        "notificationsOrderedToday": await repo.ordered(conn, owner, day),
        "day": day,
        "dayEndsAt": next_day_begins(now, limits.zone),
    }
