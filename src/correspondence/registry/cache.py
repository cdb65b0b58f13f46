"""Short-lived in-process caches of the resource registry.

Resources by id keep positive hits only, so new ones show at once. Every resource's minimum
authentication level is kept as one map for the recipients' lists (search leaves out resources the
caller's level is too low for without asking the database per request); a list that meets a
resource the map does not know reloads it (`refresh`), so a new resource is never missed, and a
changed level shows within the TTL, as a changed owner does.
"""

from __future__ import annotations

import time

import asyncpg

from correspondence.registry.repository import Resource, get_resource, min_auth_levels


class ResourceCache:
    def __init__(self, ttl_seconds: float = 30.0) -> None:
        self._ttl = ttl_seconds
        self._items: dict[str, tuple[float, Resource]] = {}
        self._levels: dict[str, int] = {}
        self._levels_until = 0.0
        self._above: dict[int, list[str]] = {}

    async def get(self, pool: asyncpg.Pool, resource_id: str) -> Resource | None:
        hit = self._items.get(resource_id)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        resource = await get_resource(pool, resource_id)
        if resource is not None:
            if len(self._items) > 10_000:
                self._items.clear()
            self._items[resource_id] = (now + self._ttl, resource)
        return resource

    async def min_levels(self, pool: asyncpg.Pool, *, refresh: bool = False) -> dict[str, int]:
        """Every registered resource's minimum authentication level."""
        now = time.monotonic()
        if refresh or self._levels_until <= now:
            self._levels = await min_auth_levels(pool)
            self._levels_until = now + self._ttl
            self._above = {}
        return self._levels

    async def above_level(self, pool: asyncpg.Pool, level: int) -> list[str]:
        """The resources whose minimum authentication level is above `level`, sorted."""
        levels = await self.min_levels(pool)
        found = self._above.get(level)
        if found is None:
            found = self._above[level] = sorted(r for r, minimum in levels.items() if minimum > level)
        return found

    async def learn(self, pool: asyncpg.Pool, resource_ids: set[str]) -> bool:
        """Reload the levels when one of these resources is not among them; True if it did. One
        still unknown after that (not registered) counts as level 0 until the next reload."""
        if resource_ids <= self._levels.keys():
            return False
        levels = await self.min_levels(pool, refresh=True)
        for resource_id in resource_ids - levels.keys():
            levels[resource_id] = 0
        self._above = {}
        return True
