"""The daily notification cap, checked where notifications are ordered: the Initialize that would
take an owner past its cap is answered 429 (9430) and writes nothing, which a sender learns at
once and can act on, rather than finding notifications failed days later.

A notification here is one order: each recipient's main notification, and its reminder when
`sendReminder` is set, count one each (what the sender asked for; how many addresses an order
reaches is the registry's business). The count lives in PostgreSQL per owner and day (in
`CORRESPONDENCE_LIMITS_TIMEZONE`), so it survives restarts and holds across processes and
replicas. It is reserved before the Initialize statement and given back when that statement
writes nothing (a reserved single recipient, a concurrent duplicate of an idempotency key) or
fails; a process that dies in between leaves the count too high, never too low."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import asyncpg

from correspondence.limits import errors
from correspondence.limits import repository as repo
from correspondence.limits.rules import PerOwner, day_of, seconds_until_next_day

log = logging.getLogger("correspondence")
T = TypeVar("T")


class NotificationCap:
    def __init__(self, limits: PerOwner, zone: ZoneInfo) -> None:
        self.limits = limits
        self.zone = zone
        self.rejections: dict[str, int] = {}

    async def within(
        self,
        pool: asyncpg.Pool,
        *,
        owner: str,
        count: int,
        now: datetime,
        write: Callable[[], Awaitable[T]],
        written: Callable[[T], bool],
    ) -> T:
        """Run `write` with `count` notifications reserved for `owner` today; 429 instead when
        they do not fit under the cap. Kept only when `written(result)`."""
        cap = self.limits.for_owner(owner)
        if cap <= 0 or count <= 0:
            return await write()
        day = day_of(now, self.zone)
        if not await repo.reserve(pool, owner, day, count, cap):
            self.rejections[owner] = self.rejections.get(owner, 0) + 1
            so_far = await repo.ordered(pool, owner, day)
            raise errors.daily_cap_reached(owner, cap, so_far, count, seconds_until_next_day(now, self.zone))
        kept = False
        try:
            result = await write()
            kept = written(result)
            return result
        finally:
            if not kept:
                await self._give_back(pool, owner, day, count)

    async def _give_back(self, pool: asyncpg.Pool, owner: str, day: date, count: int) -> None:
        try:
            await repo.release(pool, owner, day, count)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("daily notification cap: could not give back %d for %s: %s", count, owner, exc)
